/**
 * A deadline `ms` from now, for work that must not outlast it: `expired`
 * settles when the time is up, and `signal` (for a fetch or an RPC to
 * cancel) aborts just before. Race the work with `expired`; a result of
 * `undefined` is the deadline's. Then `clear()` it, so that no timer
 * outlives the work.
 *
 * Not `AbortSignal.timeout`: its timer cannot be stopped, and pending
 * timers keep a Durable Object from being evicted (from compatibility date
 * 2026-10-01), so a 90 s resume deadline could hold a sandbox's object in
 * memory long after its resume answered; and a timer per read of a
 * streamed upload would pile up. The signal is made only when asked for,
 * so that a deadline nothing cancels costs no AbortController.
 */
export class Deadline {
	readonly expired: Promise<void>;
	#timer: ReturnType<typeof setTimeout> | undefined;
	#passed = false;
	#controller: AbortController | undefined;

	constructor(ms: number) {
		this.expired = new Promise((resolve) => {
			this.#timer = setTimeout(() => {
				this.#timer = undefined;
				this.#passed = true;
				this.#controller?.abort();
				resolve();
			}, ms);
		});
	}

	/** Whether the time is up. */
	get passed(): boolean {
		return this.#passed;
	}

	/** Aborts when the time is up (with an AbortError, as `AbortController.abort()` gives). */
	get signal(): AbortSignal {
		if (this.#controller === undefined) {
			this.#controller = new AbortController();
			if (this.#passed) this.#controller.abort();
		}
		return this.#controller.signal;
	}

	/** Stops the timer: the work is done, and `expired` never settles. */
	clear(): void {
		if (this.#timer !== undefined) clearTimeout(this.#timer);
		this.#timer = undefined;
	}
}
