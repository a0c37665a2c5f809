import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type E2eStack, freshId, sandboxHost, startE2eStack } from "./fixture.ts";
import { fetchVia } from "./http-client.ts";

// The per-client resume budget (wrangler.toml: 30 per 10 s) keyed on a
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

async function unknownIdsFrom(addresses: readonly string[]) {
	const ids = addresses.map(() => freshId("v6"));
	const statuses: number[] = [];
	for (const [i, address] of addresses.entries()) {
		const response = await fetchVia(env.worker.url, sandboxHost(ids[i] ?? ""), "/", {
			headers: { accept: "application/json", "cf-connecting-ip": address },
		});
		statuses.push(response.status);
	}
	const wanted = new Set(ids);
	const calls = env.stack.controlPlane.calls().filter((call) => wanted.has(call.sandboxId)).length;
	return { calls, limited: statuses.filter((s) => s === 429).length };
}

describe("the per-client resume budget over IPv6", () => {
	it("is one budget for a whole /64, however many of its addresses a client sends from", async () => {
		const addresses = Array.from(
			{ length: 200 },
			(_, i) => `2001:db8:7:1:${((i * 7919) % 65536).toString(16)}::${(i + 1).toString(16)}`,
		);
		const { calls, limited } = await unknownIdsFrom(addresses);
		// The limiter counts in fixed 10 s windows, so a run that straddles a
		// boundary may spend two budgets; keyed per address it would be 200.
		expect(calls).toBeGreaterThan(0);
		expect(calls).toBeLessThanOrEqual(2 * perClientBudget);
		expect(limited).toBeGreaterThanOrEqual(addresses.length - 2 * perClientBudget);
	});

	it("is a budget of its own for another /64", async () => {
		const { calls, limited } = await unknownIdsFrom(["2001:db8:7:2::1", "2001:db8:7:2::2"]);
		expect(calls).toBe(2);
		expect(limited).toBe(0);
	});
});
