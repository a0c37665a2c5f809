import { afterAll, beforeAll, expect, it } from "vitest";
import { type E2eStack, freshId, sandboxHost, startE2eStack } from "./fixture.ts";
import { fetchVia } from "./http-client.ts";

// A bounded load test, small enough for CI: 200 sandboxes, a fifth of them
// paused and a tenth killed, 4,000 requests at concurrency 50, a tenth of
// them for unknown IDs. Every status must be the one its sandbox's state
// gives, and the control plane must see exactly one resume per paused
// sandbox and at most one call per unknown or killed ID.

const sandboxes = 200;
const paused = 40;
const killed = 20;
const unknownIds = 40;
const requests = 4000;
const concurrency = 50;
// The Worker's default NOT_FOUND_CACHE_MS.
const notFoundCacheMs = 30_000;
const routeCacheTtlMs = 5_000;

let env: E2eStack;

beforeAll(async () => {
	// One loopback client sends everything: its per-client budget is lifted.
	env = await startE2eStack({ resumeDelayMs: 200, limits: { perClient: 100_000 } });
}, 120_000);
afterAll(async () => {
	await env?.close();
});

type Kind = "running" | "paused" | "killed" | "unknown";

it("holds 4,000 requests over 200 sandboxes and unknown IDs at concurrency 50", { timeout: 180_000 }, async () => {
	const targets: { id: string; kind: Kind }[] = [];
	for (let i = 0; i < sandboxes; i++) {
		const id = freshId("load");
		await env.admin.create({ id, ports: [3000] });
		const kind: Kind = i < paused ? "paused" : i < paused + killed ? "killed" : "running";
		if (kind === "paused") await env.admin.pause(id);
		if (kind === "killed") await env.admin.kill(id);
		targets.push({ id, kind });
	}
	for (let i = 0; i < unknownIds; i++) targets.push({ id: freshId("nobody"), kind: "unknown" });
	env.stack.controlPlane.resetCalls();

	// A fixed pseudo-random order, so that a failure can be replayed.
	let seed = 20261129;
	const random = () => {
		seed = (seed * 1103515245 + 12345) % 2 ** 31;
		return seed / 2 ** 31;
	};
	const plan = Array.from({ length: requests }, () => {
		// About a tenth of the requests go to unknown IDs.
		const pool = random() < 0.1 ? targets.slice(sandboxes) : targets.slice(0, sandboxes);
		return pool[Math.floor(random() * pool.length)] ?? { id: "", kind: "unknown" as Kind };
	});

	const expected: Record<Kind, number> = { running: 200, paused: 200, killed: 502, unknown: 502 };
	const unexpected: string[] = [];
	const statusCounts: Record<string, number> = {};
	const latencies: number[] = [];
	let next = 0;
	const started = Date.now();
	await Promise.all(
		Array.from({ length: concurrency }, async () => {
			while (next < plan.length) {
				const target = plan[next++];
				if (target === undefined) break;
				const sent = Date.now();
				const response = await fetchVia(env.worker.url, sandboxHost(target.id), "/", {
					headers: { accept: "application/json" },
				});
				latencies.push(Date.now() - sent);
				const key = `${target.kind} ${response.status}`;
				statusCounts[key] = (statusCounts[key] ?? 0) + 1;
				if (response.status !== expected[target.kind])
					unexpected.push(`${target.id} (${key}): ${response.text.slice(0, 200)}`);
			}
		}),
	);
	const elapsedMs = Date.now() - started;

	const calls = env.stack.controlPlane.calls();
	const callsById = new Map<string, number>();
	for (const call of calls) callsById.set(call.sandboxId, (callsById.get(call.sandboxId) ?? 0) + 1);
	const callsOf = (kind: Kind) => targets.filter((target) => target.kind === kind).map((t) => callsById.get(t.id) ?? 0);
	const requested = new Set(plan.map((target) => target.id));
	latencies.sort((a, b) => a - b);
	const percentile = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))];

	console.log(
		JSON.stringify({
			load: {
				requests,
				concurrency,
				elapsedMs,
				requestsPerSecond: Math.round((requests / elapsedMs) * 1000),
				latencyMs: { p50: percentile(0.5), p99: percentile(0.99), max: latencies.at(-1) },
				statuses: statusCounts,
				rpcs: {
					total: calls.length,
					paused: callsOf("paused").reduce((a, b) => a + b, 0),
					killed: callsOf("killed").reduce((a, b) => a + b, 0),
					unknown: callsOf("unknown").reduce((a, b) => a + b, 0),
					running: callsOf("running").reduce((a, b) => a + b, 0),
				},
			},
		}),
	);

	expect(unexpected).toEqual([]);
	// Exactly one resume per paused sandbox that was asked for.
	for (const target of targets.filter((t) => t.kind === "paused" && requested.has(t.id))) {
		// On failure, say when each call came, and what the Worker logged of the sandbox.
		const why = () =>
			`${target.id}: calls ${JSON.stringify(calls.filter((c) => c.sandboxId === target.id).map((c) => [c.at, c.finishedAt]))}\n${env.worker
				.logText()
				.split("\n")
				.filter((line) => line.includes(target.id))
				.join("\n")}`;
		if (callsById.get(target.id) !== 1) expect.fail(why());
	}
	// At most one RPC per killed ID within the not-found window (30 s): its
	// object held a route, so it stores the not-found across evictions. On a
	// slow machine the run can outlast one window.
	for (const target of targets.filter((t) => t.kind === "killed")) {
		const times = calls.filter((call) => call.sandboxId === target.id).map((call) => call.at);
		for (let i = 1; i < times.length; i++) {
			expect((times[i] ?? 0) - (times[i - 1] ?? 0), target.id).toBeGreaterThanOrEqual(notFoundCacheMs);
		}
	}
	// An unknown ID's object never held a route and stores nothing, so its
	// not-found lasts as long as the object stays in memory (wrangler dev
	// evicts an idle object within seconds); the isolate's copy covers
	// ROUTE_CACHE_TTL_MS (5 s) after each call. So at most one RPC per 5 s.
	for (const target of targets.filter((t) => t.kind === "unknown")) {
		const times = calls.filter((call) => call.sandboxId === target.id).map((call) => call.at);
		for (let i = 1; i < times.length; i++) {
			expect((times[i] ?? 0) - (times[i - 1] ?? 0), target.id).toBeGreaterThanOrEqual(routeCacheTtlMs);
		}
	}
	// Running sandboxes were pushed by the control plane: no RPC at all.
	expect(Math.max(...callsOf("running"))).toBe(0);
});
