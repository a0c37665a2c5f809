import type { ServerTiming } from "../config.ts";
import type { RequestTrace } from "./request-trace.ts";

/**
 * The response with the request's phases (Server-Timing) and, when it woke
 * or waited for a wake, Sandbox-Edge-Wake. The edge's own responses take
 * them as they are; a node's has immutable headers and is rebuilt around its
 * body, which costs the hot path enough that a request served from the
 * isolate's cache is timed only with SERVER_TIMING=all. A WebSocket's 101 goes
 * untouched: it cannot be rebuilt.
 */
export function withTiming(response: Response, trace: RequestTrace, mode: ServerTiming): Response {
	const wake = trace.wakeHeader();
	const timed = mode === "all" || (mode === "cold" && (trace.routeSource !== "isolate" || trace.reason !== undefined));
	if (!timed && wake === undefined) return response;
	if (response.status === 101 || (response.webSocket ?? null) !== null) return response;
	// Appended: an app's own Server-Timing metrics stay.
	const decorate = (target: Headers) => {
		if (timed) target.append("server-timing", trace.serverTiming());
		if (wake !== undefined) target.set("sandbox-edge-wake", wake);
	};
	try {
		decorate(response.headers);
		return response;
	} catch {
		const rebuilt = new Response(response.body, response);
		decorate(rebuilt.headers);
		return rebuilt;
	}
}
