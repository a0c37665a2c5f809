import type { Config } from "../config.ts";
import type { ResumeFailure } from "../resume-types.ts";

interface Entry {
	error: ResumeFailure;
	/** When the object stops answering with the failure. */
	until: number;
	/** When this isolate stops: never later than `until`, nor than ROUTE_CACHE_TTL_MS from now. */
	cachedUntil: number;
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
	readonly #entries = new Map<string, Entry>();
	readonly #ttlMs: number;
	readonly #maxEntries: number;

	constructor(options: { ttlMs: number; maxEntries: number }) {
		this.#ttlMs = options.ttlMs;
		this.#maxEntries = options.maxEntries;
	}

	get(sandboxId: string, now = Date.now()): ResumeFailure | undefined {
		const entry = this.#entries.get(sandboxId);
		if (entry === undefined) return undefined;
		this.#entries.delete(sandboxId);
		if (entry.cachedUntil <= now) return undefined;
		this.#entries.set(sandboxId, entry);
		if (entry.error.retryAfterSeconds === undefined) return entry.error;
		return { ...entry.error, retryAfterSeconds: Math.max(1, Math.ceil((entry.until - now) / 1000)) };
	}

	/** `keepUntil`: a shorter life for a copy taken from another copy. */
	set(sandboxId: string, error: ResumeFailure, until: number, now = Date.now(), keepUntil = until): void {
		if (this.#maxEntries === 0 || this.#ttlMs === 0) return;
		const cachedUntil = Math.min(now + this.#ttlMs, until, keepUntil);
		if (cachedUntil <= now) return;
		this.#entries.delete(sandboxId);
		this.#entries.set(sandboxId, { error, until, cachedUntil });
		if (this.#entries.size > this.#maxEntries) {
			const oldest = this.#entries.keys().next().value;
			if (oldest !== undefined) this.#entries.delete(oldest);
		}
	}

	/** The catalog was written for the sandbox: what was remembered no longer holds. */
	delete(sandboxId: string): void {
		this.#entries.delete(sandboxId);
	}

	get size(): number {
		return this.#entries.size;
	}
}

let isolateCache: FailureCache | undefined;

/** The one failure cache of this isolate, shared by every request it serves. */
export function isolateFailureCache(config: Config): FailureCache {
	isolateCache ??= new FailureCache({ ttlMs: config.routeCacheTtlMs, maxEntries: config.negativeCacheMaxEntries });
	return isolateCache;
}
