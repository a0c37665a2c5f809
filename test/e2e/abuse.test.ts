import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { maxConcurrentCalls } from "../../dev/call-overlap.ts";
import {
	apiSecret,
	type E2eStack,
	freshId,
	type RunningWorker,
	sandboxHost,
	startE2eStack,
	startWorker,
} from "./fixture.ts";
import { fetchVia, type Received } from "./http-client.ts";
import { until } from "./until.ts";

// What a stranger can make the edge do: every count here is of ResumeSandbox
// calls the control plane received, against wrangler.toml's own budgets
// (30 resumes per client and 5 per sandbox and caller, per 10 s).

let env: E2eStack;
/** The same stack without the isolate's caches, so that each request reaches the sandbox's object. */
let uncached: RunningWorker;

beforeAll(async () => {
	// A node that passes sandboxes' headers through, as E2B's does.
	env = await startE2eStack({ resumeDelayMs: 100, nodeStripsNotHereHeader: false });
	uncached = await startWorker({ ...env.vars, ROUTE_CACHE_TTL_MS: "0" });
});
afterAll(async () => {
	await uncached?.close();
	await env?.close();
});

const json = { accept: "application/json" };
let clients = 0;
/** A client address of its own, so that tests do not share the per-client budget. */
function newClient(): Record<string, string> {
	clients += 1;
	return { ...json, "cf-connecting-ip": `198.51.${Math.floor(clients / 250)}.${clients % 250}` };
}

function callsFor(sandboxId: string) {
	return env.stack.controlPlane.calls().filter((call) => call.sandboxId === sandboxId);
}

function allCalls(ids: readonly string[]) {
	const wanted = new Set(ids);
	return env.stack.controlPlane.calls().filter((call) => wanted.has(call.sandboxId));
}

async function sequential(count: number, request: (i: number) => Promise<Received>): Promise<Received[]> {
	const responses: Received[] = [];
	for (let i = 0; i < count; i++) responses.push(await request(i));
	return responses;
}

async function concurrently<T>(count: number, limit: number, task: (i: number) => Promise<T>): Promise<T[]> {
	const results: T[] = new Array(count);
	let next = 0;
	const worker = async () => {
		while (next < count) {
			const i = next++;
			results[i] = await task(i);
		}
	};
	await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
	return results;
}

/**
 * The Workers rate limiter counts in fixed windows. Miniflare's
 * (node_modules/miniflare/dist/src/workers/ratelimit/ratelimit-object.worker.js)
 * keeps one count per key for the window `Math.floor(Date.now() / (period * 1000))`:
 * windows are aligned to the wall clock and turn at the same instant for
 * every key, a count starts again from 0 when its window turns, and a limited
 * call is not counted. A burst of a fixed size may straddle a turn and stay
 * under the limit on both sides, so these tests never count on one window:
 * they send until the limit shows (with a bound), and bound what got through
 * by the windows that the sending touched, read from the same clock (workerd's
 * Date.now() during a request lies between Node's before and after it).
 */
const limitWindowMs = 10_000;

/** How many of the limiter's windows the span from `start` to `end` (Date.now() values) touches. */
function windowsTouched(start: number, end: number): number {
	return Math.floor(end / limitWindowMs) - Math.floor(start / limitWindowMs) + 1;
}

// The Worker's defaults (src/config.ts), which this stack keeps.
const defaultNotFoundCacheMs = 30_000;
const defaultRefusalCacheMs = 5_000;

// The control plane stamps calls with its own clock (performance.now()),
// workerd with Date.now(): they may differ by a few milliseconds.
const clockSkewMs = 20;

/**
 * Each call for the sandbox came at least `ms` after the one before it: the
 * answer was remembered that long, however long the requests went on.
 */
function expectCallsApart(sandboxId: string, ms: number): void {
	const times = callsFor(sandboxId).map((call) => call.at);
	for (let i = 1; i < times.length; i++) {
		expect((times[i] ?? 0) - (times[i - 1] ?? 0), `call ${i + 1} for ${sandboxId}`).toBeGreaterThanOrEqual(
			ms - clockSkewMs,
		);
	}
}

function statuses(responses: readonly Received[]): Record<number, number> {
	const counts: Record<number, number> = {};
	for (const response of responses) counts[response.status] = (counts[response.status] ?? 0) + 1;
	return counts;
}

async function pausedSandbox(options: { public?: boolean } = {}): Promise<{ id: string; token?: string }> {
	const id = freshId();
	const created = await env.admin.create({ id, ...options });
	await env.admin.pause(id);
	return created.trafficAccessToken === undefined ? { id } : { id, token: created.trafficAccessToken };
}

describe("a sandbox the control plane does not know", () => {
	// NOT_FOUND_CACHE_MS (30 s by default) is a window too: on a loaded
	// machine 500 requests can outlast it (they took 27 s on one), and then the
	// sandbox is rightly asked about again. What is remembered is counted by
	// the time between calls, as load.test.ts does.
	it("costs one RPC for 500 sequential requests: the not-found is remembered", async () => {
		const id = freshId("unknown");
		const client = newClient();
		const responses = await sequential(500, () => fetchVia(env.worker.url, sandboxHost(id), "/", { headers: client }));
		expect(statuses(responses)).toEqual({ 502: 500 });
		expect(responses[499]?.json()).toMatchObject({ sandboxId: id, reason: "sandbox_not_found" });
		expect(callsFor(id).length).toBeGreaterThanOrEqual(1);
		expectCallsApart(id, defaultNotFoundCacheMs);
	});

	it("costs one RPC even without the isolate's cache: the sandbox's object remembers", async () => {
		const id = freshId("unknown");
		const client = newClient();
		const responses = await sequential(50, () => fetchVia(uncached.url, sandboxHost(id), "/", { headers: client }));
		expect(statuses(responses)).toEqual({ 502: 50 });
		expect(callsFor(id).length).toBeGreaterThanOrEqual(1);
		expectCallsApart(id, defaultNotFoundCacheMs);
	});

	it("is forgotten as soon as the control plane writes the sandbox's route", async () => {
		const id = freshId("later");
		const client = newClient();
		expect((await fetchVia(env.worker.url, sandboxHost(id), "/", { headers: client })).status).toBe(502);
		await env.admin.create({ id });
		const response = await fetchVia(env.worker.url, sandboxHost(id), "/", { headers: client });
		expect(response.status).toBe(200);
		expect(callsFor(id)).toHaveLength(1);
	});

	it("is asked about again once NOT_FOUND_CACHE_MS has passed", async () => {
		const notFoundCacheMs = 1_000;
		const short = await startWorker({
			...env.vars,
			NOT_FOUND_CACHE_MS: String(notFoundCacheMs),
			ROUTE_CACHE_TTL_MS: "0",
		});
		try {
			const id = freshId("unknown");
			const client = newClient();
			// Asked for again and again: every request within the window is
			// answered from memory, and the first one after it asks again.
			let requests = 0;
			await until(
				"a second RPC",
				async () => {
					expect((await fetchVia(short.url, sandboxHost(id), "/", { headers: client })).status).toBe(502);
					requests += 1;
					return callsFor(id).length >= 2;
				},
				20_000,
			);
			expect(callsFor(id)).toHaveLength(2);
			expect(requests).toBeGreaterThan(2);
			expectCallsApart(id, notFoundCacheMs);
		} finally {
			await short.close();
		}
	});

	it("costs at most the per-client budget when one client asks for 500 random IDs", async () => {
		const client = newClient();
		const ids = Array.from({ length: 500 }, () => freshId("random"));
		const started = Date.now();
		const responses = await concurrently(500, 50, (i) =>
			fetchVia(env.worker.url, sandboxHost(ids[i] ?? ""), "/", { headers: client }),
		);
		const windows = windowsTouched(started, Date.now());
		const counts = statuses(responses);
		expect(Object.keys(counts).sort()).toEqual(["429", "502"]);
		// 30 per window of the limiter; the flood may straddle two or more.
		expect(allCalls(ids).length).toBeLessThanOrEqual(30 * windows);
		expect(counts[502]).toBe(allCalls(ids).length);
		const limited = responses.find((response) => response.status === 429);
		expect(limited?.headers["retry-after"]).toBe("10");
		expect(limited?.json()).toMatchObject({ code: 429, reason: "resume_rate_limited" });
	});
});

describe("someone else's private sandbox", () => {
	it("costs one RPC for 200 sequential requests without its token", async () => {
		const { id } = await pausedSandbox({ public: false });
		const client = newClient();
		const responses = await sequential(200, () => fetchVia(uncached.url, sandboxHost(id), "/", { headers: client }));
		expect(statuses(responses)).toEqual({ 403: 200 });
		// The refusal is remembered for REFUSAL_CACHE_MS (5 s); 200 requests
		// may outlast it, more than once on a loaded machine.
		expect(callsFor(id).length).toBeGreaterThanOrEqual(1);
		expectCallsApart(id, defaultRefusalCacheMs);
	});

	it("costs at most the client's budget for 200 different wrong tokens, and the owner still gets in", async () => {
		const { id, token } = await pausedSandbox({ public: false });
		const stranger = newClient();
		const started = Date.now();
		const flood = concurrently(200, 20, (i) =>
			fetchVia(env.worker.url, sandboxHost(id), "/", {
				headers: { ...stranger, "e2b-traffic-access-token": `wrong-${i}` },
			}),
		);
		const owner = fetchVia(env.worker.url, sandboxHost(id), "/", {
			headers: { ...newClient(), "e2b-traffic-access-token": token ?? "" },
		});
		const [responses, ownerResponse] = await Promise.all([flood, owner]);
		const windows = windowsTouched(started, Date.now());
		expect(ownerResponse.status).toBe(200);
		const counts = statuses(responses);
		// Refused (403) or limited (429), until the owner's wake gives a route
		// that every later request, with any token, is forwarded on (the node
		// then checks the token itself, and refuses with its own 403).
		expect(Object.keys(counts).every((status) => ["403", "429"].includes(status))).toBe(true);
		const strangerCalls = callsFor(id).filter((call) => call.headers["e2b-traffic-access-token"] !== token);
		// 30 per window of the limiter, however many windows the flood touched.
		expect(strangerCalls.length).toBeLessThanOrEqual(30 * windows);
		expect(callsFor(id).filter((call) => call.headers["e2b-traffic-access-token"] === token)).toHaveLength(1);
	});

	it("runs at most 4 RPCs at once for distinct credentials; the others wait for a slot", async () => {
		const { id } = await pausedSandbox({ public: false });
		// A slow refusal, so that calls would overlap if they could, however
		// spread out a loaded machine delivers the requests.
		await env.admin.setFault({ sandboxId: id, code: "PermissionDenied", message: "bad token", delayMs: 600 });
		try {
			const responses = await concurrently(16, 16, (i) =>
				fetchVia(env.worker.url, sandboxHost(id), "/", {
					headers: { ...newClient(), "e2b-traffic-access-token": `token-${i}` },
				}),
			);
			expect(statuses(responses)).toEqual({ 403: 16 });
			const calls = callsFor(id);
			// Each distinct token gets its own answer, in turn.
			expect(calls).toHaveLength(16);
			expect(maxConcurrentCalls(calls)).toBeLessThanOrEqual(4);
			expect(maxConcurrentCalls(calls)).toBeGreaterThan(1);
		} finally {
			await env.admin.clearFault();
		}
	});
});

describe("budgets", () => {
	it("never limit a request whose route is known, even for a client past its budget", async () => {
		const { id } = await pausedSandbox();
		const client = newClient();
		const known = () => fetchVia(uncached.url, sandboxHost(id), "/headers", { headers: client });
		const unknown = () => fetchVia(uncached.url, sandboxHost(freshId("spend")), "/", { headers: client });
		// Woken once; `uncached` then asks the sandbox's object on every request.
		expect((await known()).status).toBe(200);
		// The client spends its budget on fresh IDs, ten at a time, until one is
		// limited. (A fixed burst of 40 can straddle a window and never be.)
		for (let batch = 0; ; batch++) {
			expect(batch, "batches of fresh IDs before one was limited").toBeLessThan(20);
			const spent = await concurrently(10, 10, unknown);
			if (spent.some((response) => response.status === 429)) break;
		}
		// Then the known route, each time followed by a fresh ID. A limited
		// fresh ID says that the known route was served past the budget: a
		// limited call is not counted and nothing else was counted in between,
		// so both fell in one window that was already full. Should a window turn
		// meanwhile, the fresh IDs spend the new one until they are limited again.
		let servedPastBudget = 0;
		for (let round = 0; servedPastBudget < 100; round++) {
			expect(round, "rounds to serve 100 requests past the budget").toBeLessThan(400);
			expect((await known()).status).toBe(200);
			const probe = await unknown();
			expect([429, 502]).toContain(probe.status);
			if (probe.status === 429) servedPastBudget += 1;
		}
	});

	it("limit one caller's wakes of one sandbox, without holding back its other sandboxes", async () => {
		const [id = "", other = ""] = [freshId("loop"), freshId("loop")];
		const client = newClient();
		for (const sandbox of [id, other]) await env.admin.create({ id: sandbox });
		// A caller who pauses and wakes one sandbox in a loop, 5 wakes per
		// window, until it is limited; then its other sandbox is woken, and the
		// loop goes on until the next wake is limited too: the other sandbox was
		// served while this one was held back (nothing was counted for this one
		// in between, so both limited wakes fell in one window).
		const started = Date.now();
		const responses: Received[] = [];
		let otherServed = false;
		for (;;) {
			expect(responses.length, "wakes before the limit showed twice").toBeLessThan(60);
			if ((await env.admin.get(id)).state === "running") await env.admin.pause(id);
			const response = await fetchVia(uncached.url, sandboxHost(id), "/", { headers: client });
			responses.push(response);
			if (response.status !== 429) {
				otherServed = false;
				continue;
			}
			if (otherServed) break;
			// Another sandbox of the same client is not held back.
			if ((await env.admin.get(other)).state === "running") await env.admin.pause(other);
			expect((await fetchVia(uncached.url, sandboxHost(other), "/", { headers: client })).status).toBe(200);
			otherServed = true;
		}
		const windows = windowsTouched(started, Date.now());
		const counts = statuses(responses);
		expect(Object.keys(counts).sort()).toEqual(["200", "429"]);
		// A window's whole budget before the first limited wake, and at most
		// that budget in each window the loop touched.
		expect(responses.findIndex((response) => response.status === 429)).toBeGreaterThanOrEqual(5);
		expect(counts[200]).toBeLessThanOrEqual(5 * windows);
		// Every wake made one RPC; every limited request made none.
		expect(callsFor(id)).toHaveLength(counts[200] ?? 0);
	});

	it("bound the requests waiting on one resume: past RESUME_MAX_WAITERS they get a 503", async () => {
		const bounded = await startWorker({ ...env.vars, RESUME_MAX_WAITERS: "10" }, apiSecret);
		const { id } = await pausedSandbox();
		// Long enough that all 40 arrive while the one resume is in flight,
		// even on a loaded machine (RESUME_TIMEOUT_MS is 5 s here).
		await env.admin.setFault({ sandboxId: id, delayMs: 3000 });
		try {
			const client = newClient();
			const responses = await Promise.all(
				Array.from({ length: 40 }, () => fetchVia(bounded.url, sandboxHost(id), "/", { headers: client })),
			);
			const counts = statuses(responses);
			expect(Object.keys(counts).sort()).toEqual(["200", "503"]);
			expect(counts[503]).toBeGreaterThan(0);
			const full = responses.find((response) => response.status === 503);
			expect(full?.json()).toMatchObject({ reason: "resume_queue_full" });
			expect(full?.headers["retry-after"]).toBe("1");
			expect(callsFor(id)).toHaveLength(1);
		} finally {
			await env.admin.clearFault();
			await bounded.close();
		}
	});
});

describe("an app that claims its sandbox is not there", () => {
	it.each([
		["a pushed route", () => env.worker],
		["a learned route", () => uncached],
	])("costs at most one RPC for 50 requests, on %s", async (kind, worker) => {
		// The control plane pushes routes to env.worker only; `uncached` learns
		// them from resumes, which E2B gives only for a sandbox paused before.
		const id = freshId("forger");
		await env.admin.create({ id });
		const client = newClient();
		if (kind === "a learned route") {
			await env.admin.pause(id);
			expect((await fetchVia(worker().url, sandboxHost(id), "/headers", { headers: client })).status).toBe(200);
		}
		const responses = await sequential(50, () =>
			fetchVia(worker().url, sandboxHost(id), "/status/502?header=X-E2b-Sandbox-Not-Found:1", { headers: client }),
		);
		expect(statuses(responses)).toEqual({ 502: 50 });
		// The wake, if any, and one RPC to check the first claim.
		expect(callsFor(id).length).toBeLessThanOrEqual(kind === "a learned route" ? 2 : 1);
		// The sandbox's other paths are still served.
		expect((await fetchVia(worker().url, sandboxHost(id), "/headers", { headers: client })).status).toBe(200);
	});
});
