// How much each case sends. "full" is `npm run bench` (under 5 minutes on
// a 2-core machine); "smoke" is the seconds-long version that `npm test`
// runs to check that every case runs and that its exact counts hold.

/** A load by count (exact counts can then be checked) or by time (the suite's time is then bounded). */
export type Amount = { requests: number } | { seconds: number };

export interface Profile {
	name: "full" | "smoke";
	/** D: how long the control plane takes to resume a sandbox, and the floor's node waits. */
	resumeDelayMs: number;
	/**
	 * `warmup`: a load on each Worker before the rounds, or none. `slices`:
	 * a timed round's load cut into this many turns per Worker (1: one run each).
	 */
	hotPath: { rounds: number; load: Amount; connections: number; slices: number; warmup?: Amount };
	addedLatency: { rounds: number; load: Amount; warmup?: Amount };
	coldOne: { rounds: number; requests: number };
	coldMany: { rounds: number; sandboxes: number; requestsPerSandbox: number };
	catalogWrites: { routes: number; batchSize: number; probesPerBatch: number };
	streaming: { rounds: number; bytes: number };
	webSocket: { rounds: number; echoes: number };
	/**
	 * Requests per variant: random IDs from one client (the case itself);
	 * random IDs from a new client address each (one RPC and one new object
	 * per request by construction, so fewer); `repeatedIds` IDs, each from
	 * a client address of its own, and all from one client.
	 */
	abuse: {
		randomRequests: number;
		botnetRequests: number;
		repeatedRequests: number;
		repeatedIds: number;
		connections: number;
	};
	/** How many times to profile the proxy's isolate start with `wrangler check startup` (about 2 s each); 0: never. */
	startupProfiles: number;
	/** Fresh starts of each Worker, a new workerd each, to time its first requests. */
	isolateStart: { trials: number };
}

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

export const full: Profile = {
	name: "full",
	resumeDelayMs: 1000,
	// Nine rounds of two one-second turns per Worker: on this shared 2-core
	// machine the speed moves within seconds (BENCHMARKS.md, "How many rounds").
	hotPath: { rounds: 9, load: { seconds: 2 }, connections: 16, slices: 2, warmup: { seconds: 1 } },
	addedLatency: { rounds: 5, load: { seconds: 1 }, warmup: { seconds: 1 } },
	coldOne: { rounds: 4, requests: 200 },
	coldMany: { rounds: 3, sandboxes: 100, requestsPerSandbox: 10 },
	catalogWrites: { routes: 10_000, batchSize: 1000, probesPerBatch: 10 },
	streaming: { rounds: 2, bytes: GiB },
	webSocket: { rounds: 3, echoes: 10_000 },
	abuse: { randomRequests: 10_000, botnetRequests: 1000, repeatedRequests: 5000, repeatedIds: 100, connections: 32 },
	startupProfiles: 3,
	isolateStart: { trials: 3 },
};

export const smoke: Profile = {
	name: "smoke",
	resumeDelayMs: 200,
	hotPath: { rounds: 1, load: { requests: 200 }, connections: 8, slices: 1 },
	addedLatency: { rounds: 1, load: { requests: 50 } },
	coldOne: { rounds: 1, requests: 20 },
	coldMany: { rounds: 1, sandboxes: 5, requestsPerSandbox: 4 },
	catalogWrites: { routes: 300, batchSize: 100, probesPerBatch: 2 },
	streaming: { rounds: 1, bytes: 8 * MiB },
	webSocket: { rounds: 1, echoes: 100 },
	abuse: { randomRequests: 200, botnetRequests: 100, repeatedRequests: 200, repeatedIds: 10, connections: 8 },
	startupProfiles: 0,
	isolateStart: { trials: 1 },
};
