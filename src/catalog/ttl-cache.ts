interface Entry<V> {
	value: V;
	cachedUntil: number;
}

/**
 * A bounded map of settled values that each lapse at their own time: what
 * the isolate's caches are built on. It holds settled values only: a
 * promise shared across requests would be cancelled when the request that
 * created it ends. Least recently used out first; a Map keeps insertion
 * order, so re-inserting on a hit moves the entry to the back.
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
		const entry = this.#entries.get(key);
		if (entry === undefined) return undefined;
		this.#entries.delete(key);
		if (entry.cachedUntil <= now) return undefined;
		this.#entries.set(key, entry);
		return entry.value;
	}

	/** Keeps `value` for the TTL, or until `until` if that comes first. */
	set(key: string, value: V, now: number, until: number): void {
		if (this.#maxEntries === 0 || this.#ttlMs === 0) return;
		const cachedUntil = Math.min(now + this.#ttlMs, until);
		if (cachedUntil <= now) return;
		this.#entries.delete(key);
		this.#entries.set(key, { value, cachedUntil });
		if (this.#entries.size > this.#maxEntries) {
			const oldest = this.#entries.keys().next().value;
			if (oldest !== undefined) this.#entries.delete(oldest);
		}
	}

	/** The value held, lapsed or not, without touching its place. */
	peek(key: string): V | undefined {
		return this.#entries.get(key)?.value;
	}

	delete(key: string): void {
		this.#entries.delete(key);
	}

	get size(): number {
		return this.#entries.size;
	}
}
