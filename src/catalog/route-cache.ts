import type { Config } from "../config.ts";
import { type Route, sameRoute } from "./route.ts";
import { type Entry, TtlCache } from "./ttl-cache.ts";

/** A route the isolate holds, as read for one request. */
export type CachedRoute = Entry<Route>;

/**
 * The isolate's cache of resolved routes, which keeps hot traffic off the
 * catalog object. A route is kept for the TTL, never past its own expiry.
 */
export class RouteCache {
	readonly #entries: TtlCache<Route>;

	constructor(options: { ttlMs: number; maxEntries: number }) {
		this.#entries = new TtlCache(options);
	}

	get(sandboxId: string, now = Date.now()): Route | undefined {
		return this.#entries.get(sandboxId, now);
	}

	/** The held route's entry, for a reader that may refresh it (see `claimRefresh`). */
	read(sandboxId: string, now = Date.now()): CachedRoute | undefined {
		return this.#entries.entry(sandboxId, now);
	}

	/**
	 * Whether this reader is the one to refresh `entry`: the first reader
	 * past its `refreshAt` takes that up, once, so that one request asks for
	 * a fresher copy while every other keeps being served from this one.
	 * Without it, every connection that met the entry's end would ask the
	 * catalog at once.
	 */
	claimRefresh(entry: CachedRoute, now = Date.now()): boolean {
		if (now < entry.refreshAt) return false;
		entry.refreshAt = Number.POSITIVE_INFINITY;
		return true;
	}

	/**
	 * Puts a refreshed copy in place of `read`, unless something replaced or
	 * dropped it meanwhile, or the copy is older than the one held (another
	 * isolate's late write to the location). Whether it was put.
	 */
	refreshed(
		sandboxId: string,
		read: CachedRoute,
		route: Route,
		now = Date.now(),
		until = Number.POSITIVE_INFINITY,
	): boolean {
		if (!this.#entries.holds(sandboxId, read) || route.learnedAt < read.value.learnedAt) return false;
		this.set(sandboxId, route, now, until);
		return true;
	}

	/** `until`: a shorter life for a copy taken from another copy. */
	set(sandboxId: string, route: Route, now = Date.now(), until = Number.POSITIVE_INFINITY): void {
		this.#entries.set(sandboxId, route, now, Math.min(route.expiresAt, until));
	}

	/** Drops the route, but only if it is still `stale`, so a newer one (even on the same node) survives. */
	invalidate(sandboxId: string, stale: Route): void {
		const cached = this.#entries.peek(sandboxId);
		if (cached !== undefined && sameRoute(cached, stale)) this.#entries.delete(sandboxId);
	}

	/** Drops whatever is cached for the sandbox: the catalog was written. */
	delete(sandboxId: string): void {
		this.#entries.delete(sandboxId);
	}

	get size(): number {
		return this.#entries.size;
	}
}

let isolateCache: { ttlMs: number; maxEntries: number; cache: RouteCache } | undefined;

/**
 * The one cache of this isolate, shared by every request it serves: made
 * again, empty, for settings other than those it was made with. Two reads
 * and two comparisons, so that a hit stays a synchronous Map lookup.
 */
export function isolateRouteCache(config: Pick<Config, "routeCacheTtlMs" | "routeCacheMaxEntries">): RouteCache {
	const ttlMs = config.routeCacheTtlMs;
	const maxEntries = config.routeCacheMaxEntries;
	if (isolateCache === undefined || isolateCache.ttlMs !== ttlMs || isolateCache.maxEntries !== maxEntries) {
		isolateCache = { ttlMs, maxEntries, cache: new RouteCache({ ttlMs, maxEntries }) };
	}
	return isolateCache.cache;
}
