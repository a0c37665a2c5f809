import { evictDurableObject, listDurableObjectIds, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { LookupResult, Route } from "../../src/catalog/route.ts";
import { RouteStore } from "../../src/catalog/route-store.ts";
import type { ResumeCredentials } from "../../src/resume-types.ts";
import { spyUpstream } from "./spied-upstream.ts";
import { grpcCode } from "./upstream-model.ts";

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
	afterEach(() => {
		vi.restoreAllMocks();
	});

	it("answers from a stored route without calling the control plane", async () => {
		const sandboxId = freshSandboxId("stored");
		const route = liveRoute("10.0.0.7");
		await seedRoute(sandboxId, route);

		expect(await lookup(sandboxId)).toEqual({ ok: true, route, via: "object" });
		// Any credentials: the stored route is the answer, not a new resume.
		expect(await lookup(sandboxId, { port: 49983, trafficAccessToken: "t" })).toEqual({
			ok: true,
			route,
			via: "object",
		});
		expect(await catalog(sandboxId).describe()).toMatchObject(route);
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
		expect(await catalog(sandboxId).describe()).toBeNull();
		// Not even the schema: a probe for an ID that never resumes leaves no stored object.
		expect(await tableNames(sandboxId)).toEqual([]);
	});

	it("fails every concurrent lookup with one ResumeSandbox call, and stores nothing", async () => {
		const sandboxId = freshSandboxId("concurrent");
		// The control plane answers Unavailable, slowly enough that every lookup arrives during the call.
		const upstream = spyUpstream({
			resume: () => ({ kind: "status", code: grpcCode.unavailable, message: "unavailable" }),
			resumeDelayMs: 200,
		});
		const results = await Promise.all([
			lookup(sandboxId),
			lookup(sandboxId),
			lookup(sandboxId),
			lookup(sandboxId, { port: 8080 }),
			lookup(sandboxId, { port: 3000, envdAccessToken: "e" }),
		]);
		for (const result of results) expect(result).toMatchObject(unavailable);
		// Whatever their ports and tokens, they all waited on the one call.
		expect(upstream.resumes.map((call) => call.sandboxId)).toEqual([sandboxId]);
		expect(await catalog(sandboxId).describe()).toBeNull();
		expect(await routeRows(sandboxId)).toEqual([]);
	});

	it("wakes a paused sandbox with one ResumeSandbox call for 20 concurrent lookups, and gives each its route", async () => {
		const sandboxId = freshSandboxId("coalesce");
		// Slow enough that all 20 arrive while the call goes on, even on a loaded machine.
		const upstream = spyUpstream({ resume: () => ({ kind: "ok", ip: "10.0.2.1" }), resumeDelayMs: 1000 });
		const results = await Promise.all(
			Array.from({ length: 20 }, (_, i) =>
				lookup(sandboxId, { port: 3000 + (i % 3), ...(i % 2 === 0 ? { trafficAccessToken: `t${i}` } : {}) }),
			),
		);
		expect(upstream.resumes).toHaveLength(1);
		expect(upstream.resumes[0]?.sandboxId).toBe(sandboxId);
		const first = results[0];
		expect(first).toMatchObject({ ok: true, route: { nodeIp: "10.0.2.1" } });
		const route = first?.ok ? first.route : undefined;
		for (const result of results) expect(result).toMatchObject({ ok: true, route });
		// One made the call; the others joined it, and say how long they waited.
		const wakes = results.map((result) => (result.ok ? result.wake : undefined));
		expect(wakes.filter((wake) => wake === "resumed")).toHaveLength(1);
		expect(wakes.filter((wake) => wake === "joined")).toHaveLength(19);
		for (const result of results) {
			expect(result).toMatchObject({ via: "resume", rpcMs: expect.any(Number), waitedMs: expect.any(Number) });
		}
		// Stored: the next lookup needs no call at all.
		expect(await lookup(sandboxId)).toEqual({ ok: true, route, via: "object" });
		expect(upstream.resumes).toHaveLength(1);
	});

	it("keeps its route across eviction", async () => {
		const sandboxId = freshSandboxId("evict");
		const route = liveRoute("10.0.0.9");
		await seedRoute(sandboxId, route);
		expect(await lookup(sandboxId)).toMatchObject({ ok: true, route });

		await evictDurableObject(catalog(sandboxId));
		expect(await catalog(sandboxId).describe()).toMatchObject(route);
		expect(await lookup(sandboxId)).toEqual({ ok: true, route, via: "object" });
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
		expect(await catalog(sandboxId).describe()).toMatchObject(route);
		expect(await lookup(sandboxId)).toMatchObject({ ok: true, route });

		expect(await catalog(sandboxId).invalidate(route)).toBe(true);
		expect(await catalog(sandboxId).describe()).toBeNull();
		expect(await routeRows(sandboxId)).toEqual([]);
		// With the route gone, the next lookup resumes (and here fails).
		expect(await lookup(sandboxId)).toMatchObject(unavailable);
		// The clearing is durable, not only in memory.
		await evictDurableObject(catalog(sandboxId));
		expect(await catalog(sandboxId).describe()).toBeNull();
	});

	it("does nothing when asked to invalidate an object with no route", async () => {
		const sandboxId = freshSandboxId("invalidateempty");
		expect(await catalog(sandboxId).invalidate(liveRoute("10.0.0.1"))).toBe(false);
		expect(await catalog(sandboxId).describe()).toBeNull();
	});
});

describe("SandboxRoute catalog writes", () => {
	const pushed = (nodeIp: string, executionId: string, ttlSeconds = 3600) => ({
		op: "put" as const,
		route: { nodeIp, executionId, ttlSeconds, details: { teamId: "t1" } },
	});
	const deleted = (executionId: string) => ({ op: "delete" as const, executionId });

	it("serves a pushed route without calling the control plane", async () => {
		const sandboxId = freshSandboxId("push");
		const before = Date.now();
		await catalog(sandboxId).write(sandboxId, [pushed("10.0.1.1", "e1", 60)]);
		const result = await lookup(sandboxId);
		expect(result).toMatchObject({ ok: true, route: { nodeIp: "10.0.1.1" } });
		if (!result.ok) return;
		// Only what forwarding needs crosses to the Worker.
		expect(Object.keys(result.route).sort()).toEqual(["expiresAt", "learnedAt", "nodeIp"]);
		expect(result.route.expiresAt - result.route.learnedAt).toBe(60_000);
		expect(result.route.learnedAt).toBeGreaterThanOrEqual(before);
		expect(await catalog(sandboxId).describe()).toMatchObject({
			source: "push",
			executionId: "e1",
			details: { teamId: "t1" },
		});
	});

	it("applies a batch's writes in order", async () => {
		const sandboxId = freshSandboxId("order");
		await catalog(sandboxId).write(sandboxId, [pushed("10.0.1.1", "e1"), deleted("e1"), pushed("10.0.1.2", "e2")]);
		expect(await catalog(sandboxId).describe()).toMatchObject({ nodeIp: "10.0.1.2", executionId: "e2" });
		await catalog(sandboxId).write(sandboxId, [deleted("e1"), deleted("e3")]);
		expect(await catalog(sandboxId).describe()).toMatchObject({ executionId: "e2" });
		await catalog(sandboxId).write(sandboxId, [deleted("e2")]);
		expect(await catalog(sandboxId).describe()).toBeNull();
		// Durable, not only in memory.
		await evictDurableObject(catalog(sandboxId));
		expect(await catalog(sandboxId).describe()).toBeNull();
	});

	it("doubts a pushed route that its node disowned until a resume has been asked, then serves it again", async () => {
		const sandboxId = freshSandboxId("doubt");
		await catalog(sandboxId).write(sandboxId, [pushed("10.0.1.5", "e1")]);
		const served = await lookup(sandboxId);
		if (!served.ok) throw new Error("expected the pushed route");
		expect(await catalog(sandboxId).invalidate(served.route)).toBe(true);
		// Not served while doubted: the lookup asks the control plane (unreachable here).
		expect(await lookup(sandboxId)).toMatchObject(unavailable);
		// The control plane could not say where the sandbox is, so its pushed word stands.
		expect(await lookup(sandboxId)).toEqual(served);
		expect(await catalog(sandboxId).describe()).toMatchObject({ source: "push", executionId: "e1" });
	});

	it("removes a learned route with any delete", async () => {
		const sandboxId = freshSandboxId("learned");
		await seedRoute(sandboxId, liveRoute("10.0.1.3"));
		await catalog(sandboxId).write(sandboxId, [deleted("whatever")]);
		expect(await catalog(sandboxId).describe()).toBeNull();
	});

	it("leaves no storage behind once its route is deleted", async () => {
		const sandboxId = freshSandboxId("gone");
		await catalog(sandboxId).write(sandboxId, [pushed("10.0.1.6", "e1")]);
		expect(await tableNames(sandboxId)).toContain("route");
		await catalog(sandboxId).write(sandboxId, [deleted("e1")]);
		expect(await tableNames(sandboxId)).toEqual([]);
		// And it starts again from nothing.
		await catalog(sandboxId).write(sandboxId, [pushed("10.0.1.7", "e2")]);
		expect(await catalog(sandboxId).describe()).toMatchObject({ nodeIp: "10.0.1.7", executionId: "e2" });
	});

	it("leaves no storage behind once its route has expired", async () => {
		const sandboxId = freshSandboxId("expiredgone");
		const stub = catalog(sandboxId);
		await stub.write(sandboxId, [pushed("10.0.1.8", "e1", 3600)]);
		// Before its expiry the alarm keeps the route, and sets itself again.
		expect(await runDurableObjectAlarm(stub)).toBe(true);
		expect(await stub.describe()).toMatchObject({ executionId: "e1" });
		// Age it past its expiry, as time would.
		await runInDurableObject(stub, (_instance, state) => {
			const store = new RouteStore(state.storage.sql);
			const entry = store.current(0);
			if (entry !== null) store.save(sandboxId, { ...entry, expiresAt: Date.now() - 1 });
		});
		await evictDurableObject(stub);
		expect(await runDurableObjectAlarm(stub)).toBe(true);
		expect(await tableNames(sandboxId)).toEqual([]);
	});

	it("stores nothing for a delete of a sandbox it never held", async () => {
		const sandboxId = freshSandboxId("nothing");
		await catalog(sandboxId).write(sandboxId, [deleted("e1")]);
		expect(await tableNames(sandboxId)).toEqual([]);
	});

	it("reads a route stored before routes had a source, as a learned one", async () => {
		const sandboxId = freshSandboxId("oldschema");
		const stub = catalog(sandboxId);
		const now = Date.now();
		// The schema as the first release left it: migration 1 only.
		await runInDurableObject(stub, (_instance, state) => {
			const sql = state.storage.sql;
			sql.exec("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)");
			sql.exec(
				"CREATE TABLE route (singleton INTEGER PRIMARY KEY CHECK (singleton = 1), sandbox_id TEXT NOT NULL, node_ip TEXT NOT NULL, learned_at INTEGER NOT NULL, expires_at INTEGER NOT NULL)",
			);
			sql.exec("INSERT INTO schema_migrations (version, applied_at) VALUES (1, ?)", now);
			sql.exec("INSERT INTO route VALUES (1, ?, '10.0.1.4', ?, ?)", sandboxId, now, now + hour);
		});
		await evictDurableObject(stub);
		expect(await catalog(sandboxId).describe()).toEqual({
			nodeIp: "10.0.1.4",
			learnedAt: now,
			expiresAt: now + hour,
			source: "resume",
			details: {},
		});
		expect(await migrationVersions(sandboxId)).toEqual([1, 2, 3, 4]);
		// And any delete removes it, as a learned route.
		await catalog(sandboxId).write(sandboxId, [deleted("x")]);
		expect(await catalog(sandboxId).describe()).toBeNull();
	});
});
