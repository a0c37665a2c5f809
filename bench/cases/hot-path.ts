// Hot path: the route in the isolate cache, a small GET, many connections;
// and the warm path: every cache outside the catalog object off, so that
// each request asks the object. Rounds alternate the three Workers, so that
// drift in the machine's load hits them alike; each round's figures are
// divided by the same round's.
import type { CaseResult, Check, Context } from "../harness/context.ts";
import { type LoadResult, mergeLoads, runLoad } from "../harness/load.ts";
import { atLeast, atMost, driftRow, fixed, infoRow, largestStep, ms, type Row, ratio, row } from "../harness/report.ts";
import { median, percentile, spread, sum } from "../harness/stats.ts";
import type { RunningWorker } from "../harness/workers.ts";
import type { Amount } from "../profiles.ts";

const path = "/bench?q=1";

/**
 * How far the pass-through may move before a run is flagged. Each ratio is
 * formed within a round, from turns that alternate every half second, so a
 * move between rounds cancels out; a move between the turns of a round does
 * not, and a round's worth of it is allowed 15 %. A move of half between two
 * rounds means the machine swung so hard that even a turn is suspect.
 */
const withinRoundDriftLimit = 0.15;
const betweenRoundsDriftLimit = 0.5;

export async function hotPath(context: Context): Promise<CaseResult> {
	const started = performance.now();
	const { rounds, load: amount, connections, warmup, slices } = context.profile.hotPath;
	const targets = [
		{ key: "pass", worker: context.passThrough as RunningWorker },
		{ key: "hot", worker: context.proxy as RunningWorker },
		{ key: "warm", worker: context.warmProxy as RunningWorker },
	] as const;
	const load = (worker: RunningWorker, what: Amount) =>
		runLoad({ url: worker.url, host: context.hotHost, path, connections, load: what, pid: worker.pid });
	if (warmup !== undefined) for (const { worker } of targets) await load(worker, warmup);

	const hotCallsBefore = await context.proxy.objectCalls();
	const warmCallsBefore = await context.warmProxy.objectCalls();
	const samples: Record<(typeof targets)[number]["key"], LoadResult[]> = { pass: [], hot: [], warm: [] };
	// A timed round is cut into slices that take turns, so that the Workers'
	// shares of a round meet the same machine: on a shared host its speed
	// moves within seconds, and a round's ratio then cancels more of it.
	const sliced = "seconds" in amount && slices > 1;
	/** The pass-through's req/s in each turn of each round: how far the machine moved within a round. */
	const passTurns: number[][] = [];
	const slice: Amount = sliced ? { seconds: amount.seconds / slices } : amount;
	for (let round = 0; round < rounds; round++) {
		const runs: Record<string, LoadResult[]> = { pass: [], hot: [], warm: [] };
		for (let turn = 0; turn < (sliced ? slices : 1); turn++) {
			// A different order each turn, so that no Worker always runs first.
			for (let i = 0; i < targets.length; i++) {
				const target = targets[(round + turn + i) % targets.length];
				if (target !== undefined) runs[target.key]?.push(await load(target.worker, slice));
			}
		}
		for (const { key } of targets) samples[key].push(mergeLoads(runs[key] ?? []));
		passTurns.push((runs.pass ?? []).map((run) => run.requests / run.seconds));
	}
	const hotCalls = (await context.proxy.objectCalls()).lookup - hotCallsBefore.lookup;
	const warmCalls = (await context.warmProxy.objectCalls()).lookup - warmCallsBefore.lookup;

	const rate = (s: LoadResult) => s.requests / s.seconds;
	const p50 = (s: LoadResult) => percentile(s.latenciesMs, 50);
	const p99 = (s: LoadResult) => percentile(s.latenciesMs, 99);
	const cpu = (s: LoadResult) => s.cpuSeconds / s.requests;
	const ratios = (of: LoadResult[], to: LoadResult[], measure: (s: LoadResult) => number) =>
		spread(of.map((s, i) => measure(s) / measure(to[i] ?? s)));
	const each = (of: LoadResult[], measure: (s: LoadResult) => number) => spread(of.map(measure));
	const total = (list: LoadResult[]) => sum(list.map((s) => s.requests));
	const ok = (list: LoadResult[]) => sum(list.map((s) => s.statuses["200"] ?? 0));
	const { pass, hot, warm } = samples;
	const name = `hot path (${connections} connections, small GET)`;
	const warmName = "warm path (route in the object)";
	const rows: Row[] = [
		row(name, "throughput vs pass-through", ratios(hot, pass, rate), ratio, "≥ 0.95×", atLeast(0.95)),
		row(name, "p99 latency vs pass-through", ratios(hot, pass, p99), ratio, "≤ 1.10×", atMost(1.1)),
		row(name, "workerd CPU per request vs pass-through", ratios(hot, pass, cpu), ratio, "≤ 1.08×", atMost(1.08)),
		row(name, "p50 latency vs pass-through", ratios(hot, pass, p50), ratio),
		row(name, "req/s: proxy", each(hot, rate), fixed(0)),
		row(name, "req/s: pass-through", each(pass, rate), fixed(0)),
		row(name, "p99: proxy", each(hot, p99), ms),
		row(name, "p99: pass-through", each(pass, p99), ms),
		row(
			name,
			"workerd CPU per request: proxy",
			each(hot, (s) => cpu(s) * 1e6),
			fixed(0, " µs"),
		),
		row(
			name,
			"workerd CPU per request: pass-through",
			each(pass, (s) => cpu(s) * 1e6),
			fixed(0, " µs"),
		),
		// What a round's ratios cannot cancel: the machine moving between the turns of one round.
		...(sliced
			? [
					driftRow(
						name,
						"pass-through's req/s: move between the turns of a round (median round)",
						median(passTurns.map((turns) => (Math.max(...turns) - Math.min(...turns)) / Math.min(...turns))),
						withinRoundDriftLimit,
					),
				]
			: []),
		driftRow(
			name,
			"pass-through's req/s: largest move between rounds",
			largestStep(pass.map(rate)),
			betweenRoundsDriftLimit,
		),
		infoRow(name, "catalog object calls per 1,000 requests", ((hotCalls / total(hot)) * 1000).toFixed(1)),
		row(warmName, "throughput vs hot path", ratios(warm, hot, rate), ratio, "reported"),
		row(warmName, "p50 latency vs hot path", ratios(warm, hot, p50), ratio, "reported"),
		row(warmName, "p99 latency vs hot path", ratios(warm, hot, p99), ratio, "reported"),
		row(warmName, "workerd CPU per request vs hot path", ratios(warm, hot, cpu), ratio, "reported"),
		row(warmName, "added p50 over hot path", spread(warm.map((s, i) => p50(s) - p50(hot[i] ?? s))), ms),
		row(
			warmName,
			"added workerd CPU per request over hot path",
			spread(warm.map((s, i) => (cpu(s) - cpu(hot[i] ?? s)) * 1e6)),
			fixed(0, " µs"),
		),
		infoRow(warmName, "catalog object calls per request", (warmCalls / total(warm)).toFixed(2)),
	];
	const checks: Check[] = [
		{ what: "hot path: pass-through answers 200", expected: total(pass), actual: ok(pass) },
		{ what: "hot path: proxy answers 200", expected: total(hot), actual: ok(hot) },
		{ what: "warm path: proxy answers 200", expected: total(warm), actual: ok(warm) },
	];
	if ("requests" in amount) {
		checks.push(
			{
				what: "hot path: requests answered, each Worker",
				expected: 3 * rounds * amount.requests,
				actual: total(pass) + total(hot) + total(warm),
			},
			// Only a count is exact: a timed load ends with requests in flight that reached the object.
			{ what: "warm path: one catalog object call per request", expected: total(warm), actual: warmCalls },
		);
	}
	return {
		name: "hot and warm path",
		rows,
		checks,
		notes: [
			"hot path: workerd CPU is the process's user plus system time (/proc/<pid>/stat) over the round, divided by the requests; it includes Miniflare's entry worker, which both Workers pay alike. The hot route is pushed through the catalog API, so it costs no RPC; the isolate keeps it for ROUTE_CACHE_TTL_MS (5 s), and when it lapses every connection that misses at that moment asks the object (the object calls per 1,000 requests).",
			`hot path: each round gives each Worker ${"seconds" in amount ? `${amount.seconds} s` : "its requests"}${sliced ? ` in ${slices} slices that take turns with the other Workers' (in an order that turns each time)` : ", one Worker after the other"}, and each ratio is that round's; the table gives the median round and the lowest and highest. A run is flagged DRIFTED when its pass-through moved more than 15 % between the turns of its median round, which the round's ratios cannot cancel, or more than 50 % between two rounds. A verdict is decided only when the median's 90 % interval (the sign test's: with 9 rounds, the second lowest to the second highest round) lies on one side of the target.`,
			"warm path: the same proxy with ROUTE_CACHE_TTL_MS=0 and LOCATION_CACHE_TTL_MS=0, so that every request asks the sandbox's catalog object; in the same rounds as the hot path.",
		],
		data: {
			rounds,
			load: amount,
			connections,
			hotObjectCalls: hotCalls,
			passThroughTurnsReqPerSec: passTurns,
			warmObjectCalls: warmCalls,
			perRound: Object.fromEntries(
				Object.entries(samples).map(([key, list]) => [
					key,
					list.map((s) => ({
						seconds: s.seconds,
						reqPerSec: rate(s),
						p50Ms: p50(s),
						p99Ms: p99(s),
						cpuMicrosPerRequest: cpu(s) * 1e6,
						statuses: s.statuses,
						errors: s.errors,
					})),
				]),
			),
		},
		seconds: (performance.now() - started) / 1000,
	};
}

export async function addedLatency(context: Context): Promise<CaseResult> {
	const started = performance.now();
	const { rounds, load: amount, warmup } = context.profile.addedLatency;
	const load = (worker: RunningWorker, what = amount) =>
		runLoad({ url: worker.url, host: context.hotHost, path, connections: 1, load: what, pid: worker.pid });
	if (warmup !== undefined) for (const worker of [context.passThrough, context.proxy]) await load(worker, warmup);
	const pass: LoadResult[] = [];
	const proxy: LoadResult[] = [];
	for (let round = 0; round < rounds; round++) {
		if (round % 2 === 0) {
			pass.push(await load(context.passThrough));
			proxy.push(await load(context.proxy));
		} else {
			proxy.push(await load(context.proxy));
			pass.push(await load(context.passThrough));
		}
	}
	const p50 = (s: LoadResult) => percentile(s.latenciesMs, 50);
	const added = spread(proxy.map((s, i) => p50(s) - p50(pass[i] ?? s)));
	const name = "added latency (1 connection, sequential)";
	const total = (list: LoadResult[]) => sum(list.map((s) => s.requests));
	const ok = (list: LoadResult[]) => sum(list.map((s) => s.statuses["200"] ?? 0));
	return {
		name: "added latency",
		rows: [
			row(name, "median added over pass-through", added, (v) => `${v.toFixed(3)} ms`, "≤ 0.3 ms", atMost(0.3, ms)),
			row(name, "median: proxy", spread(proxy.map(p50)), (v) => `${v.toFixed(3)} ms`),
			row(name, "median: pass-through", spread(pass.map(p50)), (v) => `${v.toFixed(3)} ms`),
			driftRow(name, "pass-through's median: largest move between rounds", largestStep(pass.map(p50)), 0.5),
		],
		checks: [
			{ what: "added latency: pass-through answers 200", expected: total(pass), actual: ok(pass) },
			{ what: "added latency: proxy answers 200", expected: total(proxy), actual: ok(proxy) },
			...("requests" in amount
				? [
						{
							what: "added latency: requests answered",
							expected: 2 * rounds * amount.requests,
							actual: total(pass) + total(proxy),
						},
					]
				: []),
		],
		data: {
			rounds,
			load: amount,
			perRound: proxy.map((s, i) => ({ proxyP50Ms: p50(s), passThroughP50Ms: p50(pass[i] ?? s) })),
		},
		seconds: (performance.now() - started) / 1000,
	};
}
