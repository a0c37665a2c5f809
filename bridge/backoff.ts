import type { BackoffPolicy } from "../src/rules/backoff.ts";

/**
 * The bridge's backoff (src/rules/backoff.ts, jittered): from 250 ms, doubling
 * up to 30 s, so that bridges restarted together do not retry in step, and
 * no wait is ever near zero.
 */
export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 250, capMs: 30_000 };

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
