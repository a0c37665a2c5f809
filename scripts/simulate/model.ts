import { formatNumber, renderTable } from "./format.ts";
import { definitions, type Params } from "./params.ts";
import { type SandboxResult, simulateSandbox } from "./sandbox.ts";
import {
	cacheKeepsMs,
	cpThroughput,
	hotSandbox,
	rateStep,
	rateSteps,
	resumeStorm,
	sandboxRun,
	stormWideLocations,
	ttlSplits,
	wakingSandbox,
} from "./scenarios.ts";

/** One number the doc quotes, as the doc writes it. */
export interface Figure {
	id: string;
	label: string;
	text: string;
}

/**
 * What docs/capacity.md quotes: every figure by its ID, and the tables
 * (blocks) exactly as the doc holds them between its `simulate:` markers.
 */
export interface Model {
	figures: Map<string, Figure>;
	blocks: Map<string, string>;
}

// The (N, K) rows of the tier table: one location to 300 (about Cloudflare's
// count), one isolate to a hundred per location.
const gridRows: readonly (readonly [number, number])[] = [
	[1, 1],
	[1, 20],
	[10, 20],
	[50, 20],
	[50, 100],
	[300, 20],
	[300, 100],
];

// The outbound connections a request holds at once, step by step
// (src/proxy.ts, src/catalog/catalog-client.ts): each step ends before the
// next starts, except that the location's put runs in waitUntil beside the
// forward to the node. The object call is counted although the platform's
// list of what counts names fetch, KV, Cache and sockets, not Durable
// Object stubs.
const requestSteps: readonly (readonly string[])[] = [
	["Cache API match"],
	["Durable Object call"],
	["Cache API put", "fetch to the node"],
];
// src/catalog/sandbox-route.ts, maxConcurrentFlights: ResumeSandbox calls one object runs at once.
const objectFlightsBound = 4;

export function runModel(params: Params): Model {
	const figures = new Map<string, Figure>();
	const add = (id: string, label: string, value: number, digits = 0): string => {
		const text = formatNumber(value, digits);
		figures.set(id, { id, label, text });
		return text;
	};
	const blocks = new Map<string, string>();
	blocks.set("parameters", parametersBlock(params));

	const hot = hotSandbox(params);
	const wake = wakingSandbox(params);
	const rows: string[][] = [];
	const row = (id: string, label: string, value: number, digits = 0) => {
		rows.push([id, label, add(id, label, value, digits)]);
	};

	const { rate, locations, isolates } = params;
	row("H1", "requests per second to the sandbox from each location", rate / locations, 1);
	row("H2", "requests per second to the sandbox in each isolate", rate / (locations * isolates), 2);
	const top = formatNumber(rateSteps * rateStep);
	row("H3", "object calls per second, caches off (`ROUTE_CACHE_TTL_MS=0`, no tier)", hot.off.objectCallsPerSecond, 1);
	row(
		"H4",
		"object calls per second, isolate cache only (tier off, or `workers.dev`)",
		hot.isolate.objectCallsPerSecond,
		1,
	);
	row("H5", "object calls per second, isolate cache and location tier (the default)", hot.tier.objectCallsPerSecond, 1);
	row("H6", "most object calls in one second, isolate cache only", hot.isolate.peakObjectCallsPerSecond);
	row("H7", "most object calls in one second, with the tier", hot.tier.peakObjectCallsPerSecond);
	row("H8", "requests that call the object, isolate cache only (%)", share(hot.isolate, params), 2);
	row("H9", "requests that call the object, with the tier (%)", share(hot.tier, params), 2);
	row("H10", "Cache API lookups per second, with the tier", hot.tier.locationLookupsPerSecond, 1);
	row(
		"H11",
		`highest rate (req/s, up to ${top}) the object keeps up with, long-running traffic, isolate cache only`,
		hot.limit.isolate,
	);
	row("H12", "the same, with the tier", hot.limit.tier);
	row(
		"H13",
		`highest rate (req/s, up to ${top}) the object keeps up with, right after a wake, isolate cache only`,
		hot.limit.isolateAfterWake,
	);
	row("H14", "the same, with the tier", hot.limit.tierAfterWake);
	row(
		"H15",
		"longest a copy can serve the route after the object's answer reached the location (ms), with the tier",
		hot.tier.maxRouteAgeMs,
	);
	blocks.set("hot", renderTable(["", "one hot sandbox, steady", "value"], rows.splice(0)));

	const wakeSeconds = wake.isolate.wake.durationMs / 1000;
	row("W1", "ResumeSandbox calls", wake.isolate.wake.rpcs);
	row("W2", "from the first request to the stored route (ms)", wake.isolate.wake.durationMs);
	row("W3", "object calls per second during the wake", wake.isolate.wake.objectCalls / wakeSeconds);
	row("W4", "most requests waiting on the resume", wake.isolate.wake.peakWaiters);
	row("W5", "requests refused with `resume_queue_full`", wake.isolate.wake.refused);
	row(
		"W6",
		"highest rate (req/s) that wakes with none refused (waiters ÷ wake time)",
		Math.floor(params.maxWaiters / wakeSeconds),
	);
	row(
		"W7",
		"after the wake: most object calls in one second, isolate cache only",
		wake.isolate.peakObjectCallsPerSecond,
	);
	row("W8", "after the wake: most object calls in one second, with the tier", wake.tier.peakObjectCallsPerSecond);
	row("W9", "after the wake: longest wait for the object (ms), isolate cache only", wake.isolate.maxObjectQueueMs);
	row("W10", "after the wake: longest wait for the object (ms), with the tier", wake.tier.maxObjectQueueMs);
	blocks.set("wake", renderTable(["", "the hot sandbox, paused, woken by its traffic", "value"], rows.splice(0)));

	blocks.set("grid", gridBlock(params, add));
	blocks.set("split", splitBlock(params, add));

	const storm = resumeStorm(params);
	const base = storm.base;
	row("S1", "requests", base.requests);
	row("S2", "calls to the sandboxes' objects", base.objectCalls);
	row("S3", "ResumeSandbox calls", base.rpcs);
	row("S4", "most ResumeSandbox calls for one sandbox", base.maxRpcsPerSandbox);
	row("S5", "most ResumeSandbox calls reaching the control plane in one second", base.peakRpcsPerSecond);
	row("S6", "most ResumeSandbox calls open at the control plane at once (running or queued)", base.peakRpcsOpen);
	row("S7", "control plane throughput: resumes per second (concurrency ÷ mean resume)", cpThroughput(params));
	row("S8", "the last sandbox's route is stored after (s)", base.lastWokenMs / 1000, 1);
	row("S9", "first answer of a sandbox, median (s)", base.firstAnswerP50Ms / 1000, 1);
	row("S10", "first answer of a sandbox, 99th percentile (s)", base.firstAnswerP99Ms / 1000, 1);
	row("S11", "most calls to one object in one second", base.peakObjectCallsPerSecond);
	row("S12", "most requests waiting on one object", base.peakWaiters);
	row("S13", "requests refused (budgets, full queues)", base.budgetRefusals + base.queueRefusals);
	row("S14", "resumes past `RESUME_TIMEOUT_MS`", base.timeouts);
	row("S15", `ResumeSandbox calls, the same storm from ${stormWideLocations} locations`, storm.wide.rpcs);
	const limited = storm.limited;
	const ips = formatNumber(params.limitedIps);
	row("S16", `from ${ips} client addresses: ResumeSandbox calls in the first budget period`, limited.rpcsInFirstPeriod);
	row("S17", `from ${ips} client addresses: requests answered \`429\``, limited.budgetRefusals);
	row(
		"S18",
		`from ${ips} client addresses: the last sandbox's route is stored after (s)`,
		limited.lastWokenMs / 1000,
		1,
	);
	row("S19", `from ${ips} client addresses: ResumeSandbox calls in all`, limited.rpcs);
	blocks.set("storm", renderTable(["", "resume storm", "value"], rows.splice(0)));

	const connections = Math.max(...requestSteps.map((step) => step.length));
	row("C1", "outbound connections one request holds at once (of 6)", connections);
	row("C2", "ResumeSandbox calls one object may run at once (of 6)", objectFlightsBound);
	blocks.set("connections", renderTable(["", "connections", "value"], rows.splice(0)));

	blocks.set("limits", limitsBlock(params, figures));
	return { figures, blocks };
}

function parametersBlock(params: Params): string {
	return renderTable(
		["flag", "value", "from", "meaning"],
		definitions.map((d) => [`\`--${d.flag}\``, formatNumber(params[d.key]), d.from, d.meaning]),
	);
}

/** The share of the sandbox's requests that call its object, in percent. */
function share(result: SandboxResult, params: Params): number {
	return (100 * result.objectCallsPerSecond) / params.rate;
}

function gridBlock(params: Params, add: (id: string, label: string, value: number, digits?: number) => string): string {
	const rows = gridRows.map(([locations, isolates], i) => {
		const id = `G${i + 1}`;
		const run = (tier: boolean) => simulateSandbox(sandboxRun(params, { locations, isolates, tier }));
		const ttlSeconds = params.ttlMs / 1000;
		const locationTtlSeconds = params.locationTtlMs / 1000;
		return [
			id,
			formatNumber(locations),
			formatNumber(isolates),
			formatNumber((locations * isolates) / ttlSeconds, 1),
			add(`${id}i`, `object calls/s, ${locations} × ${isolates}, isolate cache`, run(false).objectCallsPerSecond, 1),
			formatNumber(locations / locationTtlSeconds, 1),
			add(`${id}t`, `object calls/s, ${locations} × ${isolates}, with the tier`, run(true).objectCallsPerSecond, 1),
		];
	});
	const evictedId = `G${gridRows.length + 1}`;
	const evicted = simulateSandbox(sandboxRun(params, { tier: true, evictPct: params.evictPct })).objectCallsPerSecond;
	rows.push([
		evictedId,
		formatNumber(params.locations),
		formatNumber(params.isolates),
		"",
		"",
		formatNumber(params.locations / (params.locationTtlMs / 1000), 1),
		add(
			`${evictedId}t`,
			`object calls/s, ${formatNumber(params.evictPct)} % of location entries evicted early`,
			evicted,
			1,
		),
	]);
	const keptId = `G${gridRows.length + 2}`;
	const keeps = cacheKeepsMs(params);
	const kept = simulateSandbox(sandboxRun(params, { tier: true, cacheKeepsMs: keeps })).objectCallsPerSecond;
	rows.push([
		keptId,
		formatNumber(params.locations),
		formatNumber(params.isolates),
		"",
		"",
		formatNumber(params.locations / (Math.min(keeps, params.locationTtlMs) / 1000), 1),
		add(`${keptId}t`, `object calls/s, location entries kept ${formatNumber(keeps)} ms (their max-age)`, kept, 1),
	]);
	return renderTable(
		[
			"",
			"locations N",
			"isolates K",
			"isolate cache only: N·K per TTL",
			"isolate cache only: simulated",
			"with tier: N per location TTL",
			"with tier: simulated",
		],
		rows,
	);
}

/**
 * The hot sandbox with the tier, ROUTE_CACHE_TTL_MS split differently
 * between the location's entries and the isolates' copies of them; the last
 * row is the split before the bound (an isolate kept a whole TTL).
 */
function splitBlock(
	params: Params,
	add: (id: string, label: string, value: number, digits?: number) => string,
): string {
	const { splits, before } = ttlSplits(params);
	const rows = [...splits, before].map(({ locationTtlMs, keepFromLocationMs, result }, i) => {
		const id = `L${i + 1}`;
		const isBefore = i === splits.length;
		const life = formatNumber(locationTtlMs);
		const label = isBefore ? "before the bound" : `location entries of ${life} ms`;
		return [
			id,
			life,
			formatNumber(keepFromLocationMs),
			add(`${id}c`, `object calls/s, ${label}`, result.objectCallsPerSecond, 1),
			add(`${id}l`, `Cache API lookups/s, ${label}`, result.locationLookupsPerSecond, 1),
			add(`${id}a`, `longest a route is served (ms), ${label}`, result.maxRouteAgeMs),
			isBefore
				? "before: an isolate kept a whole TTL from an entry of any age"
				: locationTtlMs === params.locationTtlMs
					? "the default"
					: "",
		];
	});
	return renderTable(
		[
			"",
			"location entry (ms)",
			"isolate's copy of it (ms)",
			"object calls/s",
			"Cache API lookups/s",
			"longest a route is served (ms)",
			"",
		],
		rows,
	);
}

/** Where each limit stands in each scenario, from the figures above. */
function limitsBlock(params: Params, figures: Map<string, Figure>): string {
	const f = (id: string) => figures.get(id)?.text ?? "?";
	// A search that reached its top found no limit below it.
	const limit = (id: string) =>
		f(id) === formatNumber(rateSteps * rateStep) ? `no limit up to ${f(id)} req/s` : `saturates above ${f(id)} req/s`;
	return renderTable(
		["limit", "one hot sandbox, steady", "the hot sandbox, waking", "resume storm"],
		[
			[
				`one object: ${formatNumber(params.objectCapacity)} calls/s`,
				`${f("H5")}/s, ${limit("H12")}; without the tier ${f("H4")}/s, ${limit("H11")}`,
				`${f("W3")}/s while it wakes`,
				`${f("S11")} calls in a second, per object`,
			],
			[
				`\`RESUME_MAX_WAITERS\`: ${formatNumber(params.maxWaiters)} per resume`,
				"none wait",
				`${f("W4")}, and ${f("W5")} refused`,
				`${f("S12")} per object`,
			],
			[
				`control plane: ${formatNumber(params.cpConcurrency)} resumes at once (${f("S7")}/s)`,
				"no call",
				`${f("W1")} call`,
				`${f("S5")} calls in one second, ${f("S6")} open at once`,
			],
			[
				"6 connections per request",
				`${f("C1")} per request`,
				`${f("C1")} per request; the object holds 1 call`,
				`${f("C1")} per request; each object holds ${f("S4")} call (${f("C2")} at most)`,
			],
			[
				`budget: ${formatNumber(params.clientLimit)} resumes per client address per ${formatNumber(params.limitPeriodS)} s`,
				"not spent",
				"1 resume",
				`none refused, one address per sandbox; from ${formatNumber(params.limitedIps)} addresses, ${f("S16")} calls in the first ${formatNumber(params.limitPeriodS)} s`,
			],
		],
	);
}
