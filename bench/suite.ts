// The benchmark suite: every case against its baseline in the same run.
// `npm run bench` runs it in full (bench/run.ts); the smoke test runs the
// seconds-long profile and checks the exact counts, never the timings.
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { cpus, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { abuse } from "./cases/abuse.ts";
import { bundle } from "./cases/bundle.ts";
import { catalogWrites } from "./cases/catalog-writes.ts";
import { coldMany, coldOne } from "./cases/cold.ts";
import { addedLatency, hotPath } from "./cases/hot-path.ts";
import { isolateStart } from "./cases/isolate-start.ts";
import { streaming } from "./cases/streaming.ts";
import { webSocket } from "./cases/websocket.ts";
import { type CaseResult, type Check, type Context, startContext } from "./harness/context.ts";
import { hotspots, startProfiler } from "./harness/inspector.ts";
import type { Row } from "./harness/report.ts";
import { root } from "./harness/workers.ts";
import type { Profile } from "./profiles.ts";

// In this order: the long transfers before the cases that leave thousands of
// catalog objects in the proxy's process, whose memory they would blur.
export const cases: { key: string; run: (context: Context) => Promise<CaseResult> }[] = [
	{ key: "hot", run: hotPath },
	{ key: "latency", run: addedLatency },
	{ key: "streaming", run: streaming },
	{ key: "websocket", run: webSocket },
	{ key: "cold-one", run: coldOne },
	{ key: "cold-many", run: coldMany },
	{ key: "catalog", run: catalogWrites },
	{ key: "abuse", run: abuse },
	{ key: "bundle", run: bundle },
	{ key: "start", run: isolateStart },
];

export interface Machine {
	cpus: number;
	cpuModel: string;
	memoryGiB: number;
	node: string;
	workerd: string;
	commit: string;
	/** Whether the work tree had changes the commit does not hold. */
	dirty: boolean;
}

export interface SuiteResult {
	profile: Profile;
	startedAt: string;
	seconds: number;
	machine: Machine;
	cases: CaseResult[];
	rows: Row[];
	/** Exact counts that did not hold. */
	failedChecks: Check[];
}

function git(args: string[]): string {
	try {
		return execFileSync("git", args, { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
	} catch {
		return "";
	}
}

export function machine(): Machine {
	let workerd = "";
	try {
		workerd = (createRequire(import.meta.url)("workerd/package.json") as { version: string }).version;
	} catch {
		// Reported as unknown.
	}
	return {
		cpus: cpus().length,
		cpuModel: cpus()[0]?.model ?? "",
		memoryGiB: Math.round(totalmem() / 1024 ** 3),
		node: process.version,
		workerd,
		commit: git(["log", "-1", "--format=%h %s"]),
		dirty: git(["status", "--porcelain", "--untracked-files=no"]) !== "",
	};
}

export async function runSuite(
	profile: Profile,
	options: { only?: readonly string[]; log?: (line: string) => void } = {},
): Promise<SuiteResult> {
	const log = options.log ?? (() => {});
	const startedAt = new Date().toISOString();
	const started = performance.now();
	const selected = cases.filter((c) => options.only === undefined || options.only.includes(c.key));
	const context = await startContext(profile);
	log(`built and started in ${((performance.now() - started) / 1000).toFixed(1)} s`);
	const results: CaseResult[] = [];
	try {
		for (const c of selected) {
			const profiler =
				process.env.BENCH_INSPECT === c.key ? await startProfiler(await context.proxy.inspectorUrl(), "") : undefined;
			const result = await c.run(context);
			if (profiler !== undefined) {
				const profile = await profiler.stop();
				const file = join(root, `bench/results/${c.key}.cpuprofile`);
				mkdirSync(dirname(file), { recursive: true });
				writeFileSync(file, JSON.stringify(profile));
				const { samples, busySamples, top } = hotspots(profile);
				log(`${c.key}: proxy isolate profiled, ${samples} samples, ${busySamples} busy; written to ${file}`);
				for (const spot of top)
					log(`  ${(spot.share * 100).toFixed(1).padStart(5)} %  ${String(spot.samples).padStart(6)}  ${spot.name}`);
			}
			log(`${result.name}: ${result.seconds.toFixed(1)} s`);
			results.push(result);
		}
	} finally {
		await context.close();
	}
	return {
		profile,
		startedAt,
		seconds: (performance.now() - started) / 1000,
		machine: machine(),
		cases: results,
		rows: results.flatMap((r) => r.rows),
		failedChecks: results.flatMap((r) => r.checks).filter((check) => check.actual !== check.expected),
	};
}
