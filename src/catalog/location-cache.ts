import type { Config } from "../config.ts";
import type { ResumeFailure } from "../resume-types.ts";
import type { Route } from "./route.ts";

/** What a location remembers of a sandbox: its route, or a failure that holds for every caller. */
export type LocationEntry =
	| { kind: "route"; route: Route }
	| { kind: "failure"; failure: ResumeFailure; until: number };

export interface StoredEntry {
	entry: LocationEntry;
	/** Never later than LOCATION_CACHE_TTL_MS from when it was stored, nor than a failure's own end. */
	cachedUntil: number;
}

const cacheName = "sandbox-routes";
const maxRememberedPuts = 10_000;

function signatureOf(entry: LocationEntry): string {
	return entry.kind === "route"
		? `route ${entry.route.nodeIp} ${entry.route.learnedAt} ${entry.route.resumedAt ?? ""} ${entry.route.keepalive ?? ""}`
		: `failure ${entry.failure.code} ${entry.until}`;
}

/**
 * The location's cache of settled routes (a named Cache API cache, which
 * each Cloudflare location keeps for itself), between the isolate cache and
 * the sandbox's object: the object is then asked about once per location
 * per TTL, not once per isolate. It holds only settled values, for at most
 * LOCATION_CACHE_TTL_MS; a stale route is caught by the node's "not here",
 * as a stale isolate entry is. Failures go in under the same rules as the
 * isolate's failure cache. Every operation is best effort: a cache that
 * fails is a miss, never an error.
 */
export class LocationCache {
	readonly #ttlMs: number;
	readonly #keyOrigin: string;
	// The opened cache, once it is: a promise kept here would be shared by
	// the isolate's requests, and cancelled when the one that made it ends.
	#cache: Cache | undefined;
	/**
	 * What this isolate last put for each sandbox, and until when it holds:
	 * the requests that waited on one wake all learn the same route, and one
	 * put of it is enough. Bounded like the isolate's other caches.
	 */
	readonly #lastPut = new Map<string, { signature: string; cachedUntil: number }>();

	constructor(options: { ttlMs: number; keyOrigin: string }) {
		this.#ttlMs = options.ttlMs;
		this.#keyOrigin = options.keyOrigin;
	}

	get enabled(): boolean {
		return this.#ttlMs >= 1000;
	}

	/** The entry, and when this location stops holding it: a copy taken from it must not outlive that. */
	async get(sandboxId: string, now = Date.now()): Promise<{ entry: LocationEntry; cachedUntil: number } | undefined> {
		if (!this.enabled) return undefined;
		try {
			const response = await (await this.#open()).match(this.#key(sandboxId));
			if (response === undefined) return undefined;
			const stored = (await response.json()) as StoredEntry;
			return stored.cachedUntil > now ? stored : undefined;
		} catch {
			return undefined;
		}
	}

	async put(sandboxId: string, entry: LocationEntry, now = Date.now()): Promise<void> {
		if (!this.enabled) return;
		const ends = entry.kind === "route" ? entry.route.expiresAt : entry.until;
		const cachedUntil = Math.min(now + this.#ttlMs, ends);
		if (cachedUntil - now < 1000) return;
		const signature = signatureOf(entry);
		const last = this.#lastPut.get(sandboxId);
		if (last !== undefined && last.signature === signature && last.cachedUntil - now >= 1000) return;
		this.#lastPut.delete(sandboxId);
		this.#lastPut.set(sandboxId, { signature, cachedUntil });
		if (this.#lastPut.size > maxRememberedPuts) {
			const oldest = this.#lastPut.keys().next().value;
			if (oldest !== undefined) this.#lastPut.delete(oldest);
		}
		// The cache counts whole seconds. Rounded up, so that it never drops
		// an entry early; the entry's own end is checked on every read.
		const maxAge = Math.ceil((cachedUntil - now) / 1000);
		const stored: StoredEntry = { entry, cachedUntil };
		try {
			await (await this.#open()).put(
				this.#key(sandboxId),
				new Response(JSON.stringify(stored), {
					headers: { "content-type": "application/json", "cache-control": `max-age=${maxAge}` },
				}),
			);
		} catch {
			// A location without a cache is only slower.
		}
	}

	async delete(sandboxId: string): Promise<void> {
		if (!this.enabled) return;
		this.#lastPut.delete(sandboxId);
		try {
			await (await this.#open()).delete(this.#key(sandboxId));
		} catch {
			// Its entry lapses within the TTL anyway.
		}
	}

	async #open(): Promise<Cache> {
		this.#cache ??= await caches.open(cacheName);
		return this.#cache;
	}

	#key(sandboxId: string): string {
		return `${this.#keyOrigin}/__sandbox-route/${sandboxId}`;
	}
}

let isolateHandle: { ttlMs: number; domain: string | undefined; cache: LocationCache } | undefined;

/**
 * This isolate's handle on its location's cache; keys are URLs on a served
 * domain's catalog host. Made again for other settings, with no memory of
 * what the last one put.
 */
export function locationCache(config: Pick<Config, "locationCacheTtlMs" | "sandboxDomains">): LocationCache {
	const ttlMs = config.locationCacheTtlMs;
	const domain = config.sandboxDomains[config.sandboxDomains.length - 1];
	if (isolateHandle === undefined || isolateHandle.ttlMs !== ttlMs || isolateHandle.domain !== domain) {
		isolateHandle = { ttlMs, domain, cache: new LocationCache({ ttlMs, keyOrigin: `https://edge.${domain}` }) };
	}
	return isolateHandle.cache;
}
