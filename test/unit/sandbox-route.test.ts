import { evictDurableObject, listDurableObjectIds, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { LookupResult, Route } from "../../src/catalog/route.ts";
import { RouteStore } from "../../src/catalog/route-store.ts";
import type { ResumeCredentials } from "../../src/resume-types.ts";

// The unit project's CONTROL_PLANE_URL is http://127.0.0.1:9, where nothing
// listens: every resume there fails at once as "temporarily unavailable".
const credentials: ResumeCredentials = { port: 3000 };
const hour = 3_600_000;

let counter = 0;
/** A sandbox ID no other test uses, so that each test gets a fresh object. */
function freshSandboxId(label: string): string {
	counter += 1;
	return `dotest${label}${counter}${Date.now().toString(36)}`;
}

function catalog(sandboxId: string) {
	return env.SANDBOX_ROUTE.getByName(sandboxId);
}

async function lookup(sandboxId: string, creds: ResumeCredentials = credentials): Promise<LookupResult> {
	return (await catalog(sandboxId).lookup(sandboxId, creds)) as LookupResult;
}

interface RouteRow {
	sandbox_id: string;
	node_ip: string;
	learned_at: number;
	expires_at: number;
}

function tableNames(sandboxId: string): Promise<string[]> {
	return runInDurableObject(catalog(sandboxId), (_instance, state) =>
		state.storage.sql
			.exec<{ name: string }>(
				"SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\'",
			)
			.toArray()
			.map((row) => row.name),
	);
}

async function routeRows(sandboxId: string): Promise<RouteRow[]> {
	if (!(await tableNames(sandboxId)).includes("route")) return [];
	return runInDurableObject(catalog(sandboxId), (_instance, state) =>
		state.storage.sql.exec<Record<string, SqlStorageValue> & RouteRow>("SELECT * FROM route").toArray(),
	);
}

function migrationVersions(sandboxId: string): Promise<number[]> {
	return runInDurableObject(catalog(sandboxId), (_instance, state) =>
		state.storage.sql
			.exec<{ version: number }>("SELECT version FROM schema_migrations ORDER BY version")
			.toArray()
			.map((row) => row.version),
	);
}

/**
 * Writes a route into the object's SQLite storage through a second store on
 * the same storage, then evicts the object so that the next call wakes a new
 * instance that reads it back.
 */
async function seedRoute(sandboxId: string, route: Route): Promise<void> {
	const stub = catalog(sandboxId);
	await runInDurableObject(stub, (_instance, state) => {
		new RouteStore(state.storage.sql).save(sandboxId, { ...route, source: "resume", details: {} });
	});
	await evictDurableObject(stub);
}

function liveRoute(nodeIp: string): Route {
	const now = Date.now();
	return { nodeIp, learnedAt: now, expiresAt: now + hour };
}

const unavailable = { ok: false, error: { code: "control_plane_unavailable" } };

describe("SandboxRoute catalog object", () => {
	it("answers from a stored route without calling the control plane", async () => {
		const sandboxId = freshSandboxId("stored");
		const route = liveRoute("10.0.0.7");
		await seedRoute(sandboxId, route);

		expect(await lookup(sandboxId)).toEqual({ ok: true, route });
		// Any credentials: the stored route is the answer, not a new resume.
		expect(await lookup(sandboxId, { port: 49983, trafficAccessToken: "t" })).toEqual({
			ok: true,
			route,
		});
		expect(await catalog(sandboxId).peek()).toMatchObject(route);
	});

	it("does not use an expired route; it asks the control plane instead", async () => {
		const sandboxId = freshSandboxId("expired");
		const now = Date.now();
		const expired: Route = { nodeIp: "10.0.0.8", learnedAt: now - 2 * hour, expiresAt: now - 1 };
		await seedRoute(sandboxId, expired);

		expect(await lookup(sandboxId)).toMatchObject(unavailable);
		// The failed resume did not replace the old route with anything new.
		expect((await routeRows(sandboxId)).map((row) => row.node_ip)).toEqual(["10.0.0.8"]);
	});

	it("stores no route when the resume fails", async () => {
		const sandboxId = freshSandboxId("failed");
		const result = await lookup(sandboxId);
		expect(result).toMatchObject(unavailable);
		expect(await catalog(sandboxId).peek()).toBeNull();
		// Not even the schema: a probe for an ID that never resumes leaves no stored object.
		expect(await tableNames(sandboxId)).toEqual([]);
	});

	it("fails every concurrent lookup, and stores nothing", async () => {
		const sandboxId = freshSandboxId("concurrent");
		const results = await Promise.all([
			lookup(sandboxId),
			lookup(sandboxId),
			lookup(sandboxId),
			lookup(sandboxId, { port: 8080 }),
			lookup(sandboxId, { port: 3000, envdAccessToken: "e" }),
		]);
		for (const result of results) expect(result).toMatchObject(unavailable);
		expect(await catalog(sandboxId).peek()).toBeNull();
		expect(await routeRows(sandboxId)).toEqual([]);
		// And the next lookup tries again rather than replaying a settled failure forever.
		expect(await lookup(sandboxId)).toMatchObject(unavailable);
	});

	it("keeps its route across eviction", async () => {
		const sandboxId = freshSandboxId("evict");
		const route = liveRoute("10.0.0.9");
		await seedRoute(sandboxId, route);
		expect(await lookup(sandboxId)).toMatchObject({ ok: true, route });

		await evictDurableObject(catalog(sandboxId));
		expect(await catalog(sandboxId).peek()).toMatchObject(route);
		expect(await lookup(sandboxId)).toEqual({ ok: true, route });
		const ids = await listDurableObjectIds(env.SANDBOX_ROUTE);
		expect(ids.some((id) => id.equals(env.SANDBOX_ROUTE.idFromName(sandboxId)))).toBe(true);
	});

	it("migrates its schema once, however often it wakes", async () => {
		const sandboxId = freshSandboxId("migrate");
		await seedRoute(sandboxId, liveRoute("10.0.0.11"));
		const first = await migrationVersions(sandboxId);
		expect(first.length).toBeGreaterThan(0);
		// One row per migration: versions 1..n, each once.
		expect(first).toEqual(first.map((_version, index) => index + 1));

		for (let wake = 0; wake < 3; wake++) {
			await evictDurableObject(catalog(sandboxId));
			expect(await migrationVersions(sandboxId)).toEqual(first);
		}
		// The schema still works after the re-wakes.
		await seedRoute(sandboxId, liveRoute("10.0.0.10"));
		expect(await lookup(sandboxId)).toMatchObject({ ok: true, route: { nodeIp: "10.0.0.10" } });
	});

	it("invalidates only the very route that went stale", async () => {
		const sandboxId = freshSandboxId("invalidate");
		const route = liveRoute("10.0.0.11");
		await seedRoute(sandboxId, route);

		expect(await catalog(sandboxId).invalidate({ ...route, nodeIp: "10.0.0.12" })).toBe(false);
		// The same node, but an earlier learning: a late report must not drop a fresh route.
		expect(await catalog(sandboxId).invalidate({ ...route, learnedAt: route.learnedAt - 1 })).toBe(false);
		expect(await catalog(sandboxId).peek()).toMatchObject(route);
		expect(await lookup(sandboxId)).toMatchObject({ ok: true, route });

		expect(await catalog(sandboxId).invalidate(route)).toBe(true);
		expect(await catalog(sandboxId).peek()).toBeNull();
		expect(await routeRows(sandboxId)).toEqual([]);
		// With the route gone, the next lookup resumes (and here fails).
		expect(await lookup(sandboxId)).toMatchObject(unavailable);
		// The clearing is durable, not only in memory.
		await evictDurableObject(catalog(sandboxId));
		expect(await catalog(sandboxId).peek()).toBeNull();
	});

	it("does nothing when asked to invalidate an object with no route", async () => {
		const sandboxId = freshSandboxId("invalidateempty");
		expect(await catalog(sandboxId).invalidate(liveRoute("10.0.0.1"))).toBe(false);
		expect(await catalog(sandboxId).peek()).toBeNull();
	});
});
