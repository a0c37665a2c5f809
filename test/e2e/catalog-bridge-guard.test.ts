// The catalog bridge's mass-delete guard, end to end: a real redis-server
// restarted without persistence (so it comes back empty), the bridge, and the
// real Worker serving sandboxes of the development stack, behind a recorder
// that counts every delete the bridge sends.

import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BridgeHandle, type BridgeOptions, startBridge } from "../../bridge/bridge.ts";
import { ConfigError, DEFAULT_MASS_DELETE, parseCommandLine, USAGE } from "../../bridge/config.ts";
import { type EdgeSwitch, spawnBridge, startEdgeSwitch } from "./bridge-harness.ts";
import { type E2eStack, freshId, sandboxHost, startE2eStack } from "./fixture.ts";
import { fetchVia } from "./http-client.ts";
import { type RedisServer, startRedisServer } from "./redis-server.ts";
import { until } from "./until.ts";

const catalogSecret = "catalog-guard-secret-8e41a2";
const NOTIFY = ["--notify-keyspace-events", "K$gx"];
const HOUR = 3600;
/** More than the default --mass-delete-min (10), so that the defaults hold them. */
const N = 12;

let env: E2eStack;
let edge: EdgeSwitch;

beforeAll(async () => {
	env = await startE2eStack({
		catalogWrites: false,
		workerVars: { CATALOG_SECRET: catalogSecret, ROUTE_CACHE_TTL_MS: "0" },
	});
	edge = await startEdgeSwitch(env.worker.url);
});

afterAll(async () => {
	await Promise.all([env?.close(), edge?.close()]);
});

// --- one Redis, one bridge, N running sandboxes mirrored at the edge ---------------------------------------------------

interface Setup {
	server: RedisServer;
	writer: Redis;
	bridge: BridgeHandle;
	lines: string[];
	ids: string[];
	log(): string;
	/** Restarts Redis on its port without persistence: it comes back empty. When it went down. */
	restartEmpty(): Promise<number>;
	close(): Promise<void>;
}

async function setUp(count: number, overrides: Partial<BridgeOptions> = {}): Promise<Setup> {
	let server = await startRedisServer(NOTIFY);
	let writer = new Redis(server.url);
	const ids = await runningSandboxes(count);
	for (const id of ids) await storeSandbox(writer, id);
	const lines: string[] = [];
	const bridge = await startBridge({
		redisUrl: server.url,
		edgeOrigin: edge.origin,
		catalogSecret,
		reconcileIntervalMs: 60_000,
		debounceMs: 20,
		backoff: { baseMs: 50, capMs: 400 },
		log: (line) => lines.push(line),
		...overrides,
	});
	const setup: Setup = {
		get server() {
			return server;
		},
		get writer() {
			return writer;
		},
		bridge,
		lines,
		ids,
		log: () => lines.join("\n"),
		async restartEmpty() {
			writer.disconnect();
			const downAt = Date.now();
			await server.close();
			await until("the bridge to see Redis go", () => !bridge.stats().redisConnected, 10_000);
			server = await startRedisServer(NOTIFY, server.port);
			writer = new Redis(server.url);
			return downAt;
		},
		async close() {
			await bridge.close();
			writer.disconnect();
			await server.close();
			expect(lines.join("\n")).not.toContain(catalogSecret);
		},
	};
	await until("the startup sync", () => bridge.stats().idle, 15_000);
	for (const id of ids) expect(await routeOf(id)).toBe(`exec-${id}`);
	return setup;
}

async function runningSandboxes(count: number): Promise<string[]> {
	const ids: string[] = [];
	for (let i = 0; i < count; i += 1) {
		const id = freshId("mg");
		await env.admin.create({ id });
		ids.push(id);
	}
	return ids;
}

/** What E2B's SandboxCatalog.StoreSandbox writes: the node at 127.0.0.1, one execution per sandbox. */
async function storeSandbox(writer: Redis, id: string, executionId = `exec-${id}`): Promise<void> {
	const info = {
		team_id: "team-1",
		orchestrator_id: "node-1",
		orchestrator_ip: "127.0.0.1",
		execution_id: executionId,
		sandbox_started_at: "2026-11-29T04:03:57.123456789Z",
		sandbox_end_time: "2026-11-29T05:03:57.123456789Z",
		sandbox_max_length_in_hours: 1,
		traffic_keepalive: false,
	};
	await writer.set(`sandbox:catalog:${id}`, JSON.stringify(info), "EX", HOUR);
}

/** The execution ID of the edge's route for the sandbox, or undefined when it has none. */
async function routeOf(id: string): Promise<string | undefined> {
	const response = await fetchVia(env.worker.url, "edge.localhost", `/v1/sandboxes/${id}`, {
		headers: { authorization: `Bearer ${catalogSecret}` },
	});
	if (response.status === 404) return undefined;
	expect(response.status).toBe(200);
	return String((response.json() as { execution_id: unknown }).execution_id);
}

async function routes(ids: string[]): Promise<(string | undefined)[]> {
	return Promise.all(ids.map(routeOf));
}

/** Served from the pushed route: straight to the node, with no ResumeSandbox. */
async function served(id: string): Promise<boolean> {
	const response = await fetchVia(env.worker.url, sandboxHost(id), "/");
	return response.status === 200 && response.text.includes(id);
}

function resumeCalls(ids: string[]): number {
	const mine = new Set(ids);
	return env.stack.controlPlane.calls().filter((call) => mine.has(call.sandboxId)).length;
}

/** Until the bridge holds `count` deletes, or sends one (which the caller's next check shows). */
async function waitHeld(s: Setup, count: number): Promise<void> {
	await until(
		"the deletes to be held, or sent",
		() => s.bridge.stats().held === count || deletesFor(s.ids).length > 0,
		10_000,
	);
	expect(deletesFor(s.ids)).toEqual([]);
}

function heldLine(count: number, known: number): string {
	return `MASS DELETE HELD: a reconcile found ${count} of the ${known} routes the bridge knows`;
}

/** The deletes the Worker answered for these sandboxes, each "<sandbox>:<execution>". */
function sentDeletes(ids: string[]): { key: string; at: number }[] {
	const wanted = new Set(ids);
	return edge
		.batches()
		.flatMap((b) =>
			b.delete
				.filter((d) => wanted.has(d.sandbox_id))
				.map((d) => ({ key: `${d.sandbox_id}:${d.execution_id}`, at: b.at })),
		);
}

function deletesFor(ids: string[]): string[] {
	return sentDeletes(ids).map((d) => d.key);
}

function deleteTimes(ids: string[]): number[] {
	return sentDeletes(ids).map((d) => d.at);
}

// --- tests ----------------------------------------------------------------------------------------------------------

describe("catalog bridge: the mass-delete guard", () => {
	it("keeps every route when Redis restarts empty, and deletes them once they are still gone after the hold", async () => {
		// Long enough for the checks below to run within it, even on a loaded machine.
		const holdMs = 15_000;
		const s = await setUp(N, { massDelete: { holdMs } });
		try {
			const downAt = await s.restartEmpty();
			await waitHeld(s, N);
			expect(s.log()).toContain(`${heldLine(N, N)} (100%) gone from Redis, over --mass-delete-share 0.5`);
			expect(s.log()).toContain("--mass-delete-min 10. Redis may have come back empty");
			expect(s.log()).toContain(`(--mass-delete-hold 15s), or now if you confirm with kill -USR2 ${process.pid}`);

			// During the hold: no delete sent, every route still at the edge and served without a resume.
			expect(deletesFor(s.ids)).toEqual([]);
			expect(await routes(s.ids)).toEqual(s.ids.map((id) => `exec-${id}`));
			expect(await Promise.all(s.ids.map(served))).toEqual(s.ids.map(() => true));
			expect(resumeCalls(s.ids)).toBe(0);
			expect(s.bridge.stats()).toMatchObject({ held: N, holds: 1, idle: false });
			// Those checks ran within the hold.
			expect(Date.now()).toBeLessThan(downAt + holdMs);

			// Confirmed by time: the keys are still gone when the hold is over.
			await until("the held deletes to be sent", () => deletesFor(s.ids).length === N, holdMs + 10_000);
			const firstDeleteAt = Math.min(...deleteTimes(s.ids));
			expect(firstDeleteAt - downAt).toBeGreaterThanOrEqual(holdMs);
			expect(deletesFor(s.ids).sort()).toEqual(s.ids.map((id) => `${id}:exec-${id}`).sort());
			expect(s.log()).toContain(
				`mass delete confirmed by time: the keys of ${N} held route(s) are still gone from Redis after 15s`,
			);
			await until("the bridge to settle", () => s.bridge.stats().idle, 15_000);
			expect(await routes(s.ids)).toEqual(s.ids.map(() => undefined));
			expect(s.bridge.stats()).toMatchObject({ held: 0, deletes: N });
		} finally {
			await s.close();
		}
	});

	it("drops the held deletes when the control plane writes the keys again: nothing deleted, even after the hold", async () => {
		// Long enough for the keys to come back within it, even on a loaded machine.
		const holdMs = 8000;
		const s = await setUp(N, { massDelete: { holdMs } });
		try {
			await s.restartEmpty();
			await waitHeld(s, N);
			const heldAt = Date.now();
			expect(s.log()).toContain(heldLine(N, N));

			for (const id of s.ids) await storeSandbox(s.writer, id);
			await until("the held deletes to be dropped", () => s.bridge.stats().held === 0, holdMs);
			expect(s.log()).toContain(
				`mass delete called off: the keys of ${N} held route(s) came back to Redis; nothing was deleted at the edge`,
			);

			// Past the time the hold would have ended, a reconcile finds every key and deletes nothing.
			await until("the hold's end", () => Date.now() > heldAt + holdMs + 100, holdMs + 1000);
			const reconciles = s.bridge.stats().reconciles;
			s.bridge.reconcile();
			await until("a reconcile after the hold", () => s.bridge.stats().reconciles > reconciles, 15_000);
			await until("the bridge to settle", () => s.bridge.stats().idle, 15_000);
			expect(deletesFor(s.ids)).toEqual([]);
			expect(await routes(s.ids)).toEqual(s.ids.map((id) => `exec-${id}`));
			expect(await Promise.all(s.ids.map(served))).toEqual(s.ids.map(() => true));
			expect(resumeCalls(s.ids)).toBe(0);
			expect(s.bridge.stats()).toMatchObject({ held: 0, deletes: 0 });
		} finally {
			await s.close();
		}
	});

	it("deletes at once a key that a notification says is gone, while a mass delete is held", async () => {
		// A hold far longer than the test: nothing is confirmed by time here.
		const s = await setUp(N, { massDelete: { holdMs: 600_000 } });
		try {
			await s.restartEmpty();
			await waitHeld(s, N);

			// A sandbox started after the restart, then stopped: E2B's DEL of its key.
			const [late] = await runningSandboxes(1);
			if (late === undefined) throw new Error("no sandbox");
			await storeSandbox(s.writer, late);
			await until("the new sandbox's route", async () => (await routeOf(late)) === `exec-${late}`, 15_000);
			await s.writer.del(`sandbox:catalog:${late}`);
			await until("its route deleted", async () => (await routeOf(late)) === undefined, 15_000);
			expect(deletesFor([late])).toEqual([`${late}:exec-${late}`]);

			// A held sandbox whose key the control plane wrote again, then deleted: put, then deleted at once.
			const [back, ...others] = s.ids;
			if (back === undefined) throw new Error("no sandbox");
			await storeSandbox(s.writer, back, `exec-${back}-2`);
			await until("the rewritten route", async () => (await routeOf(back)) === `exec-${back}-2`, 15_000);
			await s.writer.del(`sandbox:catalog:${back}`);
			await until("the rewritten route deleted", async () => (await routeOf(back)) === undefined, 15_000);
			expect(deletesFor([back])).toEqual([`${back}:exec-${back}-2`]);

			// The rest are still held, and still at the edge.
			expect(s.bridge.stats().held).toBe(N - 1);
			expect(deletesFor(others)).toEqual([]);
			expect(await routes(others)).toEqual(others.map((id) => `exec-${id}`));
		} finally {
			await s.close();
		}
	});

	it("under --mass-delete-min, a restart's deletes go at once: 3 routes losing all 3 is not a mass delete", async () => {
		const s = await setUp(3);
		try {
			await s.restartEmpty();
			await until("the deletes, or a hold", () => deletesFor(s.ids).length === 3 || s.bridge.stats().held > 0, 10_000);
			expect(deletesFor(s.ids)).toHaveLength(3);
			expect(await routes(s.ids)).toEqual([undefined, undefined, undefined]);
			expect(s.bridge.stats()).toMatchObject({ held: 0, holds: 0 });
			expect(s.log()).not.toContain("MASS DELETE HELD");
		} finally {
			await s.close();
		}
	});

	it("as a child process: --mass-delete-* set the guard, and SIGUSR2 confirms the held deletes", async () => {
		let server = await startRedisServer(NOTIFY);
		let writer = new Redis(server.url);
		const ids = await runningSandboxes(4);
		for (const id of ids) await storeSandbox(writer, id);
		const child = spawnBridge(
			[
				"--redis",
				server.url,
				"--edge",
				edge.origin,
				"--mass-delete-share",
				"0.75",
				"--mass-delete-min",
				"3",
				"--mass-delete-hold",
				"1h",
			],
			catalogSecret,
		);
		try {
			await until("the startup sync", async () => (await routes(ids)).every((e, i) => e === `exec-${ids[i]}`), 15_000);
			expect(child.output()).toContain("deletes of over 0.75 of the routes (and over 3) held for 1h");

			writer.disconnect();
			await server.close();
			await until("the bridge to see Redis go", () => child.output().includes("connection to"), 10_000);
			server = await startRedisServer(NOTIFY, server.port);
			writer = new Redis(server.url);
			await until(
				"the held line, or a delete",
				() => child.output().includes("MASS DELETE HELD") || deletesFor(ids).length > 0,
				15_000,
			);
			expect(deletesFor(ids)).toEqual([]);
			const line =
				child
					.output()
					.split("\n")
					.find((l) => l.includes("MASS DELETE HELD")) ?? "";
			expect(line).toContain(`${heldLine(4, 4)} (100%) gone from Redis, over --mass-delete-share 0.75 (75%)`);
			expect(line).toContain(`(--mass-delete-hold 1h), or now if you confirm with SIGUSR2 (kill -USR2 ${child.pid}`);
			expect(deletesFor(ids)).toEqual([]);
			expect(await routes(ids)).toEqual(ids.map((id) => `exec-${id}`));

			child.signal("SIGUSR2");
			await until("the confirmed deletes", () => deletesFor(ids).length === 4, 10_000);
			expect(deletesFor(ids).sort()).toEqual(ids.map((id) => `${id}:exec-${id}`).sort());
			expect(child.output()).toContain("mass delete confirmed by the operator: deleting 4 held route(s) at the edge");
			expect(await routes(ids)).toEqual(ids.map(() => undefined));
		} finally {
			expect(await child.stop()).toBe(0);
			writer.disconnect();
			await server.close();
		}
		expect(child.output()).not.toContain(catalogSecret);
	});

	it("parses --mass-delete-share, --mass-delete-min and --mass-delete-hold, naming the flag in every error", () => {
		const ok = ["--redis", "redis://127.0.0.1:6379/0", "--edge", "https://edge.sandbox.example.com"];
		const env = { CATALOG_SECRET: catalogSecret };
		const parse = (...args: string[]) => {
			const parsed = parseCommandLine([...ok, ...args], env);
			if (parsed.help) throw new Error("help");
			return parsed.config.massDelete;
		};
		expect(DEFAULT_MASS_DELETE).toEqual({ share: 0.5, min: 10, holdMs: 300_000 });
		expect(parse()).toEqual(DEFAULT_MASS_DELETE);
		expect(parse("--mass-delete-share", "0.25", "--mass-delete-min", "0", "--mass-delete-hold", "90s")).toEqual({
			share: 0.25,
			min: 0,
			holdMs: 90_000,
		});
		expect(parse("--mass-delete-share", "1").share).toBe(1);
		const cases: [string[], string][] = [
			[["--mass-delete-share", "0"], "--mass-delete-share must be a share of the routes, above 0 and at most 1"],
			[["--mass-delete-share", "1.5"], "--mass-delete-share must be"],
			[["--mass-delete-share", "50%"], "--mass-delete-share must be"],
			[["--mass-delete-share", ""], "--mass-delete-share must be"],
			[["--mass-delete-min", "-1"], "--mass-delete-min"],
			[["--mass-delete-min", "ten"], "--mass-delete-min must be an integer"],
			[["--mass-delete-hold", "0"], "--mass-delete-hold must be a time"],
			[["--mass-delete-hold", "soon"], "--mass-delete-hold must be a time"],
		];
		for (const [args, message] of cases) {
			expect(() => parse(...args)).toThrow(ConfigError);
			expect(() => parse(...args)).toThrow(message);
		}
		for (const flag of [
			"--mass-delete-share <0..1>",
			"--mass-delete-min <n>",
			"--mass-delete-hold <time>",
			"SIGUSR2",
		]) {
			expect(USAGE).toContain(flag);
		}
	});
});
