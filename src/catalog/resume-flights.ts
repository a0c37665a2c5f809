import type { ResumeFailure } from "../resume-types.ts";
import type { LookupResult } from "./route.ts";

/**
 * The ResumeSandbox calls in flight for one sandbox, by the credentials they
 * carry, and the requests waiting on them. Concurrent requests to one object
 * share its I/O context, so an in-memory promise coalesces them safely here,
 * unlike in the stateless Worker.
 */
export interface Flight {
	/** The credentials the call carries. */
	key: string;
	/** The address of the client whose request started it, whose budget it spends. */
	clientIp: string;
	/** Whether the budget refused it before any RPC; known once it ends. */
	spent: { overBudget: boolean };
	/** Epoch ms when it started, for the waiting page's live phase. */
	startedAt: number;
	result: Promise<LookupResult>;
}

// However many distinct credentials ask at once, this many RPCs at most run
// for one sandbox; a refusal is quick, so the owner's turn comes soon.
export const maxConcurrentFlights = 4;

export class ResumeFlights {
	readonly #flights = new Map<string, Flight>();
	/** Requests waiting on a flight, or for one to end; bounded by RESUME_MAX_WAITERS. */
	#waiting = 0;
	/** Settles with the next pushed route: waiters take it without waiting for their RPC. */
	#nextPush: PromiseWithResolvers<LookupResult> | undefined;

	get size(): number {
		return this.#flights.size;
	}

	/** The flight these credentials can join: their own, or (`joinAny`) whichever is in flight. */
	joinable(key: string, joinAny: boolean): Flight | undefined {
		return this.#flights.get(key) ?? (joinAny ? this.first() : undefined);
	}

	first(): Flight | undefined {
		return this.#flights.values().next().value;
	}

	/** Settles when any flight ends. */
	anyEnded(): Promise<LookupResult> {
		return Promise.race([...this.#flights.values()].map((flight) => flight.result));
	}

	/**
	 * Starts a flight at once, before its first await, so that every request
	 * arriving meanwhile joins it: `run` checks the budget inside the flight.
	 */
	start(key: string, clientIp: string, run: (spent: Flight["spent"]) => Promise<LookupResult>): Promise<LookupResult> {
		const spent = { overBudget: false };
		const flight: Flight = {
			key,
			clientIp,
			spent,
			startedAt: Date.now(),
			result: run(spent).finally(() => {
				if (this.#flights.get(key) === flight) this.#flights.delete(key);
				// Nobody waits for a push any more: let go of the races that did.
				if (this.#flights.size === 0) this.#nextPush = undefined;
			}),
		};
		this.#flights.set(key, flight);
		return flight.result;
	}

	/** Waits on `promise` as one of at most `maxWaiters`. */
	async wait(maxWaiters: number, promise: Promise<LookupResult>): Promise<LookupResult> {
		if (this.#waiting >= maxWaiters) return { ok: false, error: { code: "resume_queue_full" } satisfies ResumeFailure };
		this.#waiting++;
		try {
			return await promise;
		} finally {
			this.#waiting--;
		}
	}

	/**
	 * A resume's answer, or the control plane's push of the sandbox's route if
	 * it lands first: E2B's control plane writes the catalog as the sandbox
	 * starts, before its answer to ResumeSandbox comes back.
	 */
	orPush(result: Promise<LookupResult>): Promise<LookupResult> {
		this.#nextPush ??= Promise.withResolvers<LookupResult>();
		return Promise.race([result, this.#nextPush.promise]);
	}

	/** Hands a pushed route to the requests waiting on a resume; whether any waited. */
	answerWithPush(result: LookupResult): boolean {
		const waiters = this.#nextPush;
		this.#nextPush = undefined;
		waiters?.resolve(result);
		return waiters !== undefined;
	}
}
