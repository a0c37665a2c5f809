// The one backoff of this repository: a failing control plane in a catalog
// object's memory (src/catalog/failure-memory.ts), a failing token endpoint
// (src/control-plane/token-object.ts), a freshly resumed sandbox's port
// still opening (src/forwarding/port-retry.ts), and the Redis catalog
// bridge's reconnects and retries (bridge/). Each caller keeps its own
// policy, and only those that many callers share are jittered.
// See src/rules/sandbox-hosts.ts for why this is its own directory.

export interface BackoffPolicy {
	/** The first attempt's ceiling; each later attempt doubles it. */
	baseMs: number;
	/** No ceiling is higher. */
	capMs: number;
}

/** Attempt `attempt`'s (1, 2, ...) ceiling: `baseMs` doubled per attempt after the first, at most `capMs`. */
export function backoffCeiling(attempt: number, policy: BackoffPolicy): number {
	return Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
}

/**
 * Attempt `attempt`'s delay, in whole ms, with "equal jitter": between half
 * and all of its ceiling, so that callers that failed together do not try
 * again in step, and the delay still grows. `random` is in [0, 1).
 */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
	const ceiling = backoffCeiling(attempt, policy);
	return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
