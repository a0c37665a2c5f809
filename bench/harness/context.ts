// Everything the cases share: the built proxy, the development control
// plane, the bench's node, and the Workers under test.
import { request } from "node:http";
import { type Stack, startStack } from "../../dev/stack.ts";
import type { Profile } from "../profiles.ts";
import { type BenchNode, startBenchNode } from "./node.ts";
import type { Row } from "./report.ts";
import {
	apiSecret,
	type Build,
	buildDirFor,
	buildWorker,
	catalogSecret,
	liftedRatelimits,
	type ProxyWorker,
	type RunningWorker,
	startPassThrough,
	startProxy,
	wranglerRatelimits,
} from "./workers.ts";

export interface Context {
	profile: Profile;
	build: Build;
	/** The development control plane (ResumeSandbox, with resumeDelayMs = D) and its registry. */
	stack: Stack;
	node: BenchNode;
	/** The baseline, and the floor of wakes (its node waits D). */
	passThrough: RunningWorker;
	/** The proxy as deployed: isolate cache on, wrangler.toml's budgets. */
	proxy: ProxyWorker;
	/** The proxy with every cache outside the object off: each request asks the catalog object. */
	warmProxy: ProxyWorker;
	/** The host of the one sandbox whose route is pushed up front. */
	hotHost: string;
	/** A sandbox ID no case has used, made of `prefix` and a counter. */
	freshId(prefix: string): string;
	/** A client address (CF-Connecting-IP) no request has used yet, from 198.18.0.0/15 (benchmarking). */
	freshClientIp(): string;
	close(): Promise<void>;
}

export interface Check {
	what: string;
	expected: number;
	actual: number;
}

export interface CaseResult {
	name: string;
	rows: Row[];
	/** Exact counts: the smoke test requires each to hold; the full run flags any that does not. */
	checks: Check[];
	/** Printed under the table: how a figure was taken, what it includes. */
	notes?: string[];
	data: Record<string, unknown>;
	seconds: number;
}

export const hotSandboxId = "bench";

/** Vars over the proxy's defaults for every proxy in the run, e.g. to A/B a setting: BENCH_PROXY_VARS='{"X":"1"}'. */
function extraVars(): Record<string, string> {
	const raw = process.env.BENCH_PROXY_VARS;
	if (raw === undefined || raw === "") return {};
	return JSON.parse(raw) as Record<string, string>;
}

export async function startContext(profile: Profile): Promise<Context> {
	const build = buildWorker(buildDirFor(profile.name));
	const stack = await startStack({
		apiSecret,
		controlPlanePort: 0,
		nodePort: 0,
		resumeDelayMs: profile.resumeDelayMs,
		pauseDelayMs: 10,
	});
	const opened: { close(): Promise<void> }[] = [stack];
	try {
		const node = await startBenchNode();
		opened.push(node);
		const nodeOriginTemplate = `http://{ip}:${node.port}`;
		const passThrough = await startPassThrough({ name: "pass-through", nodeOrigin: node.origin });
		opened.push({ close: () => passThrough.dispose() });
		const vars = extraVars();
		const proxy = await startProxy({
			name: "proxy",
			scriptPath: build.scriptPath,
			controlPlaneUrl: stack.controlPlaneUrl,
			nodeOriginTemplate,
			vars,
			inspect: (process.env.BENCH_INSPECT ?? "") !== "",
		});
		opened.push({ close: () => proxy.dispose() });
		const warmProxy = await startProxy({
			name: "proxy, caches off",
			scriptPath: build.scriptPath,
			controlPlaneUrl: stack.controlPlaneUrl,
			nodeOriginTemplate,
			// LOCATION_CACHE_TTL_MS is the per-location Cache API tier's, where the Worker has one.
			vars: { ROUTE_CACHE_TTL_MS: "0", LOCATION_CACHE_TTL_MS: "0", ...vars },
			// Every request of the warm path misses the caches, from one client: past the lookup budget at once.
			ratelimits: { ...wranglerRatelimits(), ...liftedRatelimits(["LOOKUP_LIMIT_PER_CLIENT"]) },
		});
		opened.push({ close: () => warmProxy.dispose() });
		// The hot sandbox's route is pushed, as the control plane pushes a running sandbox's: no RPC.
		for (const worker of [proxy, warmProxy]) await putRoute(worker, hotSandboxId, "127.0.0.1");
		let ids = 0;
		let clients = 0;
		const runTag = Date.now().toString(36);
		return {
			profile,
			build,
			stack,
			node,
			passThrough,
			proxy,
			warmProxy,
			hotHost: sandboxHost(hotSandboxId),
			freshId: (prefix) => `${prefix}${runTag}x${++ids}`,
			freshClientIp: () => {
				clients += 1;
				return `198.${18 + (clients >> 16)}.${(clients >> 8) & 255}.${clients & 255}`;
			},
			close: () => closeAll(opened),
		};
	} catch (error) {
		await closeAll(opened);
		throw error;
	}
}

async function closeAll(opened: { close(): Promise<void> }[]): Promise<void> {
	for (const item of opened.reverse()) await item.close();
}

export function sandboxHost(sandboxId: string, port = 3000): string {
	return `${port}-${sandboxId}.localhost`;
}

export interface Answer {
	status: number;
	text: string;
}

/** One request with a Host of our choosing (fetch in Node cannot set it). */
export function send(
	baseUrl: URL,
	host: string,
	path: string,
	options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
	return new Promise((resolve, reject) => {
		const body = options.body;
		const req = request(
			{
				host: baseUrl.hostname,
				port: baseUrl.port,
				path,
				method: options.method ?? "GET",
				agent: false,
				headers: {
					host,
					...(body === undefined ? {} : { "content-length": String(Buffer.byteLength(body)) }),
					...options.headers,
				},
			},
			(res) => {
				let text = "";
				res.setEncoding("utf8");
				res.on("data", (data: string) => {
					text += data;
				});
				res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
			},
		);
		req.on("error", reject);
		req.end(body);
	});
}

function catalogHeaders(): Record<string, string> {
	return { authorization: `Bearer ${catalogSecret}`, "content-type": "application/json" };
}

/** PUT /v1/sandboxes/{id} on the proxy's catalog API. */
export async function putRoute(worker: RunningWorker, sandboxId: string, nodeIp: string): Promise<void> {
	const answer = await send(worker.url, "edge.localhost", `/v1/sandboxes/${sandboxId}`, {
		method: "PUT",
		headers: catalogHeaders(),
		body: JSON.stringify({ orchestrator_ip: nodeIp, execution_id: `exec-${sandboxId}`, ttl_seconds: 3600 }),
	});
	if (answer.status !== 204) throw new Error(`PUT route of ${sandboxId}: ${answer.status} ${answer.text}`);
}

/** POST /v1/sandboxes/batch with puts only; the statuses of its items. */
export async function putBatch(
	worker: RunningWorker,
	sandboxIds: readonly string[],
	nodeIp: string,
): Promise<number[]> {
	const body = JSON.stringify({
		put: sandboxIds.map((id) => ({
			sandbox_id: id,
			orchestrator_ip: nodeIp,
			execution_id: `exec-${id}`,
			ttl_seconds: 3600,
		})),
	});
	const answer = await send(worker.url, "edge.localhost", "/v1/sandboxes/batch", {
		method: "POST",
		headers: catalogHeaders(),
		body,
	});
	if (answer.status !== 200) throw new Error(`batch: ${answer.status} ${answer.text.slice(0, 300)}`);
	return (JSON.parse(answer.text) as { results: { status: number }[] }).results.map((result) => result.status);
}

/** ResumeSandbox calls the control plane received for these sandboxes. */
export function rpcsFor(context: Context, sandboxIds: Iterable<string>) {
	const wanted = new Set(sandboxIds);
	return context.stack.controlPlane.calls().filter((call) => wanted.has(call.sandboxId));
}
