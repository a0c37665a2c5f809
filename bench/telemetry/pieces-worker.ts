// What each piece of the hot path's telemetry costs, run in workerd: one
// request runs a piece `n` times over, so that the runtime's cost of a
// request is paid once and the piece's n times (bench/telemetry-pieces.ts).
import { isolateRouteCache } from "../../src/catalog/route-cache.ts";
import { configFrom } from "../../src/config.ts";
import { upstreamHeaders } from "../../src/forwarding/forward.ts";
import proxy from "../../src/index.ts";
import { routeHost } from "../../src/routing.ts";
import { recordMetrics } from "../../src/telemetry/metrics.ts";
import { logRequest } from "../../src/telemetry/request-log.ts";
import { RequestTrace } from "../../src/telemetry/request-trace.ts";
import { withTiming } from "../../src/telemetry/timing-headers.ts";

interface PiecesEnv {
	METRICS?: AnalyticsEngineDataset;
}

// The whole hot path, with the node answering at once from JavaScript (a
// NODES binding the proxy sends through): what the Worker's own code costs a
// request, against the pass-through's in the same isolate.
const answerAtOnce = { fetch: async (_url: string, _init?: RequestInit) => new Response("ok") };
const context = { waitUntil: () => {}, passThroughOnException: () => {}, props: {} } as unknown as ExecutionContext;
let proxyEnv: Env | undefined;

function hotProxyEnv(env: PiecesEnv): Env {
	if (proxyEnv === undefined) {
		proxyEnv = {
			...env,
			SANDBOX_DOMAIN: "example.com",
			CONTROL_PLANE_URL: "https://api.example.com",
			API_SECRET: "bench-api-secret",
			ENVIRONMENT: "production",
			NODES: answerAtOnce,
		} as unknown as Env;
		const now = Date.now();
		isolateRouteCache(configFrom(proxyEnv)).set(
			"bench",
			{ nodeIp: "10.0.0.1", learnedAt: now, expiresAt: now + 3_600_000 },
			now,
			now + 3_600_000,
		);
	}
	return proxyEnv;
}

const hotRequest = new Request("https://3000-bench.example.com/bench?q=1", {
	headers: { "cf-connecting-ip": "198.18.0.1", "cf-ray": "8f1e2d3c4b5a6978-AMS", "user-agent": "autocannon" },
});

const hotUrl = new URL(hotRequest.url);

/** The bench's pass-through Worker (bench/harness/workers.ts), sending through the same binding. */
function passThrough(request: Request): Promise<Response> {
	const url = new URL(request.url);
	const headers = new Headers(request.headers);
	headers.set("e2b-sandbox-id", "bench");
	headers.set("e2b-sandbox-port", "3000");
	return answerAtOnce.fetch(`http://10.0.0.1:5007${url.pathname}${url.search}`, {
		method: request.method,
		headers,
		body: request.body,
		redirect: "manual",
	});
}

/** A trace as a hot request leaves it: served from the isolate's cache, answered 200. */
function hotTrace(request: Request): RequestTrace {
	const trace = new RequestTrace(request);
	trace.sandboxId = "bench";
	trace.port = 3000;
	trace.routeSource = "isolate";
	trace.nodeMs = 0;
	trace.status = 200;
	return trace;
}

// A node's response has immutable headers; a redirect's are too, without a fetch.
const nodeLike = () => Response.redirect("https://3000-bench.example.com/next", 302);

const pieces: Record<string, (request: Request, env: PiecesEnv) => unknown> = {
	nothing: () => 0,
	"whole hot path: pass-through": () => passThrough(hotRequest),
	"whole hot path: proxy": (_request, env) => proxy.fetch(hotRequest, hotProxyEnv(env), context),
	"part of it: the URL parsed": () => new URL(hotRequest.url),
	"part of it: the host routed": (_request, env) =>
		routeHost(
			hotRequest.headers.get("host") ?? "3000-bench.example.com",
			hotRequest.headers,
			configFrom(hotProxyEnv(env)),
		),
	"part of it: the node's headers": () =>
		upstreamHeaders(hotRequest.headers, hotUrl, { sandboxId: "bench", port: 3000 }),
	"part of it: the pass-through's headers": () => {
		const headers = new Headers(hotRequest.headers);
		headers.set("e2b-sandbox-id", "bench");
		headers.set("e2b-sandbox-port", "3000");
		return headers;
	},
	trace: (request) => hotTrace(request),
	"log line, sampled at 0.01": (request) => logRequest(hotTrace(request), 0.01),
	"log line, every request": (request) => logRequest(hotTrace(request), 1),
	"metrics (a routine request writes no point)": (request, env) => recordMetrics(env, hotTrace(request)),
	"metrics, a point written (an error)": (request, env) => {
		const trace = hotTrace(request);
		trace.reason = "sandbox_not_found";
		recordMetrics(env, trace);
	},
	"Server-Timing off the hot path (SERVER_TIMING=cold)": (request) => withTiming(nodeLike(), hotTrace(request), "cold"),
	"Server-Timing on it (SERVER_TIMING=all)": (request) => withTiming(nodeLike(), hotTrace(request), "all"),
};

export default {
	async fetch(request: Request, env: PiecesEnv): Promise<Response> {
		const url = new URL(request.url);
		if (url.pathname === "/pieces") return Response.json(Object.keys(pieces));
		const piece = pieces[url.searchParams.get("piece") ?? ""];
		const n = Number(url.searchParams.get("n"));
		if (piece === undefined || !(n > 0)) return new Response("unknown piece", { status: 400 });
		let kept = 0;
		for (let i = 0; i < n; i++) {
			const result = piece(request, env);
			// The whole paths answer with a promise: each is awaited, as a request would be.
			if (result instanceof Promise) await result;
			if (result !== undefined) kept++;
		}
		return new Response(String(kept));
	},
};
