import type { Config } from "../config.ts";
import type { ResumeFailure } from "../resume-types.ts";
import { TtlCache } from "./ttl-cache.ts";

interface Remembered {
	error: ResumeFailure;
	/** When the object stops answering with the failure. */
	until: number;
}

/**
 * The isolate's memory of failures that its sandboxes' objects remember for
 * every caller (not found, a control plane backing off), so that a flood of
 * requests for one unknown ID is answered here without reaching the object.
 * It keeps a failure no longer than ROUTE_CACHE_TTL_MS, the bound of every
 * copy outside the object, so that a route pushed since is served within
 * it; and at most NEGATIVE_CACHE_MAX_ENTRIES (default 10,000, about 1 MiB),
 * least recently used out first.
 */
export class FailureCache {
	readonly #entries: TtlCache<Remembered>;

	constructor(options: { ttlMs: number; maxEntries: number }) {
		this.#entries = new TtlCache(options);
	}

	get(sandboxId: string, now = Date.now()): ResumeFailure | undefined {
		const remembered = this.#entries.get(sandboxId, now);
		if (remembered === undefined || remembered.error.retryAfterSeconds === undefined) return remembered?.error;
		return { ...remembered.error, retryAfterSeconds: Math.max(1, Math.ceil((remembered.until - now) / 1000)) };
	}

	/** `keepUntil`: a shorter life for a copy taken from another copy. */
	set(sandboxId: string, error: ResumeFailure, until: number, now = Date.now(), keepUntil = until): void {
		this.#entries.set(sandboxId, { error, until }, now, Math.min(until, keepUntil));
	}

	/** The catalog was written for the sandbox: what was remembered no longer holds. */
	delete(sandboxId: string): void {
		this.#entries.delete(sandboxId);
	}

	get size(): number {
		return this.#entries.size;
	}
}

let isolateCache: { ttlMs: number; maxEntries: number; cache: FailureCache } | undefined;

/** The one failure cache of this isolate, shared by every request it serves: made again, empty, for other settings. */
export function isolateFailureCache(config: Pick<Config, "routeCacheTtlMs" | "negativeCacheMaxEntries">): FailureCache {
	const ttlMs = config.routeCacheTtlMs;
	const maxEntries = config.negativeCacheMaxEntries;
	if (isolateCache === undefined || isolateCache.ttlMs !== ttlMs || isolateCache.maxEntries !== maxEntries) {
		isolateCache = { ttlMs, maxEntries, cache: new FailureCache({ ttlMs, maxEntries }) };
	}
	return isolateCache.cache;
}
