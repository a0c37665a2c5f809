import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { FailureCache } from "../../src/catalog/failure-cache.ts";
import worker from "../../src/index.ts";

describe("FailureCache", () => {
	it("keeps a failure no longer than its TTL nor than the object keeps it", () => {
		const cache = new FailureCache({ ttlMs: 5_000, maxEntries: 10 });
		cache.set("a", { code: "sandbox_not_found" }, 30_000, 0);
		expect(cache.get("a", 4_999)?.code).toBe("sandbox_not_found");
		expect(cache.get("a", 5_000)).toBeUndefined();
		cache.set("b", { code: "sandbox_not_found" }, 2_000, 0);
		expect(cache.get("b", 2_000)).toBeUndefined();
	});

	it("keeps a copy of another copy no longer than it is told", () => {
		const cache = new FailureCache({ ttlMs: 5_000, maxEntries: 10 });
		cache.set("a", { code: "sandbox_not_found" }, 30_000, 0, 1_500);
		expect(cache.get("a", 1_499)?.code).toBe("sandbox_not_found");
		expect(cache.get("a", 1_500)).toBeUndefined();
	});

	it("says Retry-After as the object would: until the object's backoff ends", () => {
		const cache = new FailureCache({ ttlMs: 5_000, maxEntries: 10 });
		cache.set("a", { code: "control_plane_unavailable", retryAfterSeconds: 9 }, 9_000, 0);
		expect(cache.get("a", 3_100)?.retryAfterSeconds).toBe(6);
	});

	it("is bounded, the least recently used out first", () => {
		const cache = new FailureCache({ ttlMs: 5_000, maxEntries: 3 });
		for (const id of ["a", "b", "c"]) cache.set(id, { code: "sandbox_not_found" }, 10_000, 0);
		// A use counts to the second (ttl-cache.ts): "a" is used a second after it was set.
		cache.get("a", 1_000);
		cache.set("d", { code: "sandbox_not_found" }, 10_000, 1_000);
		expect(cache.size).toBe(3);
		expect(cache.get("b", 1_001)).toBeUndefined();
		expect(cache.get("a", 1_001)).toBeDefined();
	});

	it("keeps nothing when ROUTE_CACHE_TTL_MS or NEGATIVE_CACHE_MAX_ENTRIES is 0, and forgets on delete", () => {
		for (const options of [
			{ ttlMs: 0, maxEntries: 10 },
			{ ttlMs: 5_000, maxEntries: 0 },
		]) {
			const cache = new FailureCache(options);
			cache.set("a", { code: "sandbox_not_found" }, 10_000, 0);
			expect(cache.get("a", 1)).toBeUndefined();
		}
		const cache = new FailureCache({ ttlMs: 5_000, maxEntries: 10 });
		cache.set("a", { code: "sandbox_not_found" }, 10_000, 0);
		cache.delete("a");
		expect(cache.get("a", 1)).toBeUndefined();
	});
});

describe("the isolate's failure cache in the Worker", () => {
	it("answers a flood for one failing sandbox without reaching its object", async () => {
		// The unit project's control plane (port 9) refuses connections: the
		// object backs off for 0.5-1 s, and the isolate keeps that answer.
		let objectCalls = 0;
		const counted = {
			...env,
			SANDBOX_ROUTE: new Proxy(env.SANDBOX_ROUTE, {
				get(target, property, receiver) {
					if (property === "getByName") {
						return (name: string) => {
							objectCalls += 1;
							return target.getByName(name);
						};
					}
					return Reflect.get(target, property, receiver);
				},
			}),
		};
		const id = `flood${Date.now().toString(36)}`;
		const statuses: number[] = [];
		// How many object calls had been made when each request sent within
		// the object's shortest backoff (half a second from the first failure)
		// was answered. The first failure comes just before the first answer:
		// the window is counted from that answer, less a margin, since the
		// first request's own time (the control-plane client loaded on its
		// first use, slow under this test runner) is not the backoff's.
		const callsWithinBackoff: number[] = [];
		let started = Number.POSITIVE_INFINITY;
		for (let i = 0; i < 50; i++) {
			const sent = Date.now();
			const request = new Request(`http://localhost/`, {
				headers: { "e2b-sandbox-id": id, "e2b-sandbox-port": "3000", accept: "application/json" },
			});
			const response = await worker.fetch(request, counted, {
				waitUntil: () => {},
				passThroughOnException: () => {},
				props: {},
			} as unknown as ExecutionContext);
			statuses.push(response.status);
			await response.arrayBuffer();
			if (i === 0) started = Date.now();
			if (sent - started < 400 || i === 0) callsWithinBackoff.push(objectCalls);
		}
		// 50 requests here take far less than the backoff; a loaded machine may
		// take longer, and a request after it may rightly reach the object.
		expect(callsWithinBackoff.length).toBeGreaterThan(1);
		expect(new Set(callsWithinBackoff)).toEqual(new Set([1]));
		expect(new Set(statuses)).toEqual(new Set([503]));
		void exports;
	});
});
