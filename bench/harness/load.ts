// Load through autocannon (the npm package): keep-alive connections, each
// sending its next request as soon as its last answer has arrived. Latencies
// are taken per response from autocannon's "response" event, which gives
// them in fractions of a millisecond (its own histograms round to whole ms).
import autocannon from "autocannon";
import type { Amount } from "../profiles.ts";
import { cpuSecondsOf } from "./proc.ts";
import { ascending } from "./stats.ts";

export interface LoadOptions {
	url: URL;
	/** The Host header, which the Workers route on. */
	host: string;
	path: string;
	connections: number;
	/** How many requests, or for how long. */
	load: Amount;
	headers?: Record<string, string>;
	/** Called for every request; returns its Host and extra headers. */
	vary?: () => { host: string; headers?: Record<string, string> };
	/** The workerd process whose CPU the run costs. */
	pid?: number;
}

export interface LoadResult {
	requests: number;
	seconds: number;
	/** Ascending, in ms, one per response. */
	latenciesMs: number[];
	statuses: Record<string, number>;
	errors: number;
	timeouts: number;
	/** CPU seconds of the workerd process over the run, when a pid was given. */
	cpuSeconds: number;
}

export function runLoad(options: LoadOptions): Promise<LoadResult> {
	const cpuBefore = options.pid === undefined ? 0 : cpuSecondsOf(options.pid);
	const latencies: number[] = [];
	const statuses: Record<string, number> = {};
	const baseHeaders = { host: options.host, ...options.headers };
	const vary = options.vary;
	const started = performance.now();
	return new Promise((resolve, reject) => {
		const instance = autocannon(
			{
				url: new URL(options.path, options.url).href,
				connections: options.connections,
				...("requests" in options.load ? { amount: options.load.requests } : { duration: options.load.seconds }),
				timeout: 30,
				headers: baseHeaders,
				...(vary === undefined
					? {}
					: {
							requests: [
								{
									setupRequest: (request) => {
										const next = vary();
										return { ...request, headers: { ...baseHeaders, host: next.host, ...next.headers } };
									},
								},
							],
						}),
			},
			(error, result) => {
				if (error !== null) return reject(error);
				const seconds = (performance.now() - started) / 1000;
				resolve({
					requests: latencies.length,
					seconds,
					latenciesMs: ascending(latencies),
					statuses,
					errors: result.errors,
					timeouts: result.timeouts,
					cpuSeconds: options.pid === undefined ? 0 : cpuSecondsOf(options.pid) - cpuBefore,
				});
			},
		);
		instance.on("response", (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
			latencies.push(responseTime);
			statuses[statusCode] = (statuses[statusCode] ?? 0) + 1;
		});
	});
}

/** Several runs of one Worker as one: counts and times added, latencies merged. */
export function mergeLoads(runs: readonly LoadResult[]): LoadResult {
	const statuses: Record<string, number> = {};
	for (const run of runs) {
		for (const [status, count] of Object.entries(run.statuses)) statuses[status] = (statuses[status] ?? 0) + count;
	}
	const add = (pick: (run: LoadResult) => number) => runs.reduce((total, run) => total + pick(run), 0);
	return {
		requests: add((run) => run.requests),
		seconds: add((run) => run.seconds),
		latenciesMs: ascending(runs.flatMap((run) => run.latenciesMs)),
		statuses,
		errors: add((run) => run.errors),
		timeouts: add((run) => run.timeouts),
		cpuSeconds: add((run) => run.cpuSeconds),
	};
}
