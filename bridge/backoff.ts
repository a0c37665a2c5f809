export interface BackoffPolicy {
	baseMs: number;
	capMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 250, capMs: 30_000 };

/**
 * Capped exponential backoff with "equal jitter": attempt n waits between half
 * and all of min(cap, base * 2^(n-1)), so that bridges restarted together do
 * not retry in step, and no wait is ever near zero.
 */
export function backoffDelay(attempt: number, policy: BackoffPolicy = DEFAULT_BACKOFF): number {
	const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
	return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

/** Resolves true after `ms`, or false as soon as `signal` aborts, leaving no timer behind. */
export function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
	if (signal.aborted) return Promise.resolve(false);
	return new Promise((resolve) => {
		const onAbort = () => {
			clearTimeout(timer);
			resolve(false);
		};
		const timer = setTimeout(() => {
			signal.removeEventListener("abort", onAbort);
			resolve(true);
		}, ms);
		signal.addEventListener("abort", onAbort, { once: true });
	});
}
