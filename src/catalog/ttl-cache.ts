export interface Entry<V> {
	value: V;
	cachedUntil: number;
	/** When the first reader should fetch a fresher copy; infinite once one has taken that up. */
	refreshAt: number;
	/** When the entry last moved to the back of the order, as most recently used. */
	usedAt: number;
}

const touchIntervalMs = 1000;

/**
 * Where in its life an entry becomes due for refreshing ahead of its end:
 * late enough that an idle sandbox's entry is seldom refreshed in vain, early
 * enough that the refresh (a Cache API read or an object call, milliseconds)
 * lands well before the entry lapses.
 */
const refreshAfterShare = 0.8;

/**
 * A bounded map of settled values that each lapse at their own time: what
 * the isolate's caches are built on. It holds settled values only: a
 * promise shared across requests would be cancelled when the request that
 * created it ends. Least recently used out first, to the second; a Map
 * keeps insertion order, so re-inserting on a hit moves the entry to the back.
 */
export class TtlCache<V> {
	readonly #entries = new Map<string, Entry<V>>();
	readonly #ttlMs: number;
	readonly #maxEntries: number;

	constructor(options: { ttlMs: number; maxEntries: number }) {
		this.#ttlMs = options.ttlMs;
		this.#maxEntries = options.maxEntries;
	}

	get(key: string, now: number): V | undefined {
		return this.entry(key, now)?.value;
	}

	/** The live entry itself, for a reader that may refresh it (see `refreshAt`). */
	entry(key: string, now: number): Entry<V> | undefined {
		const entry = this.#entries.get(key);
		if (entry === undefined) return undefined;
		if (entry.cachedUntil <= now) {
			this.#entries.delete(key);
			return undefined;
		}
		// Moved to the back at most once a second: a hot entry is read
		// thousands of times a second, and the order needs no finer grain.
		if (now - entry.usedAt >= touchIntervalMs) {
			entry.usedAt = now;
			this.#entries.delete(key);
			this.#entries.set(key, entry);
		}
		return entry;
	}

	/** Keeps `value` for the TTL, or until `until` if that comes first. */
	set(key: string, value: V, now: number, until: number): void {
		if (this.#maxEntries === 0 || this.#ttlMs === 0) return;
		const cachedUntil = Math.min(now + this.#ttlMs, until);
		if (cachedUntil <= now) return;
		this.#entries.delete(key);
		this.#entries.set(key, {
			value,
			cachedUntil,
			refreshAt: now + (cachedUntil - now) * refreshAfterShare,
			usedAt: now,
		});
		if (this.#entries.size > this.#maxEntries) {
			const oldest = this.#entries.keys().next().value;
			if (oldest !== undefined) this.#entries.delete(oldest);
		}
	}

	/** The value held, lapsed or not, without touching its place. */
	peek(key: string): V | undefined {
		return this.#entries.get(key)?.value;
	}

	/** Whether `entry` is still the one held for `key`: nothing replaced or dropped it since it was read. */
	holds(key: string, entry: Entry<V>): boolean {
		return this.#entries.get(key) === entry;
	}

	delete(key: string): void {
		this.#entries.delete(key);
	}

	get size(): number {
		return this.#entries.size;
	}
}
