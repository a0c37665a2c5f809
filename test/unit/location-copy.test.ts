import { env } from "cloudflare:workers";
import { afterEach, expect, it, vi } from "vitest";
import { LocationCache } from "../../src/catalog/location-cache.ts";
import worker from "../../src/index.ts";
import { spyUpstream } from "./spied-upstream.ts";

afterEach(() => {
	vi.restoreAllMocks();
});

it("keeps an isolate's copy of a location entry only for the rest of ROUTE_CACHE_TTL_MS", {
	timeout: 20_000,
}, async () => {
	// Copies from the object live 6 s, the location's 4 s, so an isolate keeps
	// what it reads there 2 s: time enough for the steps inside each span, even
	// on a loaded machine.
	const settings = { ...env, ROUTE_CACHE_TTL_MS: "6000", LOCATION_CACHE_TTL_MS: "4000" };
	const ctx = { waitUntil: () => {}, passThroughOnException: () => {}, props: {} } as unknown as ExecutionContext;
	const location = new LocationCache({ ttlMs: 4_000, keyOrigin: "https://edge.localhost" });
	const id = `copy${Date.now().toString(36)}`;
	const upstream = spyUpstream({
		nodes: { "10.8.8.1": () => new Response("a"), "10.8.8.2": () => new Response("b") },
	});
	const send = async () => {
		const request = new Request("http://localhost/", { headers: { "e2b-sandbox-id": id, "e2b-sandbox-port": "3000" } });
		return (await worker.fetch(request, settings, ctx)).text();
	};
	const routeTo = (nodeIp: string) => {
		const now = Date.now();
		return { kind: "route" as const, route: { nodeIp, learnedAt: now, expiresAt: now + 60_000 } };
	};

	await location.put(id, routeTo("10.8.8.1"));
	expect(await send()).toBe("a");
	// The location learns of a new node; the isolate's copy still holds for its two seconds.
	await location.put(id, routeTo("10.8.8.2"));
	expect(await send()).toBe("a");
	// Past them (and within the new entry's four), the isolate reads the location again.
	await new Promise((resolve) => setTimeout(resolve, 2_100));
	expect(await send()).toBe("b");
	expect(upstream.resumes).toHaveLength(0);
});
