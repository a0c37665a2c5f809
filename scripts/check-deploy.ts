// Checks the production deploy without deploying: builds the Worker exactly
// as `wrangler deploy --env production` would upload it (`--dry-run`, so no
// Cloudflare account or network is needed), and fails when the bundle is over
// its size budget: 100,000 bytes of gzip, zlib at its default level over the
// bundle's index.js, as bench/cases/bundle.ts measures it.
//
//   node scripts/check-deploy.ts [--outdir <dir>]
//
// With --outdir the build is kept there; otherwise it goes to a temporary
// folder that is removed. Exit codes: 0 within budget, 1 over it or the build
// failed, 2 bad command line.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

export const gzipBudgetBytes = 100_000;

const root = fileURLToPath(new URL("..", import.meta.url));
/** Run on this Node (22), whatever `node` is first on the PATH. */
const wranglerBin = join(root, "node_modules/wrangler/bin/wrangler.js");

export interface DeployBuild {
	/** The bundle wrangler would upload. */
	scriptPath: string;
	bytes: number;
	gzipBytes: number;
	/** wrangler's own "Total Upload: ... / gzip: ..." line (KiB, its own compression). */
	wranglerSizeLine: string;
	/** esbuild's metafile of the build (`--metafile`): every input and how each imports the others. */
	metafilePath: string;
	/** wrangler's whole output, for a failure's report. */
	output: string;
}

export class DeployBuildError extends Error {
	override name = "DeployBuildError";
}

/** Runs `wrangler deploy --dry-run --env production --outdir <outdir>` and measures the bundle. */
export function buildProduction(outdir: string): DeployBuild {
	const run = spawnSync(
		process.execPath,
		[wranglerBin, "deploy", "--dry-run", "--env", "production", "--outdir", outdir, "--metafile"],
		{
			cwd: root,
			encoding: "utf8",
			env: { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", FORCE_COLOR: "0" },
			maxBuffer: 64 << 20,
		},
	);
	const output = `${run.stdout ?? ""}${run.stderr ?? ""}`;
	if (run.error !== undefined) throw new DeployBuildError(`could not run wrangler: ${run.error.message}`);
	if (run.status !== 0) {
		throw new DeployBuildError(`wrangler deploy --dry-run --env production failed (exit ${run.status}):\n${output}`);
	}
	const scriptPath = join(outdir, "index.js");
	const script = readFileSync(scriptPath);
	return {
		scriptPath,
		metafilePath: join(outdir, "bundle-meta.json"),
		bytes: script.length,
		gzipBytes: gzipSync(script).length,
		wranglerSizeLine: /Total Upload:.*$/m.exec(output)?.[0] ?? "",
		output,
	};
}

/** The verdict line: the size, the budget, and the margin either way. */
export function describeBudget(gzipBytes: number, budget = gzipBudgetBytes): string {
	const n = (value: number) => value.toLocaleString("en-US");
	const verdict =
		gzipBytes <= budget
			? `within budget, ${n(budget - gzipBytes)} B to spare`
			: `OVER budget by ${n(gzipBytes - budget)} B`;
	return `gzip ${n(gzipBytes)} B (zlib default level), budget ${n(budget)} B: ${verdict}`;
}

function parseOutdir(args: string[]): string | undefined {
	if (args.length === 0) return undefined;
	if (args.length === 2 && args[0] === "--outdir" && args[1] !== undefined && args[1] !== "") return resolve(args[1]);
	console.error("usage: node scripts/check-deploy.ts [--outdir <dir>]");
	process.exit(2);
}

function main(): void {
	const kept = parseOutdir(process.argv.slice(2));
	const outdir = kept ?? mkdtempSync(join(tmpdir(), "deploy-check-"));
	try {
		let build: DeployBuild;
		try {
			build = buildProduction(outdir);
		} catch (error) {
			if (!(error instanceof DeployBuildError)) throw error;
			console.error(`deploy check: ${error.message}`);
			process.exitCode = 1;
			return;
		}
		console.log(`deploy check: wrangler deploy --dry-run --env production built ${build.scriptPath}`);
		if (build.wranglerSizeLine !== "") console.log(`deploy check: wrangler says "${build.wranglerSizeLine}"`);
		console.log(`deploy check: index.js ${build.bytes.toLocaleString("en-US")} B, ${describeBudget(build.gzipBytes)}`);
		if (build.gzipBytes > gzipBudgetBytes) process.exitCode = 1;
	} finally {
		if (kept === undefined) rmSync(outdir, { recursive: true, force: true });
	}
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
