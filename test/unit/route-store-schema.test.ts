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

describe("the route store's schema", () => {
	it("is the same made at once as step by step", async () => {
		const atOnce = env.SANDBOX_ROUTE.getByName("schematestfresh");
		const stepByStep = env.SANDBOX_ROUTE.getByName("schemateststeps");
		const fresh = await runInDurableObject(atOnce, (_, state) => {
			migrate(state.storage.sql);
			return schemaOf(state.storage.sql);
		});
		const steps = await runInDurableObject(stepByStep, (_, state) => {
			migrate(state.storage.sql, "");
			return schemaOf(state.storage.sql);
		});
		expect(fresh.columns.length).toBeGreaterThan(0);
		expect(fresh).toEqual(steps);
		expect(fresh.versions).toHaveLength(migrations.length);
	});
});
