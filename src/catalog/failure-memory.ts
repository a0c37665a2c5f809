import type { ResumeFailure } from "../resume-types.ts";
import { backoffDelay } from "../rules/backoff.ts";

export interface FailureMemorySettings {
	notFoundCacheMs: number;
	refusalCacheMs: number;
	resumeBackoffMaxMs: number;
}

/** What outlives the object's eviction: the failures that hold for every caller. */
export interface SandboxWideFailures {
	notFoundUntil: number;
	backoff?: { failures: number; until: number; error: ResumeFailure };
}

/** Where the object keeps them; `save(undefined)` removes them. */
export interface FailureStore {
	load(): SandboxWideFailures | undefined;
	save(failures: SandboxWideFailures | undefined): void;
}

/** A failure answered from memory, and until when; `sandboxWide` failures hold for every caller. */
export interface RememberedFailure {
	error: ResumeFailure;
	until: number;
	sandboxWide: boolean;
}

// Refusals are kept per credentials; a flood of distinct tokens must not
// grow the object's memory without end, so the oldest are dropped first.
const maxRememberedRefusals = 256;
// A failing control plane is asked again after this, doubling per failure.
const firstBackoffMs = 1000;

/**
 * What one sandbox's catalog object remembers of failed resumes, so that
 * repeating a request does not repeat the RPC:
 * - a not-found, for every caller, for `notFoundCacheMs` (E2B's edge keeps
 *   it 30 s); E2B answers NotFound before it looks at credentials;
 * - a refusal, only for the credentials refused, for `refusalCacheMs`, so
 *   that a stranger's bad token never shuts out the owner's good one;
 * - a failing control plane (unavailable, timed out, garbage, rate limiting
 *   us), for every caller, with a backoff that doubles per failure and is
 *   jittered, so that objects do not all ask again at the same moment.
 * Anything the control plane writes, and any successful resume, clears it.
 * The sandbox-wide failures are stored, because an idle object is evicted
 * from memory (within seconds under `wrangler dev`) long before 30 s pass;
 * refusals, keyed by credentials, are kept in memory only.
 */
export class FailureMemory {
	readonly #settings: FailureMemorySettings;
	readonly #store: FailureStore;
	#notFoundUntil = 0;
	readonly #refusedUntil = new Map<string, number>();
	#backoff: { failures: number; until: number; error: ResumeFailure } | undefined;

	constructor(settings: FailureMemorySettings, store: FailureStore) {
		this.#settings = settings;
		this.#store = store;
		const stored = store.load();
		this.#notFoundUntil = stored?.notFoundUntil ?? 0;
		this.#backoff = stored?.backoff;
	}

	/** The remembered failure that answers `credentialsKey` now, if any. */
	recall(credentialsKey: string, now: number): RememberedFailure | undefined {
		if (this.#notFoundUntil > now) {
			return { error: { code: "sandbox_not_found" }, until: this.#notFoundUntil, sandboxWide: true };
		}
		const backoff = this.#backoff;
		if (backoff !== undefined && backoff.until > now) {
			const retryAfterSeconds = Math.max(1, Math.ceil((backoff.until - now) / 1000));
			return { error: { ...backoff.error, retryAfterSeconds }, until: backoff.until, sandboxWide: true };
		}
		const refusedUntil = this.#refusedUntil.get(credentialsKey);
		if (refusedUntil !== undefined) {
			if (refusedUntil > now) {
				return { error: { code: "resume_forbidden" }, until: refusedUntil, sandboxWide: false };
			}
			this.#refusedUntil.delete(credentialsKey);
		}
		return undefined;
	}

	/** Takes in a resume's failure; returns it as callers should see it. */
	record(credentialsKey: string, error: ResumeFailure, now: number): ResumeFailure {
		switch (error.code) {
			case "sandbox_not_found":
				this.#notFoundUntil = now + this.#settings.notFoundCacheMs;
				this.#persist();
				return error;
			case "resume_forbidden":
				if (this.#settings.refusalCacheMs > 0) {
					this.#refusedUntil.delete(credentialsKey);
					this.#refusedUntil.set(credentialsKey, now + this.#settings.refusalCacheMs);
					if (this.#refusedUntil.size > maxRememberedRefusals) {
						const oldest = this.#refusedUntil.keys().next().value;
						if (oldest !== undefined) this.#refusedUntil.delete(oldest);
					}
				}
				return error;
			case "control_plane_unavailable":
			case "control_plane_bad_answer":
			case "control_plane_auth_unavailable":
			case "resume_timeout":
			case "resume_rate_limited":
				return this.#backOff(error, now);
			default:
				return error;
		}
	}

	/** The sandbox was found, resumed or written: nothing remembered holds any more. */
	clear(): void {
		const stored = this.#notFoundUntil !== 0 || this.#backoff !== undefined;
		this.#notFoundUntil = 0;
		this.#refusedUntil.clear();
		this.#backoff = undefined;
		if (stored) this.#store.save(undefined);
	}

	/** When the last sandbox-wide failure stops holding; 0 if none does. */
	get sandboxWideUntil(): number {
		return Math.max(this.#notFoundUntil, this.#backoff?.until ?? 0);
	}

	#persist(): void {
		this.#store.save({
			notFoundUntil: this.#notFoundUntil,
			...(this.#backoff === undefined ? {} : { backoff: this.#backoff }),
		});
	}

	#backOff(error: ResumeFailure, now: number): ResumeFailure {
		const max = this.#settings.resumeBackoffMaxMs;
		if (max === 0) return error;
		// A failure long after the last backoff ended starts a new series.
		const previous = this.#backoff !== undefined && now < this.#backoff.until + max ? this.#backoff.failures : 0;
		const failures = previous + 1;
		const delay = backoffDelay(failures, { baseMs: firstBackoffMs, capMs: max });
		// Callers who did not wait for this attempt get a 503 that says when
		// the next one will be; a timeout's 504 would tell them they waited.
		const remembered: ResumeFailure =
			error.code === "resume_timeout" ? { code: "control_plane_unavailable" } : { ...error };
		this.#backoff = { failures, until: now + delay, error: remembered };
		this.#persist();
		return { ...error, retryAfterSeconds: Math.max(1, Math.ceil(delay / 1000)) };
	}
}

/** The key of the sandbox-wide failures in a catalog object's key-value storage. */
const failuresKey = "failures";

/**
 * A catalog object's memory of failed resumes. The failures for every caller
 * are stored, so that an eviction does not forget them, but only by an
 * object that holds a route already (`holdsStorage`): an object that has
 * learned nothing (a stranger's made-up ID) stores nothing. Its eviction
 * forgets its not-found, which costs at most one more ResumeSandbox call
 * after it, and the Worker's caches and budgets stand in front of that.
 */
export function objectFailureMemory(
	settings: FailureMemorySettings,
	kv: SyncKvStorage,
	holdsStorage: () => boolean,
): FailureMemory {
	let stored = false;
	return new FailureMemory(settings, {
		load: () => {
			const failures = holdsStorage() ? kv.get<SandboxWideFailures>(failuresKey) : undefined;
			stored = failures !== undefined;
			return failures;
		},
		save: (failures) => {
			if (failures !== undefined && holdsStorage()) {
				kv.put(failuresKey, failures);
				stored = true;
			} else if (stored) {
				kv.delete(failuresKey);
				stored = false;
			}
		},
	});
}
