// What each piece of the hot path's telemetry costs, run in workerd: one
// request runs a piece `n` times over, so that the runtime's cost of a
// request is paid once and the piece's n times (bench/telemetry-pieces.ts).
import { recordMetrics } from "../../src/telemetry/metrics.ts";
import { logRequest } from "../../src/telemetry/request-log.ts";
import { RequestTrace } from "../../src/telemetry/request-trace.ts";
import { withTiming } from "../../src/telemetry/timing-headers.ts";

interface PiecesEnv {
	METRICS?: AnalyticsEngineDataset;
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
		for (let i = 0; i < n; i++) if (piece(request, env) !== undefined) kept++;
		return new Response(String(kept));
	},
};
