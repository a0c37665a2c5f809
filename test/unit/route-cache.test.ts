import { describe, expect, it } from "vitest";
import type { Route } from "../../src/catalog/route.ts";
import { RouteCache } from "../../src/catalog/route-cache.ts";

const t0 = 1_700_000_000_000;
const hour = 3_600_000;

function route(nodeIp: string, expiresAt = t0 + hour): Route {
	return { nodeIp, learnedAt: t0, expiresAt };
}

describe("RouteCache", () => {
	it("returns a route until its TTL runs out", () => {
		const cache = new RouteCache({ ttlMs: 5_000, maxEntries: 10 });
		const r = route("10.0.0.1");
		cache.set("a", r, t0);
		expect(cache.get("a", t0)).toBe(r);
		expect(cache.get("a", t0 + 4_999)).toBe(r);
		expect(cache.get("a", t0 + 5_000)).toBeUndefined();
		// An expired entry is dropped, not kept around.
		expect(cache.size).toBe(0);
		expect(cache.get("a", t0)).toBeUndefined();
	});

	it("keeps a copy of another copy no longer than it is told", () => {
		const cache = new RouteCache({ ttlMs: 5_000, maxEntries: 10 });
		const r = route("10.0.0.1");
		cache.set("a", r, t0, t0 + 1_200);
		expect(cache.get("a", t0 + 1_199)).toBe(r);
		expect(cache.get("a", t0 + 1_200)).toBeUndefined();
	});

	it("misses a sandbox it never saw", () => {
		const cache = new RouteCache({ ttlMs: 5_000, maxEntries: 10 });
		cache.set("a", route("10.0.0.1"), t0);
		expect(cache.get("b", t0)).toBeUndefined();
	});

	it("never keeps a route past the route's own expiry", () => {
		const cache = new RouteCache({ ttlMs: 60_000, maxEntries: 10 });
		cache.set("a", route("10.0.0.1", t0 + 1_000), t0);
		expect(cache.get("a", t0 + 999)).toBeDefined();
		expect(cache.get("a", t0 + 1_000)).toBeUndefined();
	});

	it("does not store a route that has already expired", () => {
		const cache = new RouteCache({ ttlMs: 60_000, maxEntries: 10 });
		cache.set("a", route("10.0.0.1", t0), t0);
		cache.set("b", route("10.0.0.2", t0 - 1), t0);
		expect(cache.size).toBe(0);
		expect(cache.get("a", t0 - 1)).toBeUndefined();
	});

	it("replaces a sandbox's route and restarts its TTL", () => {
		const cache = new RouteCache({ ttlMs: 5_000, maxEntries: 10 });
		cache.set("a", route("10.0.0.1"), t0);
		cache.set("a", route("10.0.0.2"), t0 + 4_000);
		expect(cache.size).toBe(1);
		expect(cache.get("a", t0 + 8_000)?.nodeIp).toBe("10.0.0.2");
	});

	it("evicts the least recently set entry beyond maxEntries", () => {
		const cache = new RouteCache({ ttlMs: 60_000, maxEntries: 2 });
		cache.set("a", route("10.0.0.1"), t0);
		cache.set("b", route("10.0.0.2"), t0);
		cache.set("c", route("10.0.0.3"), t0);
		expect(cache.size).toBe(2);
		expect(cache.get("a", t0)).toBeUndefined();
		expect(cache.get("b", t0)?.nodeIp).toBe("10.0.0.2");
		expect(cache.get("c", t0)?.nodeIp).toBe("10.0.0.3");
	});

	it("counts a get as a use, so a hot entry survives", () => {
		const cache = new RouteCache({ ttlMs: 60_000, maxEntries: 2 });
		cache.set("a", route("10.0.0.1"), t0);
		cache.set("b", route("10.0.0.2"), t0);
		expect(cache.get("a", t0 + 1_000)).toBeDefined(); // "b" is now the least recently used
		cache.set("c", route("10.0.0.3"), t0 + 1_000);
		expect(cache.get("a", t0 + 1_000)?.nodeIp).toBe("10.0.0.1");
		expect(cache.get("b", t0 + 1_000)).toBeUndefined();
		expect(cache.get("c", t0 + 1_000)?.nodeIp).toBe("10.0.0.3");
	});

	it("counts uses to the second: a hot entry moves back once a second, not on every read", () => {
		const cache = new RouteCache({ ttlMs: 60_000, maxEntries: 2 });
		cache.set("a", route("10.0.0.1"), t0);
		cache.set("b", route("10.0.0.2"), t0);
		expect(cache.get("a", t0 + 999)).toBeDefined(); // within the second it was set: no move
		cache.set("c", route("10.0.0.3"), t0 + 999);
		expect(cache.get("a", t0 + 999)).toBeUndefined();
		expect(cache.get("b", t0 + 999)?.nodeIp).toBe("10.0.0.2");
	});

	it("counts a re-set as a use", () => {
		const cache = new RouteCache({ ttlMs: 60_000, maxEntries: 2 });
		cache.set("a", route("10.0.0.1"), t0);
		cache.set("b", route("10.0.0.2"), t0);
		cache.set("a", route("10.0.0.9"), t0);
		cache.set("c", route("10.0.0.3"), t0);
		expect(cache.get("a", t0)?.nodeIp).toBe("10.0.0.9");
		expect(cache.get("b", t0)).toBeUndefined();
	});

	it("stays within maxEntries under many inserts", () => {
		const cache = new RouteCache({ ttlMs: 60_000, maxEntries: 50 });
		for (let i = 0; i < 500; i++) cache.set(`s${i}`, route("10.0.0.1"), t0);
		expect(cache.size).toBe(50);
		expect(cache.get("s449", t0)).toBeUndefined();
		expect(cache.get("s450", t0)).toBeDefined();
		expect(cache.get("s499", t0)).toBeDefined();
	});

	it("invalidates only the very route that went stale", () => {
		const cache = new RouteCache({ ttlMs: 60_000, maxEntries: 10 });
		const current = route("10.0.0.2");
		cache.set("a", current, t0);
		cache.invalidate("a", route("10.0.0.1")); // an older route's node: the newer route survives
		// A route learned earlier on the same node: the newer learning survives too.
		cache.invalidate("a", { ...current, learnedAt: current.learnedAt - 1 });
		expect(cache.get("a", t0)?.nodeIp).toBe("10.0.0.2");
		cache.invalidate("a", { ...current });
		expect(cache.get("a", t0)).toBeUndefined();
		expect(cache.size).toBe(0);
	});

	it("ignores invalidating a sandbox it does not hold", () => {
		const cache = new RouteCache({ ttlMs: 60_000, maxEntries: 10 });
		cache.set("a", route("10.0.0.1"), t0);
		cache.invalidate("b", route("10.0.0.1"));
		expect(cache.get("a", t0)?.nodeIp).toBe("10.0.0.1");
	});

	it.each([
		["maxEntries 0", { ttlMs: 60_000, maxEntries: 0 }],
		["ttlMs 0", { ttlMs: 0, maxEntries: 10 }],
	])("is disabled by %s", (_label, options) => {
		const cache = new RouteCache(options);
		cache.set("a", route("10.0.0.1"), t0);
		expect(cache.size).toBe(0);
		expect(cache.get("a", t0)).toBeUndefined();
	});

	it("uses the clock when no time is passed", () => {
		const cache = new RouteCache({ ttlMs: 60_000, maxEntries: 10 });
		const now = Date.now();
		cache.set("a", route("10.0.0.1", now + hour));
		expect(cache.get("a")?.nodeIp).toBe("10.0.0.1");
		// Set at the real clock, it has long expired an hour and more later.
		expect(cache.get("a", now + 2 * hour)).toBeUndefined();
	});
});

describe("RouteCache: refreshing ahead of an entry's end", () => {
	it("asks exactly one reader to refresh, once the entry is four fifths through its life", () => {
		const cache = new RouteCache({ ttlMs: 5_000, maxEntries: 10 });
		cache.set("a", route("10.0.0.1"), t0);
		const early = cache.read("a", t0 + 3_999);
		expect(early && cache.claimRefresh(early, t0 + 3_999)).toBe(false);
		const readers = Array.from({ length: 5 }, () => cache.read("a", t0 + 4_000));
		const claims = readers.map((entry) => (entry === undefined ? undefined : cache.claimRefresh(entry, t0 + 4_000)));
		expect(claims).toEqual([true, false, false, false, false]);
		// Every reader is still served the held route while the one refreshes.
		expect(readers.map((entry) => entry?.value.nodeIp)).toEqual(Array(5).fill("10.0.0.1"));
		expect(cache.get("a", t0 + 4_999)?.nodeIp).toBe("10.0.0.1");
	});

	it("reckons four fifths of a shortened life: a copy that must end early is refreshed early", () => {
		const cache = new RouteCache({ ttlMs: 5_000, maxEntries: 10 });
		cache.set("a", route("10.0.0.1"), t0, t0 + 2_500);
		const entry = cache.read("a", t0 + 2_000);
		expect(entry && cache.claimRefresh(entry, t0 + 2_000)).toBe(true);
	});

	it("puts the refreshed copy in place, with a full life and a refresh of its own ahead", () => {
		const cache = new RouteCache({ ttlMs: 5_000, maxEntries: 10 });
		cache.set("a", route("10.0.0.1"), t0);
		const read = cache.read("a", t0 + 4_500);
		if (read === undefined || !cache.claimRefresh(read, t0 + 4_500)) throw new Error("no refresh claimed");
		expect(cache.refreshed("a", read, route("10.0.0.2"), t0 + 4_600)).toBe(true);
		expect(cache.get("a", t0 + 9_599)?.nodeIp).toBe("10.0.0.2");
		const next = cache.read("a", t0 + 8_600);
		expect(next && cache.claimRefresh(next, t0 + 8_600)).toBe(true);
	});

	it("drops a refresh that lands after the entry was replaced or dropped", () => {
		const cache = new RouteCache({ ttlMs: 5_000, maxEntries: 10 });
		const stale = route("10.0.0.1");
		cache.set("a", stale, t0);
		const read = cache.read("a", t0 + 4_000);
		if (read === undefined) throw new Error("no entry");
		// A node said "not here" and a resume placed the sandbox elsewhere, meanwhile.
		cache.invalidate("a", stale);
		cache.set("a", { nodeIp: "10.0.0.3", learnedAt: t0 + 4_100, expiresAt: t0 + hour }, t0 + 4_100);
		expect(cache.refreshed("a", read, route("10.0.0.1"), t0 + 4_200)).toBe(false);
		expect(cache.get("a", t0 + 4_200)?.nodeIp).toBe("10.0.0.3");
		cache.delete("a");
		expect(cache.refreshed("a", read, route("10.0.0.1"), t0 + 4_300)).toBe(false);
		expect(cache.get("a", t0 + 4_300)).toBeUndefined();
	});

	it("keeps the copy it holds over an older one: another isolate's late write to the location", () => {
		const cache = new RouteCache({ ttlMs: 5_000, maxEntries: 10 });
		cache.set("a", { nodeIp: "10.0.0.2", learnedAt: t0 + 1_000, expiresAt: t0 + hour }, t0 + 1_000);
		const read = cache.read("a", t0 + 5_000);
		if (read === undefined) throw new Error("no entry");
		expect(cache.refreshed("a", read, route("10.0.0.1"), t0 + 5_100)).toBe(false);
		expect(cache.get("a", t0 + 5_100)?.nodeIp).toBe("10.0.0.2");
	});
});
