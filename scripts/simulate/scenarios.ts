import { type Params, roundTrips } from "./params.ts";
import { type SandboxRun, simulateSandbox } from "./sandbox.ts";
import { type StormRun, simulateStorm } from "./storm.ts";

/**
 * The scenarios that docs/capacity.md reports, each a set of runs of the
 * simulations with the parameters: one hot sandbox steady and at its
 * limits, the same sandbox waking, and the resume storm.
 */

// The storm's variant from about all of Cloudflare's locations.
export const stormWideLocations = 300;

// The search for the highest rate one object keeps up with goes by steps of
// this much, up to this many: past 64,000 req/s, one sandbox's node is the
// limit long before its object.
export const rateStep = 1000;
export const rateSteps = 64;

/** A stable seed per scenario, so that adding one does not move another's draws. */
function seedFor(params: Params, scenario: string): number {
	let hash = params.seed >>> 0;
	for (const char of scenario) hash = Math.imul(hash ^ char.charCodeAt(0), 0x01000193) >>> 0;
	return hash;
}

/**
 * A run of one sandbox: the parameters, with `overrides`. Its seed follows
 * from what it runs, so that the same scenario in two tables gives the same
 * figures, and a run that differs only in evictions draws the same traffic.
 */
export function sandboxRun(params: Params, overrides: Partial<SandboxRun> = {}): SandboxRun {
	const run: SandboxRun = {
		rate: params.rate,
		locations: params.locations,
		isolates: params.isolates,
		tier: false,
		ttlMs: params.ttlMs,
		locationTtlMs: params.locationTtlMs,
		cacheMs: params.cacheMs,
		rttMs: roundTrips(params, overrides.locations ?? params.locations),
		objectCapacity: params.objectCapacity,
		evictPct: 0,
		warmupMs: params.warmupS * 1000,
		measureMs: params.measureS * 1000,
		seed: 0,
		spreadStart: true,
		...overrides,
	};
	const { rate, locations, isolates, tier, ttlMs, spreadStart, wake } = run;
	const scenario = JSON.stringify({ rate, locations, isolates, tier, ttlMs, spreadStart, wake: wake !== undefined });
	return { ...run, seed: seedFor(params, scenario) };
}

/**
 * One hot sandbox, steady: with the caches off, the isolate cache alone and
 * the tier; and the highest rate each cache keeps up with, long after a wake
 * (copies of every age) and right after one (every copy made at once).
 */
export function hotSandbox(params: Params) {
	const run = (overrides: Partial<SandboxRun>) => simulateSandbox(sandboxRun(params, overrides));
	const keepsUp = (tier: boolean, spreadStart: boolean) => (rate: number) => {
		const result = run({ rate, tier, spreadStart });
		return !result.saturated && result.objectCallsPerSecond < params.objectCapacity;
	};
	return {
		off: run({ ttlMs: 0 }),
		isolate: run({}),
		tier: run({ tier: true }),
		limit: {
			isolate: highestRate(keepsUp(false, true)),
			tier: highestRate(keepsUp(true, true)),
			isolateAfterWake: highestRate(keepsUp(false, false)),
			tierAfterWake: highestRate(keepsUp(true, false)),
		},
	};
}

/**
 * The highest multiple of `rateStep` up to `rateSteps` of them at which
 * `keepsUp` holds, by halving the gap: `keepsUp` holds below some rate and
 * not above it. The top if it holds there: past it, the object is not what
 * limits one sandbox.
 */
function highestRate(keepsUp: (rate: number) => boolean): number {
	if (keepsUp(rateSteps * rateStep)) return rateSteps * rateStep;
	let good = 0;
	let bad = rateSteps;
	while (bad - good > 1) {
		const middle = Math.floor((good + bad) / 2);
		if (keepsUp(middle * rateStep)) good = middle;
		else bad = middle;
	}
	return good * rateStep;
}

/**
 * The hot sandbox with the tier, the isolate's TTL split differently between
 * the location's entries and the isolates' copies of them: shorter entries
 * cost more object calls, shorter copies more Cache API lookups, and every
 * split keeps the same bound on how long a route is served. Last, the split
 * before this bound: entries as long as the isolate's copies, and an isolate
 * keeping a whole TTL from a location entry of any age.
 */
export function ttlSplits(params: Params) {
	const { ttlMs } = params;
	const lives = [...new Set([ttlMs / 5, params.locationTtlMs, (ttlMs * 4) / 5])]
		.filter((life) => life >= minLocationTtlMs && (life < ttlMs || life === params.locationTtlMs))
		.sort((a, b) => a - b);
	const run = (locationTtlMs: number, keepFromLocationMs: number) => ({
		locationTtlMs,
		keepFromLocationMs,
		result: simulateSandbox(sandboxRun(params, { tier: true, locationTtlMs, keepFromLocationMs })),
	});
	return {
		splits: lives.map((life) => run(life, ttlMs - life)),
		before: run(ttlMs, ttlMs),
	};
}

// Under this LOCATION_CACHE_TTL_MS, the tier is off (src/catalog/location-cache.ts).
export const minLocationTtlMs = 1000;

/**
 * How long the Cache API keeps a location's entry: the put's max-age, which
 * counts whole seconds (src/catalog/location-cache.ts), if the cache drops
 * an entry when its max-age runs out.
 */
export function cacheKeepsMs(params: Params): number {
	return Math.floor(params.locationTtlMs / 1000) * 1000;
}

/** The hot sandbox, paused, woken by its own traffic; measured from the end of the wake. */
export function wakingSandbox(params: Params) {
	// The waiters are answered by the ResumeSandbox answer, or by the push before it.
	const meanResumeMs = (params.resumeMinMs + params.resumeMaxMs) / 2;
	const resumeMs = params.cpRttMs + meanResumeMs - Math.min(params.pushLeadMs, meanResumeMs);
	const wake = { resumeMs, maxWaiters: params.maxWaiters };
	// The measurement starts once every waiter has its answer.
	const warmupMs = Math.ceil((resumeMs + params.rttMaxMs) / 1000) * 1000;
	const run = (tier: boolean) =>
		simulateSandbox(
			sandboxRun(params, { tier, wake, spreadStart: false, warmupMs, measureMs: params.measureS * 1000 }),
		);
	return { isolate: run(false), tier: run(true) };
}

function stormRun(params: Params, scenario: string, overrides: Partial<StormRun> = {}): StormRun {
	const locations = overrides.locations ?? params.locations;
	return {
		sandboxes: params.sandboxes,
		locations,
		rttMs: roundTrips(params, locations),
		windowMs: params.stormWindowMs,
		burst: params.burst,
		burstMs: params.burstMs,
		clientIps: 0,
		objectCapacity: params.objectCapacity,
		maxWaiters: params.maxWaiters,
		cpRttMs: params.cpRttMs,
		cpConcurrency: params.cpConcurrency,
		resumeMinMs: params.resumeMinMs,
		resumeMaxMs: params.resumeMaxMs,
		pushLeadMs: params.pushLeadMs,
		resumeTimeoutMs: params.resumeTimeoutMs,
		clientLimit: params.clientLimit,
		callerLimit: params.callerLimit,
		limitPeriodMs: params.limitPeriodS * 1000,
		seed: seedFor(params, scenario),
		...overrides,
	};
}

export function resumeStorm(params: Params) {
	return {
		base: simulateStorm(stormRun(params, "storm")),
		wide: simulateStorm(stormRun(params, "storm wide", { locations: stormWideLocations })),
		limited: simulateStorm(stormRun(params, "storm limited", { clientIps: params.limitedIps })),
	};
}

export function cpThroughput(params: Params): number {
	return params.cpConcurrency / ((params.resumeMinMs + params.resumeMaxMs) / 2 / 1000);
}
