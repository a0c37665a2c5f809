import type { Config } from "../config.ts";
import { type Route, sameRoute } from "./route.ts";

interface Entry {
	route: Route;
	cachedUntil: number;
}

/**
 * The isolate's cache of resolved routes, which keeps hot traffic off the
 * catalog object. It holds settled values only: a promise shared across
 * requests would be cancelled when the request that created it ends.
 * Bounded, evicting the least recently used; a Map keeps insertion order, so
 * re-inserting on a hit moves the entry to the back.
 */
export class RouteCache {
	readonly #entries = new Map<string, Entry>();
	readonly #ttlMs: number;
	readonly #maxEntries: number;

	constructor(options: { ttlMs: number; maxEntries: number }) {
		this.#ttlMs = options.ttlMs;
		this.#maxEntries = options.maxEntries;
	}

	get(sandboxId: string, now = Date.now()): Route | undefined {
		const entry = this.#entries.get(sandboxId);
		if (entry === undefined) return undefined;
		this.#entries.delete(sandboxId);
		if (entry.cachedUntil <= now) return undefined;
		this.#entries.set(sandboxId, entry);
		return entry.route;
	}

	/** `until`: a shorter life for a copy taken from another copy. */
	set(sandboxId: string, route: Route, now = Date.now(), until = Number.POSITIVE_INFINITY): void {
		if (this.#maxEntries === 0 || this.#ttlMs === 0) return;
		const cachedUntil = Math.min(now + this.#ttlMs, route.expiresAt, until);
		if (cachedUntil <= now) return;
		this.#entries.delete(sandboxId);
		this.#entries.set(sandboxId, { route, cachedUntil });
		if (this.#entries.size > this.#maxEntries) {
			const oldest = this.#entries.keys().next().value;
			if (oldest !== undefined) this.#entries.delete(oldest);
		}
	}

	/** Drops the route, but only if it is still `stale`, so a newer one (even on the same node) survives. */
	invalidate(sandboxId: string, stale: Route): void {
		const cached = this.#entries.get(sandboxId)?.route;
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

let isolateCache: RouteCache | undefined;

/** The one cache of this isolate, shared by every request it serves. */
export function isolateRouteCache(config: Config): RouteCache {
	isolateCache ??= new RouteCache({ ttlMs: config.routeCacheTtlMs, maxEntries: config.routeCacheMaxEntries });
	return isolateCache;
}
