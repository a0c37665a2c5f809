import { EventQueue } from "./event-queue.ts";
import { seededRandom } from "./random.ts";

/**
 * A resume storm: many paused sandboxes woken at once, as the code handles
 * it (src/catalog/sandbox-route.ts, resume-budget.ts):
 * - every request for a paused sandbox misses the caches (nothing is cached
 *   while a resume is in flight) and calls the sandbox's object;
 * - the object serves calls one at a time; the first call with no route and
 *   no resume in flight checks the budgets (per client address, per sandbox
 *   and credentials; fixed windows of the period, counted where the object
 *   lives) and starts the one ResumeSandbox call; later calls wait on it, up
 *   to RESUME_MAX_WAITERS;
 * - the control plane runs `cpConcurrency` resumes at once, first come first
 *   served, each taking a time drawn evenly between the bounds. It may push
 *   the route through the catalog API `pushLeadMs` before it answers (the
 *   catalog API, like the objects, is near it): the push answers the waiters
 *   and stores the route at once, and the answer that follows changes
 *   nothing. A learned route is handed to the waiters before it is saved;
 * - a request refused by a budget (429) is sent again after its Retry-After,
 *   and one refused for a full queue (503) after a second. A resume not
 *   answered within RESUME_TIMEOUT_MS is counted and not retried.
 * All of one sandbox's requests carry the same credentials.
 */
export interface StormRun {
	sandboxes: number;
	locations: number;
	/** Round trip from each location to the objects' home. */
	rttMs: readonly number[];
	windowMs: number;
	burst: number;
	burstMs: number;
	/** 0: one client address per sandbox. */
	clientIps: number;
	objectCapacity: number;
	maxWaiters: number;
	cpRttMs: number;
	cpConcurrency: number;
	resumeMinMs: number;
	resumeMaxMs: number;
	/** How long before its answer the control plane pushes the route (at most the resume's time). */
	pushLeadMs: number;
	resumeTimeoutMs: number;
	clientLimit: number;
	callerLimit: number;
	limitPeriodMs: number;
	seed: number;
}

export interface StormResult {
	requests: number;
	objectCalls: number;
	rpcs: number;
	maxRpcsPerSandbox: number;
	/** Most RPCs reaching the control plane in any one whole second. */
	peakRpcsPerSecond: number;
	/** Most RPCs open at the control plane at once, running or queued. */
	peakRpcsOpen: number;
	/** When the last sandbox's route was stored, from the storm's start. */
	lastWokenMs: number;
	/** From a sandbox's first request reaching the edge to its first answer with a route. */
	firstAnswerP50Ms: number;
	firstAnswerP99Ms: number;
	peakObjectCallsPerSecond: number;
	peakWaiters: number;
	budgetRefusals: number;
	queueRefusals: number;
	timeouts: number;
	rpcsInFirstPeriod: number;
}

// What an event does; `a` is the sandbox.
const send = 0; // a client sends a request again
const served = 1; // the object has done a call
const reachControlPlane = 2; // the ResumeSandbox call reaches the control plane: b = when it started
const resumed = 3; // its answer reaches the object
const timedOut = 4; // RESUME_TIMEOUT_MS passed first

export function simulateStorm(run: StormRun): StormResult {
	const random = seededRandom(run.seed);
	const clock = new EventQueue();
	const n = run.sandboxes;
	const serviceMs = 1000 / run.objectCapacity;
	const location = Int32Array.from({ length: n }, () => Math.floor(random() * run.locations));
	const halfRtt = Float64Array.from(location, (l) => (run.rttMs[l] as number) / 2);
	const clientOf = (sandbox: number) => (run.clientIps === 0 ? sandbox : sandbox % run.clientIps);

	const objectFreeAt = new Float64Array(n);
	const stored = new Uint8Array(n);
	const flying = new Uint8Array(n);
	const waiters = new Int32Array(n);
	const rpcsOf = new Int32Array(n);
	const firstRequest = new Float64Array(n).fill(Number.POSITIVE_INFINITY);
	const firstAnswer = new Float64Array(n).fill(Number.POSITIVE_INFINITY);
	const lastSecond = new Int32Array(n).fill(-1);
	const callsThatSecond = new Int32Array(n);
	// Budget counters, by window: per client address, and per sandbox (one set of credentials each).
	const clientCounts = new Map<number, number>();
	const callerCounts = new Map<number, number>();
	// The control plane's workers, as the times they are next free.
	const workerFreeAt = new Float64Array(run.cpConcurrency);
	const rpcArrivals: number[] = [];
	const rpcEnds: number[] = [];

	const result = {
		requests: 0,
		objectCalls: 0,
		peakObjectCallsPerSecond: 0,
		peakWaiters: 0,
		budgetRefusals: 0,
		queueRefusals: 0,
		timeouts: 0,
		lastWokenMs: 0,
	};

	/**
	 * A request leaves its client at `at`. All of a sandbox's requests come
	 * from one location, so they reach its object in the order they are sent,
	 * and the object's queue can be worked out now: one event per request.
	 */
	const sendAt = (sandbox: number, at: number) => {
		result.requests++;
		result.objectCalls++;
		firstRequest[sandbox] = Math.min(firstRequest[sandbox] as number, at);
		const arrives = at + (halfRtt[sandbox] as number);
		const second = Math.floor(arrives / 1000);
		if (lastSecond[sandbox] !== second) {
			lastSecond[sandbox] = second;
			callsThatSecond[sandbox] = 0;
		}
		const calls = (callsThatSecond[sandbox] as number) + 1;
		callsThatSecond[sandbox] = calls;
		result.peakObjectCallsPerSecond = Math.max(result.peakObjectCallsPerSecond, calls);
		const done = Math.max(arrives, objectFreeAt[sandbox] as number) + serviceMs;
		objectFreeAt[sandbox] = done;
		clock.at(done, served, sandbox);
	};

	const answered = (sandbox: number) => {
		const at = clock.now + (halfRtt[sandbox] as number);
		firstAnswer[sandbox] = Math.min(firstAnswer[sandbox] as number, at);
	};

	/** The client gets the refusal and sends again after its Retry-After. */
	const refuse = (sandbox: number, retryAfterMs: number) => {
		clock.at(clock.now + (halfRtt[sandbox] as number) + retryAfterMs, send, sandbox);
	};

	const overBudget = (sandbox: number): boolean => {
		const window = Math.floor(clock.now / run.limitPeriodMs);
		const clientKey = window * n + clientOf(sandbox);
		const clientCount = (clientCounts.get(clientKey) ?? 0) + 1;
		clientCounts.set(clientKey, clientCount);
		if (clientCount > run.clientLimit) return true;
		const callerKey = window * n + sandbox;
		const callerCount = (callerCounts.get(callerKey) ?? 0) + 1;
		callerCounts.set(callerKey, callerCount);
		return callerCount > run.callerLimit;
	};

	const serve = (sandbox: number) => {
		if (stored[sandbox] === 1) return answered(sandbox);
		if (flying[sandbox] === 1) {
			if ((waiters[sandbox] as number) >= run.maxWaiters) {
				result.queueRefusals++;
				return refuse(sandbox, 1000);
			}
			waiters[sandbox] = (waiters[sandbox] as number) + 1;
			result.peakWaiters = Math.max(result.peakWaiters, waiters[sandbox] as number);
			return;
		}
		if (overBudget(sandbox)) {
			result.budgetRefusals++;
			return refuse(sandbox, run.limitPeriodMs);
		}
		flying[sandbox] = 1;
		rpcsOf[sandbox] = (rpcsOf[sandbox] as number) + 1;
		clock.at(clock.now + run.cpRttMs / 2, reachControlPlane, sandbox, clock.now);
	};

	const resume = (sandbox: number, startedAt: number) => {
		const now = clock.now;
		let lead = 0;
		const ends = takeWorker(workerFreeAt, (free) => {
			const takes = run.resumeMinMs + random() * (run.resumeMaxMs - run.resumeMinMs);
			lead = Math.min(run.pushLeadMs, takes);
			return Math.max(now, free) + takes;
		});
		rpcArrivals.push(now);
		rpcEnds.push(ends);
		// The push, or else the answer, reaches the object.
		const answeredAt = ends - lead + run.cpRttMs / 2;
		// The control plane finishes the resume anyway; the object has given up on it.
		if (answeredAt - startedAt > run.resumeTimeoutMs) clock.at(startedAt + run.resumeTimeoutMs, timedOut, sandbox);
		else clock.at(answeredAt, resumed, sandbox);
	};

	const handle = (kind: number, sandbox: number, b: number) => {
		switch (kind) {
			case send:
				return sendAt(sandbox, clock.now);
			case served:
				return serve(sandbox);
			case reachControlPlane:
				return resume(sandbox, b);
			case resumed:
				stored[sandbox] = 1;
				flying[sandbox] = 0;
				waiters[sandbox] = 0;
				result.lastWokenMs = Math.max(result.lastWokenMs, clock.now);
				return answered(sandbox);
			case timedOut:
				result.timeouts++;
				flying[sandbox] = 0;
				waiters[sandbox] = 0;
				return;
		}
	};

	// Wake times, sorted, are fed beside the clock, and each wake schedules its
	// burst: a heap of every first request at once would cost more than the
	// rest of the run. Sandbox i is the i-th to wake; which location and
	// client address it has does not depend on that order.
	const wakes = Float64Array.from({ length: n }, () => random() * run.windowMs).sort();
	const burst = new Float64Array(run.burst);
	let next = 0;
	while (next < n || clock.next < Number.POSITIVE_INFINITY) {
		if (next < n && (wakes[next] as number) <= clock.next) {
			const at = wakes[next] as number;
			for (let i = 0; i < run.burst; i++) burst[i] = at + random() * run.burstMs;
			burst.sort();
			for (const sent of burst) sendAt(next, sent);
			next++;
		} else {
			const kind = clock.take();
			handle(kind, clock.a, clock.b);
		}
	}

	const waits = firstAnswer.map((at, sandbox) => at - (firstRequest[sandbox] as number)).sort();
	return {
		...result,
		rpcs: rpcArrivals.length,
		maxRpcsPerSandbox: Math.max(...rpcsOf),
		peakRpcsPerSecond: peakPerSecond(rpcArrivals),
		peakRpcsOpen: peakOpen(rpcArrivals, rpcEnds),
		firstAnswerP50Ms: quantile(waits, 0.5),
		firstAnswerP99Ms: quantile(waits, 0.99),
		rpcsInFirstPeriod: rpcArrivals.filter((t) => t < run.limitPeriodMs).length,
	};
}

/**
 * Gives the earliest free time of the control plane's workers to a resume
 * and replaces it with when that worker is next free: a min-heap, kept in
 * a typed array, with the earliest time at the top.
 */
function takeWorker(freeAt: Float64Array, until: (begins: number) => number): number {
	const begins = freeAt[0] as number;
	const value = until(begins);
	let i = 0;
	for (;;) {
		let child = 2 * i + 1;
		if (child >= freeAt.length) break;
		if (child + 1 < freeAt.length && (freeAt[child + 1] as number) < (freeAt[child] as number)) child++;
		if (value <= (freeAt[child] as number)) break;
		freeAt[i] = freeAt[child] as number;
		i = child;
	}
	freeAt[i] = value;
	return value;
}

function peakPerSecond(times: readonly number[]): number {
	const counts = new Map<number, number>();
	for (const t of times) counts.set(Math.floor(t / 1000), (counts.get(Math.floor(t / 1000)) ?? 0) + 1);
	return Math.max(0, ...counts.values());
}

/** The most intervals [start, end) open at one instant. */
function peakOpen(starts: readonly number[], ends: readonly number[]): number {
	const opens = Float64Array.from(starts).sort();
	const closes = Float64Array.from(ends).sort();
	let open = 0;
	let peak = 0;
	let j = 0;
	for (const t of opens) {
		while (j < closes.length && (closes[j] as number) <= t) {
			j++;
			open--;
		}
		open++;
		peak = Math.max(peak, open);
	}
	return peak;
}

function quantile(sorted: Float64Array, q: number): number {
	return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number;
}
