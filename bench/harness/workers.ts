// The Workers under test, each in a workerd process of its own through
// Miniflare, so that each one's CPU and memory can be read from /proc:
// - the proxy, as `wrangler deploy --dry-run` builds it, with wrangler.toml's
//   compatibility settings and resume budgets;
// - the pass-through baseline: the smallest Worker that forwards a request
//   to a node, with no routing, catalog or error handling.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import { unstable_readConfig } from "wrangler";
import { workerdChildren } from "./proc.ts";

export const root = new URL("../..", import.meta.url).pathname;
/** Where the bench builds; the smoke profile builds in a folder of its own, so that it never races a full run. */
export function buildDirFor(profileName: string): string {
	return profileName === "full" ? join(root, "bench/.build") : join(root, `bench/.build/${profileName}`);
}
export const apiSecret = "bench-api-secret-3d7e1b";
export const catalogSecret = "bench-catalog-secret-9a4f2c";
/** Run on this Node (22), whatever `node` is first on the PATH. */
export const wranglerBin = join(root, "node_modules/wrangler/bin/wrangler.js");

export interface Build {
	/** wrangler's --outdir. */
	dir: string;
	/** The bundle wrangler would upload. */
	scriptPath: string;
	/** wrangler's own "Total Upload: ... / gzip: ..." line. */
	wranglerSizeLine: string;
	seconds: number;
}

/** Builds the proxy exactly as `wrangler deploy` would, without uploading it. */
export function buildWorker(buildDir: string): Build {
	const started = performance.now();
	const output = execFileSync(
		process.execPath,
		[wranglerBin, "deploy", "--dry-run", "--env", "", "--outdir", buildDir],
		{
			cwd: root,
			encoding: "utf8",
			stdio: ["ignore", "pipe", "inherit"],
			env: { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" },
		},
	);
	const wranglerSizeLine = /Total Upload:.*$/m.exec(output)?.[0] ?? "";
	return {
		dir: buildDir,
		scriptPath: join(buildDir, "index.js"),
		wranglerSizeLine,
		seconds: (performance.now() - started) / 1000,
	};
}

// The floor the proxy is measured against: copy the headers, set the two
// routing headers, fetch with redirect: "manual". A WebSocket upgrade comes
// back as the node's Response, returned as it is.
export const passThroughSource = `
export default {
	async fetch(request, env) {
		const url = new URL(request.url);
		const headers = new Headers(request.headers);
		headers.set("e2b-sandbox-id", env.SANDBOX_ID);
		headers.set("e2b-sandbox-port", "3000");
		return fetch(env.NODE_ORIGIN + url.pathname + url.search, {
			method: request.method, headers, body: request.body, redirect: "manual",
		});
	},
};
`;

// The proxy's bundle, unchanged, with its Durable Object class extended to
// count the calls it receives. Miniflare runs the Worker and its objects in
// one isolate, so one module-level counter sees every object's calls; a
// method on any object reads it. The Worker's own fetch path is untouched.
const countingSource = `
import { SandboxRoute as Counted } from "./index.js";
export * from "./index.js";
export { default } from "./index.js";
const calls = { lookup: 0, invalidate: 0, write: 0, describe: 0 };
export class SandboxRoute extends Counted {
	lookup(...args) { calls.lookup++; return super.lookup(...args); }
	invalidate(...args) { calls.invalidate++; return super.invalidate(...args); }
	write(...args) { calls.write++; return super.write(...args); }
	describe(...args) { calls.describe++; return super.describe(...args); }
	benchObjectCalls() { return JSON.stringify(calls); }
}
`;

export interface ObjectCalls {
	lookup: number;
	invalidate: number;
	write: number;
	describe: number;
}

export interface RunningWorker {
	name: string;
	url: URL;
	/** The workerd process that runs it. */
	pid: number;
	/** Seconds from `new Miniflare()` to ready: workerd's start and the script's first load. */
	startSeconds: number;
	/** Lines the Worker logged (console.log), as JSON strings where it logged JSON. */
	logs: string[];
	dispose(): Promise<void>;
}

export interface ProxyWorker extends RunningWorker {
	/** Calls received by the proxy's catalog objects so far, all objects together. */
	objectCalls(): Promise<ObjectCalls>;
	/** workerd's inspector, when started with `inspect`. */
	inspectorUrl(): Promise<URL>;
}

interface WranglerSettings {
	compatibilityDate: string;
	compatibilityFlags: string[];
	ratelimits: Record<string, { namespace_id: string; simple: { limit: number; period: 10 | 60 } }>;
}

function wranglerSettings(): WranglerSettings {
	const config = unstable_readConfig({ config: join(root, "wrangler.toml") });
	const ratelimits: WranglerSettings["ratelimits"] = {};
	for (const limit of config.ratelimits) {
		ratelimits[limit.name] = {
			namespace_id: limit.namespace_id,
			simple: { limit: limit.simple.limit, period: limit.simple.period === 60 ? 60 : 10 },
		};
	}
	return {
		compatibilityDate: config.compatibility_date ?? "2026-11-01",
		compatibilityFlags: config.compatibility_flags,
		ratelimits,
	};
}

type V4Options = Parameters<typeof convertV4MiniflareOptions>[0];

// Miniflare spawns workerd; started one at a time, each new child is the one.
let starting: Promise<unknown> = Promise.resolve();

async function start(name: string, options: V4Options): Promise<RunningWorker> {
	const previous = starting;
	let release = () => {};
	starting = new Promise<void>((resolve) => {
		release = resolve;
	});
	await previous;
	try {
		const logs: string[] = [];
		const before = workerdChildren();
		const started = performance.now();
		const mf = new Miniflare(
			convertV4MiniflareOptions({
				...options,
				handleStructuredLogs: ({ message }: { message: string }) => {
					logs.push(message);
				},
			} as V4Options),
		);
		const url = await mf.ready;
		const startSeconds = (performance.now() - started) / 1000;
		const pid = [...workerdChildren()].find((p) => !before.has(p));
		if (pid === undefined) {
			await mf.dispose();
			throw new Error(`could not find the workerd process Miniflare started for ${name}`);
		}
		const worker: RunningWorker & { mf: Miniflare } = {
			name,
			url,
			pid,
			startSeconds,
			logs,
			mf,
			dispose: () => mf.dispose(),
		};
		return worker;
	} finally {
		release();
	}
}

/**
 * Where the proxy's Durable Object storage (a SQLite file per object) and
 * Cache API data go: a fresh directory on /dev/shm (tmpfs) where there is
 * one, else Miniflare's own temporary directory. On this machine's ext4,
 * creating thousands of SQLite files costs workerd more kernel time in
 * ext4's inode allocator (recently_deleted) than the objects themselves
 * cost: that is the disk's cost, not the Worker's, and it would take the
 * suite past its time. BENCH_DO_STORAGE=disk keeps Miniflare's default.
 */
function memoryBackedDirectory(): string | undefined {
	if (process.env.BENCH_DO_STORAGE === "disk" || !existsSync("/dev/shm")) return undefined;
	try {
		return mkdtempSync("/dev/shm/sandbox-edge-proxy-bench-");
	} catch {
		return undefined;
	}
}

export interface StartProxyOptions {
	name: string;
	scriptPath: string;
	controlPlaneUrl: string;
	/** e.g. http://{ip}:1234 */
	nodeOriginTemplate: string;
	/** Vars over the defaults, e.g. ROUTE_CACHE_TTL_MS. */
	vars?: Record<string, string>;
	/** The resume budgets; default wrangler.toml's. */
	ratelimits?: WranglerSettings["ratelimits"];
	/** Open workerd's inspector (for CPU profiles); off by default, as it may cost something. */
	inspect?: boolean;
	/**
	 * Where the objects' storage goes; default a fresh directory on /dev/shm
	 * (see memoryBackedDirectory). A directory given here is the caller's: it
	 * outlives the proxy, so that another proxy can start on what this one stored.
	 */
	storageDir?: string;
}

export async function startProxy(options: StartProxyOptions): Promise<ProxyWorker> {
	const settings = wranglerSettings();
	const buildDir = dirname(options.scriptPath);
	const countingPath = join(buildDir, "counting.js");
	const storage = options.storageDir ?? memoryBackedDirectory();
	const ownStorage = options.storageDir === undefined ? storage : undefined;
	mkdirSync(buildDir, { recursive: true });
	writeFileSync(countingPath, countingSource);
	const worker = (await start(options.name, {
		modulesRoot: buildDir,
		modules: [
			{ type: "ESModule", path: countingPath },
			{ type: "ESModule", path: options.scriptPath },
		],
		compatibilityDate: settings.compatibilityDate,
		compatibilityFlags: settings.compatibilityFlags,
		durableObjects: { SANDBOX_ROUTE: { className: "SandboxRoute", useSQLite: true } },
		...(options.inspect === true ? { inspectorPort: 0 } : {}),
		...(storage === undefined ? {} : { resourcePersistencePath: storage }),
		ratelimits: options.ratelimits ?? settings.ratelimits,
		// Production's telemetry: the dataset bound, as wrangler.toml's production environment binds it.
		analyticsEngineDatasets: { METRICS: { dataset: "sandbox_edge_proxy" } },
		bindings: {
			SANDBOX_DOMAIN: "localhost",
			CONTROL_PLANE_URL: options.controlPlaneUrl,
			NODE_ORIGIN_TEMPLATE: options.nodeOriginTemplate,
			ENVIRONMENT: "development",
			API_SECRET: apiSecret,
			CATALOG_SECRET: catalogSecret,
			...options.vars,
		},
	} as V4Options)) as RunningWorker & { mf: Miniflare };
	const mf = worker.mf;
	const dispose = async () => {
		await mf.dispose();
		if (ownStorage !== undefined) rmSync(ownStorage, { recursive: true, force: true });
	};
	let counter: { benchObjectCalls(): Promise<string> } | undefined;
	return {
		...worker,
		dispose,
		inspectorUrl: () => mf.getInspectorURL(),
		async objectCalls() {
			if (counter === undefined) {
				const namespace = (await mf.getDurableObjectNamespace("SANDBOX_ROUTE")) as unknown as {
					idFromName(name: string): unknown;
					get(id: unknown): { benchObjectCalls(): Promise<string> };
				};
				// Any object answers for all: the counter is the isolate's. This
				// one is never asked for a route, so it adds nothing to the counts.
				counter = namespace.get(namespace.idFromName("benchcounter"));
			}
			return JSON.parse(await counter.benchObjectCalls()) as ObjectCalls;
		},
	};
}

export function startPassThrough(options: { name: string; nodeOrigin: string }): Promise<RunningWorker> {
	const settings = wranglerSettings();
	return start(options.name, {
		modules: true,
		script: passThroughSource,
		compatibilityDate: settings.compatibilityDate,
		compatibilityFlags: settings.compatibilityFlags,
		bindings: { SANDBOX_ID: "bench", NODE_ORIGIN: options.nodeOrigin },
	} as V4Options);
}

/** wrangler.toml's budgets, as Miniflare takes them. */
export function wranglerRatelimits(): WranglerSettings["ratelimits"] {
	return wranglerSettings().ratelimits;
}

/** The budgets (all, or those named), lifted far above anything the suite sends. */
export function liftedRatelimits(names?: readonly string[]): WranglerSettings["ratelimits"] {
	const lifted: WranglerSettings["ratelimits"] = {};
	for (const [name, limit] of Object.entries(wranglerSettings().ratelimits)) {
		if (names !== undefined && !names.includes(name)) continue;
		lifted[name] = { namespace_id: limit.namespace_id, simple: { limit: 1_000_000, period: 10 } };
	}
	return lifted;
}
