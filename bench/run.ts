// Hot-path benchmark: the proxy against a bare pass-through Worker, both in
// workerd through Miniflare, in the same run, against the same upstream on
// loopback. Figures are ratios to that baseline.
//
//   npm run bench                      (defaults below)
//   BENCH_REQUESTS=4000 BENCH_CONCURRENCY=16 BENCH_ROUNDS=5 npm run bench
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { Agent, createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import { startStack } from "../dev/stack.ts";

const root = new URL("..", import.meta.url).pathname;
const requests = Number(process.env.BENCH_REQUESTS ?? 2000);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 8);
const rounds = Number(process.env.BENCH_ROUNDS ?? 9);
const uploadMiB = Number(process.env.BENCH_UPLOAD_MIB ?? 256);
const uploadRounds = Number(process.env.BENCH_UPLOAD_ROUNDS ?? 3);
const apiSecret = "bench-secret";
const sandboxId = "bench";
const path = "/bench?q=1";
const compatibilityDate = "2026-11-01";

interface Target {
	name: string;
	url: URL;
	host: string;
	workerdPid: number;
}

interface Sample {
	seconds: number;
	latenciesMs: number[];
	/** CPU seconds the target's workerd process used during the sample. */
	cpuSeconds: number;
}

/** workerd processes started by this process (Miniflare spawns one per instance). */
function workerdChildren(): Set<number> {
	const pids = new Set<number>();
	for (const entry of readdirSync("/proc")) {
		if (!/^\d+$/.test(entry)) continue;
		try {
			const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
			const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
			if (stat.includes("(workerd)") && Number(fields[1]) === process.pid) pids.add(Number(entry));
		} catch {
			// The process ended while we looked.
		}
	}
	return pids;
}

const clockTicksPerSecond = 100;

/** User plus system CPU seconds of a process, all threads included. */
function cpuSecondsOf(pid: number): number {
	const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
	const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
	return (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond;
}

function buildWorker(): string {
	const outdir = join(root, "bench/.build");
	execFileSync(join(root, "node_modules/.bin/wrangler"), ["deploy", "--dry-run", "--env", "", "--outdir", outdir], {
		cwd: root,
		stdio: ["ignore", "ignore", "inherit"],
		env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
	});
	return join(outdir, "index.js");
}

// The smallest Worker that does the same job without routing, catalog or
// error handling: the floor the proxy is measured against.
const passThroughScript = `
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
};`;

async function runLoad(target: Target, count: number): Promise<Sample> {
	const cpuBefore = cpuSecondsOf(target.workerdPid);
	const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
	const latenciesMs: number[] = [];
	let next = 0;
	const once = () =>
		new Promise<void>((resolve, reject) => {
			const started = performance.now();
			const req = request(
				{ host: target.url.hostname, port: target.url.port, path, agent, headers: { host: target.host } },
				(res) => {
					if (res.statusCode !== 200) reject(new Error(`${target.name}: status ${res.statusCode}`));
					res.resume();
					res.on("end", () => {
						latenciesMs.push(performance.now() - started);
						resolve();
					});
				},
			);
			req.on("error", reject);
			req.end();
		});
	const started = performance.now();
	await Promise.all(
		Array.from({ length: concurrency }, async () => {
			while (next < count) {
				next += 1;
				await once();
			}
		}),
	);
	const seconds = (performance.now() - started) / 1000;
	agent.destroy();
	return { seconds, latenciesMs, cpuSeconds: cpuSecondsOf(target.workerdPid) - cpuBefore };
}

interface UploadSample {
	seconds: number;
	cpuSeconds: number;
}

/** One streamed upload with a Content-Length, which the node reads and drops. */
async function runUpload(target: Target, bytes: number): Promise<UploadSample> {
	const cpuBefore = cpuSecondsOf(target.workerdPid);
	const chunk = Buffer.alloc(256 * 1024, 7);
	const started = performance.now();
	await new Promise<void>((resolve, reject) => {
		const req = request(
			{
				host: target.url.hostname,
				port: target.url.port,
				method: "POST",
				path: "/upload",
				agent: false,
				headers: { host: target.host, "content-length": String(bytes) },
			},
			(res) => {
				if (res.statusCode !== 200) reject(new Error(`${target.name}: upload status ${res.statusCode}`));
				res.resume();
				res.on("end", resolve);
			},
		);
		req.on("error", reject);
		let sent = 0;
		const write = () => {
			while (sent < bytes) {
				sent += chunk.byteLength;
				if (!req.write(chunk)) return void req.once("drain", write);
			}
			req.end();
		};
		write();
	});
	return { seconds: (performance.now() - started) / 1000, cpuSeconds: cpuSecondsOf(target.workerdPid) - cpuBefore };
}

function percentile(sorted: number[], p: number): number {
	return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

function median(values: number[]): number {
	const sorted = [...values].sort((a, b) => a - b);
	const middle = Math.floor(sorted.length / 2);
	return sorted.length % 2 === 1
		? (sorted[middle] ?? Number.NaN)
		: ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

function summarize(samples: Sample[]) {
	const latencies = samples.flatMap((s) => s.latenciesMs).sort((a, b) => a - b);
	const seconds = samples.reduce((sum, s) => sum + s.seconds, 0);
	const cpuSeconds = samples.reduce((sum, s) => sum + s.cpuSeconds, 0);
	return {
		cpuMicrosPerRequest: (cpuSeconds / latencies.length) * 1e6,
		requestsPerSecond: latencies.length / seconds,
		p50Ms: percentile(latencies, 50),
		p99Ms: percentile(latencies, 99),
	};
}

/**
 * The cheapest possible node: it answers at once, so that the Workers' own
 * cost is as large a share of each request as it can be.
 */
async function startUpstream(): Promise<Server> {
	const body = Buffer.from('{"ok":true}');
	const server = createServer((req, res) => {
		// Answers once the whole body has arrived, so that an upload is timed to its end.
		req.resume();
		req.on("end", () => {
			res.writeHead(200, { "content-type": "application/json", "content-length": body.length });
			res.end(body);
		});
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	return server;
}

async function main(): Promise<void> {
	const scriptPath = buildWorker();
	// The development control plane answers the proxy's one ResumeSandbox call.
	// Paused first: like E2B's, it resumes only a sandbox that has a snapshot.
	const stack = await startStack({ apiSecret, controlPlanePort: 0, nodePort: 0, resumeDelayMs: 0 });
	await stack.controlPlane.sandboxes.create({ id: sandboxId });
	await stack.controlPlane.sandboxes.pause(sandboxId);
	const upstream = await startUpstream();
	const upstreamPort = (upstream.address() as AddressInfo).port;
	const proxyBindings = {
		SANDBOX_DOMAIN: "localhost",
		CONTROL_PLANE_URL: stack.controlPlaneUrl,
		NODE_ORIGIN_TEMPLATE: `http://{ip}:${upstreamPort}`,
		ENVIRONMENT: "development",
		API_SECRET: apiSecret,
	};
	const proxyWorker = (bindings: Record<string, string>) =>
		new Miniflare(
			convertV4MiniflareOptions({
				modules: true,
				scriptPath,
				compatibilityDate,
				compatibilityFlags: ["nodejs_compat"],
				durableObjects: { SANDBOX_ROUTE: { className: "SandboxRoute", useSQLite: true } },
				bindings,
			}),
		);
	const workerFactories = [
		() =>
			new Miniflare(
				convertV4MiniflareOptions({
					modules: true,
					script: passThroughScript,
					compatibilityDate,
					compatibilityFlags: ["nodejs_compat"],
					bindings: { SANDBOX_ID: sandboxId, NODE_ORIGIN: `http://127.0.0.1:${upstreamPort}` },
				}),
			),
		() => proxyWorker(proxyBindings),
		// The same proxy with the isolate cache off: every request asks the
		// catalog Durable Object, which shows what the cache saves.
		() => proxyWorker({ ...proxyBindings, ROUTE_CACHE_TTL_MS: "0" }),
	];
	// Started one at a time, to tell which workerd process is whose.
	const workers: Miniflare[] = [];
	const started: { url: URL; pid: number }[] = [];
	for (const factory of workerFactories) {
		const before = workerdChildren();
		const mf = factory();
		workers.push(mf);
		const url = (await mf.ready) as URL;
		const pid = [...workerdChildren()].find((p) => !before.has(p));
		if (pid === undefined) throw new Error("could not find the workerd process Miniflare started");
		started.push({ url, pid });
	}
	try {
		const host = `3000-${sandboxId}.localhost`;
		const names = ["pass-through baseline", "proxy (isolate cache hit)", "proxy (cache off, catalog DO per request)"];
		const targets: Target[] = started.map(({ url, pid }, i) => ({ name: names[i] ?? "", url, host, workerdPid: pid }));
		const samples = new Map<string, Sample[]>(targets.map((t) => [t.name, []]));
		for (const target of targets) await runLoad(target, 300); // warm up, and learn the route
		// Rounds alternate the targets so that drift in the machine's load hits all alike.
		for (let round = 0; round < rounds; round++) {
			for (const target of targets) samples.get(target.name)?.push(await runLoad(target, requests));
		}

		// Each round's figures are divided by the same round's baseline, and the
		// median of those ratios is reported: the machine's drift cancels out.
		const baselineSamples = samples.get(targets[0]?.name ?? "") ?? [];
		const rows = targets.map((target) => {
			const own = samples.get(target.name) ?? [];
			const s = summarize(own);
			const ratios = (measure: (sample: Sample) => number) =>
				median(own.map((sample, i) => measure(sample) / measure(baselineSamples[i] ?? sample)));
			const cpuPerRequest = (sample: Sample) => sample.cpuSeconds / sample.latenciesMs.length;
			const p50 = (sample: Sample) =>
				percentile(
					[...sample.latenciesMs].sort((a, b) => a - b),
					50,
				);
			const rate = (sample: Sample) => sample.latenciesMs.length / sample.seconds;
			return {
				target: target.name,
				"workerd CPU µs/req": s.cpuMicrosPerRequest.toFixed(0),
				"CPU vs baseline": ratios(cpuPerRequest).toFixed(2),
				"req/s": s.requestsPerSecond.toFixed(0),
				"req/s vs baseline": ratios(rate).toFixed(2),
				"p50 ms": s.p50Ms.toFixed(2),
				"p50 vs baseline": ratios(p50).toFixed(2),
				"p99 ms": s.p99Ms.toFixed(2),
			};
		});
		const header = `${rounds} rounds x ${requests} requests, concurrency ${concurrency}, GET ${path}; ratios are medians of per-round ratios`;
		console.log(header);
		console.table(rows);

		// Streamed uploads: the proxy pumps them itself (see StreamedUpload), the baseline hands the body over.
		const uploadTargets = targets.slice(0, 2);
		const uploads = new Map<string, UploadSample[]>(uploadTargets.map((t) => [t.name, []]));
		const bytes = uploadMiB * 1024 * 1024;
		for (let round = 0; round < uploadRounds; round++) {
			for (const target of uploadTargets) uploads.get(target.name)?.push(await runUpload(target, bytes));
		}
		const baselineUploads = uploads.get(uploadTargets[0]?.name ?? "") ?? [];
		const uploadRows = uploadTargets.map((target) => {
			const own = uploads.get(target.name) ?? [];
			const ratio = (measure: (sample: UploadSample) => number) =>
				median(own.map((sample, i) => measure(sample) / measure(baselineUploads[i] ?? sample)));
			const throughput = (sample: UploadSample) => uploadMiB / sample.seconds;
			const cpuPerMiB = (sample: UploadSample) => (sample.cpuSeconds * 1000) / uploadMiB;
			return {
				target: target.name,
				"MiB/s": median(own.map(throughput)).toFixed(0),
				"MiB/s vs baseline": ratio(throughput).toFixed(2),
				"workerd CPU ms/MiB": median(own.map(cpuPerMiB)).toFixed(2),
				"CPU vs baseline": ratio(cpuPerMiB).toFixed(2),
			};
		});
		const uploadHeader = `${uploadRounds} rounds x one ${uploadMiB} MiB upload with a Content-Length; medians`;
		console.log(uploadHeader);
		console.table(uploadRows);

		mkdirSync(join(root, "bench/results"), { recursive: true });
		writeFileSync(
			join(root, "bench/results/latest.json"),
			`${JSON.stringify({ at: new Date().toISOString(), header, rows, uploadHeader, uploadRows }, null, 2)}\n`,
		);
	} finally {
		await Promise.all(workers.map((mf) => mf.dispose()));
		await stack.close();
		upstream.closeAllConnections();
		await new Promise((resolve) => upstream.close(resolve));
	}
}

await main();
