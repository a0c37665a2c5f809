import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type E2eStack, freshId, sandboxHost, startE2eStack } from "./fixture.ts";
import { fetchVia } from "./http-client.ts";

// The per-client budgets. The resume budget (wrangler.toml: 30 per 10 s) is keyed on a
// client's /64 for IPv6: a subscriber holds a whole /64, and rotating
// addresses within it must not buy it a budget per address.

let env: E2eStack;
beforeAll(async () => {
	env = await startE2eStack({ resumeDelayMs: 50 });
});
afterAll(async () => {
	await env?.close();
});

const perClientBudget = 30;

/**
 * How many of the limiter's windows the span from `start` to `end` (Date.now()
 * values) touches. Miniflare's limiter keeps one count per key for the window
 * `Math.floor(Date.now() / (period * 1000))` (period 10 s here): fixed windows,
 * aligned to the wall clock, each starting again from 0. A run may straddle
 * one turn, or more on a loaded machine, and spend a budget in each window.
 */
function windowsTouched(start: number, end: number): number {
	return Math.floor(end / 10_000) - Math.floor(start / 10_000) + 1;
}

async function unknownIdsFrom(addresses: readonly string[]) {
	const ids = addresses.map(() => freshId("v6"));
	const statuses: number[] = [];
	const started = Date.now();
	for (const [i, address] of addresses.entries()) {
		const response = await fetchVia(env.worker.url, sandboxHost(ids[i] ?? ""), "/", {
			headers: { accept: "application/json", "cf-connecting-ip": address },
		});
		statuses.push(response.status);
	}
	const wanted = new Set(ids);
	const calls = env.stack.controlPlane.calls().filter((call) => wanted.has(call.sandboxId)).length;
	return { calls, limited: statuses.filter((s) => s === 429).length, windows: windowsTouched(started, Date.now()) };
}

describe("the per-client resume budget over IPv6", () => {
	it("is one budget for a whole /64, however many of its addresses a client sends from", async () => {
		const addresses = Array.from(
			{ length: 200 },
			(_, i) => `2001:db8:7:1:${((i * 7919) % 65536).toString(16)}::${(i + 1).toString(16)}`,
		);
		const { calls, limited, windows } = await unknownIdsFrom(addresses);
		// A budget for each window the run touched; keyed per address it would be 200.
		expect(calls).toBeGreaterThan(0);
		expect(calls).toBeLessThanOrEqual(windows * perClientBudget);
		expect(limited).toBeGreaterThanOrEqual(addresses.length - windows * perClientBudget);
	});

	it("is a budget of its own for another /64", async () => {
		const { calls, limited } = await unknownIdsFrom(["2001:db8:7:2::1", "2001:db8:7:2::2"]);
		expect(calls).toBe(2);
		expect(limited).toBe(0);
	});
});

describe("the per-client lookup budget (lookups past every cache, before an object is addressed)", () => {
	const lookupBudget = 20;
	let limited: E2eStack;
	beforeAll(async () => {
		// No route caches: every request is a lookup past every cache, as when an isolate's copy lapses.
		limited = await startE2eStack({
			resumeDelayMs: 50,
			limits: { lookupsPerClient: lookupBudget },
			workerVars: { ROUTE_CACHE_TTL_MS: "0", LOCATION_CACHE_TTL_MS: "0" },
		});
	});
	afterAll(async () => {
		await limited?.close();
	});

	const get = (id: string, client: string) =>
		fetchVia(limited.worker.url, sandboxHost(id), "/", {
			headers: { accept: "application/json", "cf-connecting-ip": client },
		});

	it("turns a flood of unknown IDs away in the Worker, and leaves the client's own sandbox and other clients served", async () => {
		const client = "198.18.7.1";
		// The client's own sandbox, already in the isolate's cache.
		const own = freshId("own");
		await limited.admin.create({ id: own });
		expect((await get(own, client)).status).toBe(200);

		const ids = Array.from({ length: 100 }, () => freshId("flood"));
		const answers = [];
		const started = Date.now();
		for (const id of ids) answers.push(await get(id, client));
		const windows = windowsTouched(started, Date.now());
		const refused = answers.filter((r) => r.status === 429 && r.json().reason === "lookup_rate_limited");
		// A budget for each window the flood touched.
		expect(refused.length).toBeGreaterThanOrEqual(ids.length - windows * lookupBudget);
		expect(refused[0]?.headers["retry-after"]).toBe("10");
		const wanted = new Set(ids);
		expect(limited.stack.controlPlane.calls().filter((c) => wanted.has(c.sandboxId)).length).toBeLessThanOrEqual(
			windows * lookupBudget,
		);

		// Its own sandbox, which this isolate had a route for lately, is not counted against it.
		for (let i = 0; i < 3; i++) expect((await get(own, client)).status).toBe(200);
		const other = freshId("other");
		await limited.admin.create({ id: other });
		expect((await get(other, "198.18.7.2")).status).toBe(200);
	});
});
