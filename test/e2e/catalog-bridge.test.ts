// The catalog bridge end to end: a real redis-server written to the way E2B's
// Go code writes it, the bridge (in-process and as a child process), and the
// real Worker in workerd serving sandboxes of the development stack.

import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BridgeHandle, type BridgeOptions, startBridge } from "../../bridge/bridge.ts";
import { bridgeCli, childEnv, type EdgeSwitch, spawnBridge, startEdgeSwitch } from "./bridge-harness.ts";
import { type E2eStack, freshId, sandboxHost, startE2eStack } from "./fixture.ts";
import { fetchVia } from "./http-client.ts";
import { type RedisServer, startRedisServer } from "./redis-server.ts";

const catalogSecret = "catalog-e2e-secret-5d71c0";
const HOUR = 3600;

let env: E2eStack;
let redisServer: RedisServer;
let redis: Redis;
let edge: EdgeSwitch;
let stateDir: string;
let bridge: BridgeHandle | undefined;
const bridgeLog: string[] = [];

beforeAll(async () => {
	[env, redisServer, stateDir] = await Promise.all([
		startE2eStack({
			// The bridge is the only writer here, as for an operator running E2B's control plane.
			catalogWrites: false,
			workerVars: { CATALOG_SECRET: catalogSecret, ROUTE_CACHE_TTL_MS: "0" },
		}),
		startRedisServer(["--notify-keyspace-events", "K$gx"]),
		mkdtemp(join(tmpdir(), "catalog-bridge-state-")),
	]);
	redis = new Redis(redisServer.url);
	edge = await startEdgeSwitch(env.worker.url);
});

afterAll(async () => {
	await bridge?.close();
	redis?.disconnect();
	await Promise.all([env?.close(), redisServer?.close(), edge?.close()]);
	if (stateDir !== undefined) await rm(stateDir, { recursive: true, force: true });
	// Whatever it printed, the bridge never logged the secret.
	expect(bridgeLog.join("\n")).not.toContain(catalogSecret);
});

function bridgeOptions(overrides: Partial<BridgeOptions> = {}): BridgeOptions {
	return {
		redisUrl: redisServer.url,
		edgeOrigin: edge.origin,
		catalogSecret,
		stateFile: join(stateDir, "state.json"),
		// Long, so that changes reach the edge through notifications unless a test says otherwise.
		reconcileIntervalMs: 60_000,
		debounceMs: 20,
		backoff: { baseMs: 50, capMs: 400 },
		log: (line) => bridgeLog.push(line),
		...overrides,
	};
}

// --- what E2B writes ------------------------------------------------------------------------------------------------

interface Info {
	ip: string;
	executionId: string;
	maxHours?: number;
	/** Versions before team_id, sandbox_end_time and traffic_keepalive. */
	old?: boolean;
	startedAt?: string;
}

/** Go's encoding/json of SandboxInfo: its field order, no spaces, RFC 3339 times with nanoseconds. */
function goJson(info: Info): string {
	const started = info.startedAt ?? "2026-11-29T04:03:57.123456789Z";
	const common = {
		orchestrator_id: "node-1",
		orchestrator_ip: info.ip,
		execution_id: info.executionId,
		sandbox_started_at: started,
	};
	const maxHours = info.maxHours ?? 1;
	if (info.old === true) return JSON.stringify({ ...common, sandbox_max_length_in_hours: maxHours });
	return JSON.stringify({
		team_id: "team-1",
		...common,
		sandbox_end_time: "2026-11-29T05:03:57.123456789Z",
		sandbox_max_length_in_hours: maxHours,
		traffic_keepalive: false,
	});
}

/** SandboxCatalog.StoreSandbox: SET with the sandbox's lifetime as EX. */
async function storeSandbox(id: string, info: Info, ttlSeconds = (info.maxHours ?? 1) * HOUR): Promise<void> {
	await redis.set(`sandbox:catalog:${id}`, goJson(info), "EX", ttlSeconds);
}

/** SandboxCatalog.DeleteSandbox: GET, and DEL only if the stored execution is this one. */
async function deleteSandbox(id: string, executionId: string): Promise<boolean> {
	const value = await redis.get(`sandbox:catalog:${id}`);
	if (value === null || (JSON.parse(value) as { execution_id: string }).execution_id !== executionId) return false;
	await redis.del(`sandbox:catalog:${id}`);
	return true;
}

// --- what the edge holds ----------------------------------------------------------------------------------------------

async function catalogGet(id: string): Promise<{ status: number; route: Record<string, unknown> }> {
	const response = await fetchVia(env.worker.url, "edge.localhost", `/v1/sandboxes/${id}`, {
		headers: { authorization: `Bearer ${catalogSecret}` },
	});
	return { status: response.status, route: response.status === 200 ? response.json() : {} };
}

async function waitFor(what: string, condition: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!(await condition())) {
		if (Date.now() > deadline) {
			const recent = bridgeLog.slice(-20).join("\n");
			throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; the bridge's last lines:\n${recent}`);
		}
		await new Promise((resolve) => setTimeout(resolve, 25));
	}
}

const routeIs =
	(id: string, executionId: string, ip = "127.0.0.1") =>
	async () => {
		const { status, route } = await catalogGet(id);
		return status === 200 && route.execution_id === executionId && route.orchestrator_ip === ip;
	};
const routeGone = (id: string) => async () => (await catalogGet(id)).status === 404;
const bridgeIdle = () => bridge?.stats().idle === true;

function resumeCalls(id: string): number {
	return env.stack.controlPlane.calls().filter((call) => call.sandboxId === id).length;
}

async function served(id: string): Promise<boolean> {
	const response = await fetchVia(env.worker.url, sandboxHost(id), "/");
	return response.status === 200 && response.text.includes(id);
}

/** A running sandbox of the dev stack, on the node at 127.0.0.1. */
async function runningSandbox(): Promise<string> {
	const id = freshId("cb");
	await env.admin.create({ id });
	return id;
}

// --- tests ----------------------------------------------------------------------------------------------------------

describe("catalog bridge", () => {
	it("mirrors the existing catalog at startup, and the Worker serves it without a single ResumeSandbox", async () => {
		const [a, b, c] = [await runningSandbox(), await runningSandbox(), await runningSandbox()];
		await storeSandbox(a, { ip: "127.0.0.1", executionId: "exec-a" });
		await storeSandbox(b, { ip: "127.0.0.1", executionId: "exec-b", old: true, maxHours: 2 });
		// No TTL: the route lives sandbox_max_length_in_hours.
		await redis.set(`sandbox:catalog:${c}`, goJson({ ip: "127.0.0.1", executionId: "exec-c", maxHours: 3 }));
		// Three entries that cannot be routed: a name that is no sandbox ID, a value that is not JSON,
		// and a node known only by orchestrator_id.
		await redis.set("sandbox:catalog:Not_An_Id", goJson({ ip: "127.0.0.1", executionId: "x" }), "EX", HOUR);
		await redis.set("sandbox:catalog:garbage1", "{not json", "EX", HOUR);
		await redis.set(
			"sandbox:catalog:noip1",
			goJson({ ip: "", executionId: "x", startedAt: "0001-01-01T00:00:00Z" }),
			"EX",
			HOUR,
		);

		bridge = await startBridge(bridgeOptions());
		await waitFor("the startup sync", bridgeIdle);

		expect(await routeIs(a, "exec-a")()).toBe(true);
		expect(await routeIs(b, "exec-b")()).toBe(true);
		expect(await routeIs(c, "exec-c")()).toBe(true);
		const { route } = await catalogGet(a);
		expect(route).toMatchObject({ source: "push", team_id: "team-1", orchestrator_id: "node-1" });
		// ttl_seconds = ceil(PTTL / 1000), so the edge's route ends when the key does.
		expect(Date.parse(String(route.expires_at)) - Date.now()).toBeGreaterThan((HOUR - 60) * 1000);
		expect(Date.parse(String(route.expires_at)) - Date.now()).toBeLessThanOrEqual((HOUR + 2) * 1000);
		const noTtl = (await catalogGet(c)).route;
		expect(Date.parse(String(noTtl.expires_at)) - Date.now()).toBeGreaterThan((3 * HOUR - 60) * 1000);

		// One batch of three puts; the three bad entries skipped, none sent.
		expect(edge.batches()).toHaveLength(1);
		expect(
			edge
				.batches()[0]
				?.put.map((p) => p.sandbox_id)
				.sort(),
		).toEqual([a, b, c].sort());
		expect(edge.batches()[0]?.put.find((p) => p.sandbox_id === b)).toEqual({
			sandbox_id: b,
			orchestrator_ip: "127.0.0.1",
			execution_id: "exec-b",
			ttl_seconds: 2 * HOUR,
			orchestrator_id: "node-1",
			sandbox_started_at: "2026-11-29T04:03:57.123456789Z",
			sandbox_max_length_in_hours: 2,
		});
		expect(bridge.stats()).toMatchObject({ puts: 3, deletes: 0, skipped: 3, rejected: 0, batchFailures: 0 });

		for (const id of [a, b, c]) expect(await served(id)).toBe(true);
		expect([a, b, c].map(resumeCalls)).toEqual([0, 0, 0]);
	});

	it("follows live changes: a new key, then the same sandbox on another execution and node", async () => {
		const reconciles = bridge?.stats().reconciles;
		const id = await runningSandbox();
		await storeSandbox(id, { ip: "127.0.0.1", executionId: "exec-1" });
		await waitFor("the new key at the edge", routeIs(id, "exec-1"));
		expect(await served(id)).toBe(true);

		await storeSandbox(id, { ip: "127.0.0.2", executionId: "exec-2" });
		await waitFor("the second execution at the edge", routeIs(id, "exec-2", "127.0.0.2"));
		await storeSandbox(id, { ip: "127.0.0.1", executionId: "exec-3" });
		await waitFor("the third execution at the edge", routeIs(id, "exec-3"));
		expect(await served(id)).toBe(true);
		expect(resumeCalls(id)).toBe(0);
		// Notifications carried all of it; no reconcile ran.
		expect(bridge?.stats().reconciles).toBe(reconciles);
	});

	it("follows E2B's conditional delete: another execution's delete leaves the route, its own removes it", async () => {
		const id = await runningSandbox();
		await storeSandbox(id, { ip: "127.0.0.1", executionId: "exec-live" });
		await waitFor("the route at the edge", routeIs(id, "exec-live"));

		expect(await deleteSandbox(id, "exec-older")).toBe(false);
		expect(await routeIs(id, "exec-live")()).toBe(true);
		await env.admin.pause(id);
		expect(await deleteSandbox(id, "exec-live")).toBe(true);
		await waitFor("the route deleted at the edge", routeGone(id));
		expect(deletesFor(id)).toEqual(["exec-live"]);

		// Without a route, the Worker wakes the paused sandbox itself.
		expect(await served(id)).toBe(true);
		expect(resumeCalls(id)).toBe(1);
	});

	it("deletes the route when the key expires", async () => {
		const id = await runningSandbox();
		await storeSandbox(id, { ip: "127.0.0.1", executionId: "exec-short" }, 2);
		await waitFor("the route at the edge", routeIs(id, "exec-short"));
		await waitFor("the key to expire", async () => (await redis.exists(`sandbox:catalog:${id}`)) === 0, 15_000);
		await waitFor("the route deleted at the edge", routeGone(id));
		// The bridge deleted it: the edge did not merely let it run out.
		await waitFor("the delete to be sent", () => deletesFor(id).length === 1);
		expect(deletesFor(id)).toEqual(["exec-short"]);
	});

	it("catches up after a restart, as a child process: keys added, replaced and deleted meanwhile", async () => {
		const [kept, replaced, removed, added] = [
			await runningSandbox(),
			await runningSandbox(),
			await runningSandbox(),
			await runningSandbox(),
		];
		for (const id of [kept, replaced, removed]) await storeSandbox(id, { ip: "127.0.0.1", executionId: `${id}-1` });
		await waitFor("the routes at the edge", async () =>
			(await Promise.all([kept, replaced, removed].map((id) => routeIs(id, `${id}-1`)()))).every(Boolean),
		);
		await bridge?.close();
		bridge = undefined;

		// While no bridge runs.
		await storeSandbox(replaced, { ip: "127.0.0.1", executionId: `${replaced}-2` });
		expect(await deleteSandbox(removed, `${removed}-1`)).toBe(true);
		await storeSandbox(added, { ip: "127.0.0.1", executionId: `${added}-1` });
		const batchesBefore = edge.batches().length;

		const child = spawnBridge(
			["--redis", redisServer.url, "--edge", edge.origin, "--state-file", join(stateDir, "state.json")],
			catalogSecret,
		);
		try {
			await waitFor("the replaced route", routeIs(replaced, `${replaced}-2`));
			await waitFor("the removed route to go", routeGone(removed));
			await waitFor("the added route", routeIs(added, `${added}-1`));
			expect(await routeIs(kept, `${kept}-1`)()).toBe(true);
		} finally {
			expect(await child.stop()).toBe(0);
		}
		const output = child.output();
		expect(output).toContain("catalog-bridge: stopped");
		expect(output).not.toContain(catalogSecret);
		// A restart mirrors every key again, once; the removed one is deleted by the execution it had.
		const sent = edge.batches().slice(batchesBefore);
		const mine = new Set([kept, replaced, removed, added]);
		const puts = sent.flatMap((b) => b.put.filter((p) => mine.has(p.sandbox_id)));
		expect(puts.map((p) => `${p.sandbox_id}:${p.execution_id}`).sort()).toEqual(
			[`${kept}:${kept}-1`, `${replaced}:${replaced}-2`, `${added}:${added}-1`].sort(),
		);
		expect(deletesFor(removed)).toEqual([`${removed}-1`]);
		for (const id of [kept, replaced, added]) expect(await served(id)).toBe(true);
		expect([kept, replaced, added].map(resumeCalls)).toEqual([0, 0, 0]);
	});

	it("holds changes while the edge is down and sends the latest truth once it is back", async () => {
		bridge = await startBridge(bridgeOptions());
		await waitFor("the restarted bridge's startup sync", bridgeIdle);
		const [up, gone, flicker, moved] = [
			await runningSandbox(),
			await runningSandbox(),
			await runningSandbox(),
			await runningSandbox(),
		];
		for (const id of [gone, moved]) await storeSandbox(id, { ip: "127.0.0.1", executionId: `${id}-1` });
		await waitFor(
			"the routes at the edge",
			async () => (await routeIs(gone, `${gone}-1`)()) && (await routeIs(moved, `${moved}-1`)()),
		);

		edge.setDown(true);
		const failures = () => bridge?.stats().batchFailures ?? 0;
		await storeSandbox(up, { ip: "127.0.0.1", executionId: `${up}-1` });
		expect(await deleteSandbox(gone, `${gone}-1`)).toBe(true);
		await storeSandbox(flicker, { ip: "127.0.0.1", executionId: `${flicker}-1` });
		// Attempts are sequential: the second failure after the writes is an attempt that read all three.
		const afterWrites = failures();
		await waitFor("two failed attempts", () => failures() >= afterWrites + 2);
		expect(await deleteSandbox(flicker, `${flicker}-1`)).toBe(true);
		await storeSandbox(moved, { ip: "127.0.0.1", executionId: `${moved}-2` });
		const afterMore = failures();
		await waitFor("another failed attempt", () => failures() >= afterMore + 1);
		expect(bridge.stats().dirty).toBeGreaterThanOrEqual(4);
		const batchesBefore = edge.batches().length;

		edge.setDown(false);
		await waitFor("the changes to arrive", bridgeIdle);
		expect(await routeIs(up, `${up}-1`)()).toBe(true);
		expect(await routeIs(moved, `${moved}-2`)()).toBe(true);
		expect(await routeGone(gone)()).toBe(true);
		expect(await routeGone(flicker)()).toBe(true);

		// Once each, and never a put of a deleted key.
		const sent = edge.batches().slice(batchesBefore);
		const puts = sent.flatMap((b) => b.put.map((p) => `${p.sandbox_id}:${p.execution_id}`));
		expect(puts.sort()).toEqual([`${up}:${up}-1`, `${moved}:${moved}-2`].sort());
		expect(sent.flatMap((b) => b.delete.map((d) => `${d.sandbox_id}:${d.execution_id}`)).sort()).toEqual(
			[`${gone}:${gone}-1`, `${flicker}:${flicker}-1`].sort(),
		);
		expect(edge.refused()).toBeGreaterThanOrEqual(2);
		expect(await served(up)).toBe(true);
		expect(await served(moved)).toBe(true);
		expect(resumeCalls(up) + resumeCalls(moved)).toBe(0);
	});

	it("refuses to start without keyspace notifications, saying what to set; --no-notifications reconciles instead", async () => {
		const plain = await startRedisServer();
		try {
			const result = await runCli(["--redis", plain.url, "--edge", edge.origin]);
			expect(result.code).toBe(3);
			expect(result.stderr).toContain("redis-cli CONFIG SET notify-keyspace-events 'K$gx'");
			expect(result.stderr).toContain("notify-keyspace-events K$gx");
			expect(result.stderr).toContain("--no-notifications");
			expect(result.stdout + result.stderr).not.toContain(catalogSecret);

			const id = await runningSandbox();
			const writer = new Redis(plain.url);
			const polling = await startBridge(
				bridgeOptions({ redisUrl: plain.url, notifications: false, reconcileIntervalMs: 200, stateFile: undefined }),
			);
			try {
				await writer.set(`sandbox:catalog:${id}`, goJson({ ip: "127.0.0.1", executionId: "exec-p" }), "EX", HOUR);
				await waitFor("the reconcile to carry the key", routeIs(id, "exec-p"));
				await writer.del(`sandbox:catalog:${id}`);
				await waitFor("the reconcile to carry the delete", routeGone(id));
				expect(polling.stats()).toMatchObject({ events: 0, subscribed: false });
			} finally {
				await polling.close();
				writer.disconnect();
			}
		} finally {
			await plain.close();
		}
	});

	it("warns and carries on where CONFIG is disabled, as on managed Redis", async () => {
		const managed = await startRedisServer(["--notify-keyspace-events", "K$gx", "--rename-command", "CONFIG", ""]);
		const writer = new Redis(managed.url);
		const lines: string[] = [];
		const id = await runningSandbox();
		const other = await startBridge(
			bridgeOptions({ redisUrl: managed.url, stateFile: undefined, log: (line) => lines.push(line) }),
		);
		try {
			expect(lines.join("\n")).toContain("cannot read notify-keyspace-events");
			await writer.set(`sandbox:catalog:${id}`, goJson({ ip: "127.0.0.1", executionId: "exec-m" }), "EX", HOUR);
			await waitFor("the notification to carry the key", routeIs(id, "exec-m"));
			// SET ... EX is two events, set and expire; no reconcile ran after the startup one.
			expect(other.stats()).toMatchObject({ events: 2, reconciles: 1 });
		} finally {
			await other.close();
			writer.disconnect();
			await managed.close();
		}
	});

	it("reconnects to a restarted Redis, resubscribes and reconciles: lost keys deleted, new ones put", async () => {
		let server = await startRedisServer(["--notify-keyspace-events", "K$gx"]);
		let writer = new Redis(server.url);
		const [lost, fresh] = [await runningSandbox(), await runningSandbox()];
		const other = await startBridge(bridgeOptions({ redisUrl: server.url, stateFile: undefined }));
		try {
			await writer.set(`sandbox:catalog:${lost}`, goJson({ ip: "127.0.0.1", executionId: "exec-l" }), "EX", HOUR);
			await waitFor("the first key at the edge", routeIs(lost, "exec-l"));
			const reconciles = other.stats().reconciles;

			// Restarted without persistence: it comes back empty.
			writer.disconnect();
			await server.close();
			await waitFor("the bridge to notice", () => !other.stats().redisConnected);
			server = await startRedisServer(["--notify-keyspace-events", "K$gx"], server.port);
			writer = new Redis(server.url);
			await waitFor("the bridge to resubscribe", () => other.stats().subscribed);
			await writer.set(`sandbox:catalog:${fresh}`, goJson({ ip: "127.0.0.1", executionId: "exec-f" }), "EX", HOUR);

			await waitFor("the lost key's route to go", routeGone(lost));
			await waitFor("the new key at the edge", routeIs(fresh, "exec-f"));
			expect(other.stats().reconciles).toBeGreaterThan(reconciles);
		} finally {
			await other.close();
			writer.disconnect();
			await server.close();
		}
	});

	it("logs the edge's refusal of a wrong CATALOG_SECRET, without the secret, and keeps the keys to send", async () => {
		const wrongSecret = "not-the-catalog-secret-91ab";
		const lines: string[] = [];
		const other = await startBridge(
			bridgeOptions({ catalogSecret: wrongSecret, stateFile: undefined, log: (line) => lines.push(line) }),
		);
		try {
			await waitFor("a refused batch", () => other.stats().batchFailures > 0);
			expect(lines.join("\n")).toContain("the edge refused the token (403");
			expect(lines.join("\n")).not.toContain(wrongSecret);
			expect(other.stats()).toMatchObject({ puts: 0, idle: false });
			expect(other.stats().dirty).toBeGreaterThan(0);
		} finally {
			await other.close();
		}
	});

	it("rejects bad configuration with a message naming the flag or variable, and never prints the secret", async () => {
		const redisUrl = redisServer.url;
		const ok = ["--redis", redisUrl, "--edge", edge.origin];
		const cases: { args: string[]; env?: Record<string, string | undefined>; message: string }[] = [
			{ args: [], message: "--redis <url> is required" },
			{ args: ["--redis", redisUrl], message: "--edge <url> is required" },
			{
				args: ["--redis", "http://127.0.0.1:6379", "--edge", edge.origin],
				message: "--redis must start with redis://",
			},
			{ args: ["--redis", `${redisUrl.replace(/\/0$/, "")}/db`, "--edge", edge.origin], message: "--redis path" },
			{ args: ["--redis", redisUrl, "--edge", "edge.example.com"], message: "--edge must be a URL" },
			{ args: ["--redis", redisUrl, "--edge", "http://edge.example.com"], message: "--edge must use https://" },
			{ args: ["--redis", redisUrl, "--edge", `${edge.origin}/v1`], message: "--edge must be an origin" },
			{ args: ok, env: { CATALOG_SECRET: undefined }, message: "CATALOG_SECRET is not set" },
			{ args: ok, env: { CATALOG_SECRET: `${catalogSecret}\nX` }, message: "CATALOG_SECRET must be printable" },
			{ args: [...ok, "--reconcile-interval", "soon"], message: "--reconcile-interval must be a time" },
			{ args: [...ok, "--default-ttl", "0"], message: "--default-ttl must be a time" },
			{ args: [...ok, "--scan-count", "-5"], message: "--scan-count" },
			{ args: [...ok, "--scan-count", "0"], message: "--scan-count must be an integer" },
			{ args: [...ok, "--bogus"], message: "--bogus" },
		];
		// A few at a time: 14 Node processes at once on a busy 2-core machine can outlast runCli's 15 s.
		const results: Awaited<ReturnType<typeof runCli>>[] = [];
		for (let i = 0; i < cases.length; i += 4) {
			results.push(...(await Promise.all(cases.slice(i, i + 4).map((c) => runCli(c.args, c.env)))));
		}
		results.forEach((result, i) => {
			const c = cases[i];
			expect({ code: result.code, stderr: result.stderr }).toMatchObject({
				code: 2,
				stderr: expect.stringContaining(c?.message ?? "?"),
			});
			expect(result.stdout + result.stderr).not.toContain(catalogSecret);
		});

		const help = await runCli(["--help"]);
		expect(help.code).toBe(0);
		expect(help.stdout).toContain("Usage: npm run catalog-bridge -- --redis <url> --edge <url>");
	});
});

/** The executions of every delete the Worker answered for `sandboxId`. */
function deletesFor(sandboxId: string): string[] {
	return edge.batches().flatMap((b) => b.delete.filter((d) => d.sandbox_id === sandboxId).map((d) => d.execution_id));
}

// --- the bridge as a child process ------------------------------------------------------------------------------------

function runCli(
	args: string[],
	env: Record<string, string | undefined> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
	return new Promise((resolve, reject) => {
		const child = spawn(process.execPath, [bridgeCli, ...args], {
			env: childEnv(catalogSecret, env),
			stdio: ["ignore", "pipe", "pipe"],
		});
		let stdout = "";
		let stderr = "";
		child.stdout.on("data", (chunk: Buffer) => {
			stdout += chunk.toString("utf8");
		});
		child.stderr.on("data", (chunk: Buffer) => {
			stderr += chunk.toString("utf8");
		});
		const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
		child.once("error", reject);
		child.once("close", (code) => {
			clearTimeout(timer);
			resolve({ code, stdout, stderr });
		});
	});
}
