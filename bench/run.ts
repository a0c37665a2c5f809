// The benchmark suite, every case against its baseline in the same run; see
// BENCHMARKS.md for what each case does.
//
//   npm run bench                    the full suite (under 5 minutes on 2 cores)
//   npm run bench:smoke              the seconds-long version `npm test` runs
//   BENCH_CASES=hot,cold-one npm run bench          only some cases
//   BENCH_PROXY_VARS='{"ROUTE_CACHE_TTL_MS":"1000"}' npm run bench   A/B a setting
//
// It prints one table, the median of each figure over rounds with the
// lowest and highest round, and writes the whole result, every round of
// every case, to bench/results/.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { renderMarkdown, renderTable } from "./harness/report.ts";
import { root } from "./harness/workers.ts";
import { full, smoke } from "./profiles.ts";
import { cases, runSuite } from "./suite.ts";

const profile = process.argv.includes("--smoke") ? smoke : full;
const only = process.env.BENCH_CASES?.split(",")
	.map((key) => key.trim())
	.filter((key) => key !== "");
for (const key of only ?? []) {
	if (!cases.some((c) => c.key === key)) {
		throw new Error(`BENCH_CASES: no case "${key}"; the cases are ${cases.map((c) => c.key).join(", ")}`);
	}
}

const result = await runSuite(profile, { ...(only === undefined ? {} : { only }), log: (line) => console.log(line) });
const m = result.machine;
console.log("");
console.log(
	`${profile.name} profile, ${result.startedAt}, ${result.seconds.toFixed(0)} s; ${m.cpus} × ${m.cpuModel}, ` +
		`${m.memoryGiB} GiB; Node ${m.node}, workerd ${m.workerd}; at ${m.commit}${m.dirty ? " (with uncommitted changes)" : ""}`,
);
console.log("");
console.log(renderTable(result.rows));
const notes = result.cases.flatMap((c) => c.notes ?? []);
if (notes.length > 0) console.log(`\n${notes.map((note) => `- ${note}`).join("\n")}`);
if (result.failedChecks.length > 0) {
	console.log("\nExact counts that did not hold (the figures of these cases are not to be trusted):");
	for (const check of result.failedChecks) {
		console.log(`  ${check.what}: expected ${check.expected}, got ${check.actual}`);
	}
	process.exitCode = 1;
}

const directory = join(root, "bench/results");
mkdirSync(directory, { recursive: true });
const stamp = result.startedAt.replace(/[:.]/g, "-");
const json = `${JSON.stringify({ ...result, markdown: renderMarkdown(result.rows) }, null, 2)}\n`;
const file = join(directory, `${stamp}-${profile.name}.json`);
writeFileSync(file, json);
writeFileSync(join(directory, `latest-${profile.name}.json`), json);
console.log(`\nWritten to ${file}`);
