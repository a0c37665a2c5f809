import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { migrate, migrations } from "../../src/catalog/route-store.ts";

// A new object's schema is made in one statement; an old one's by the steps.
// Both must give the same table, or an object's storage would depend on its age.
function schemaOf(sql: SqlStorage) {
	return {
		columns: sql.exec("PRAGMA table_info(route)").toArray(),
		versions: sql.exec("SELECT version FROM schema_migrations ORDER BY version").toArray(),
	};
}

/** An object's storage as a deploy that knew only the first `steps` migrations left it. */
function storedAt(sql: SqlStorage, steps: number): void {
	sql.exec("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)");
	migrations.slice(0, steps).forEach((statement, index) => {
		sql.exec(statement);
		sql.exec("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", index + 1, 0);
	});
}

describe("the route store's schema", () => {
	it("is the same made at once as step by step, from whichever step an object's storage was left at", async () => {
		const fresh = await runInDurableObject(env.SANDBOX_ROUTE.getByName("schematestfresh"), (_, state) => {
			migrate(state.storage.sql);
			return schemaOf(state.storage.sql);
		});
		expect(fresh.columns.length).toBeGreaterThan(0);
		expect(fresh.versions).toHaveLength(migrations.length);
		for (let steps = 1; steps <= migrations.length; steps++) {
			const upgraded = await runInDurableObject(env.SANDBOX_ROUTE.getByName(`schemateststeps${steps}`), (_, state) => {
				storedAt(state.storage.sql, steps);
				migrate(state.storage.sql);
				return schemaOf(state.storage.sql);
			});
			expect(upgraded, `left at step ${steps}`).toEqual(fresh);
		}
	});
});
