import type { RequestTrace } from "./request-trace.ts";

/** What a data point counts; `blob1` in Analytics Engine. */
export type MetricKind = "resume" | "wake_joined" | "negative_cache_hit" | "rate_limited" | "error";

/**
 * Writes the request's data point to Workers Analytics Engine, when the
 * METRICS binding is configured; without it, nothing happens. Only requests
 * that matter to an operator are written: wakes (resumed or joined),
 * failures remembered by a cache, rate limiting and errors. A request served
 * from a cached route writes nothing, so the hot path costs no data point.
 *
 * Layout (see docs/operations.md, "Telemetry"): blob1 kind, blob2 reason, blob3 route
 * source, blob4 port; double1 resume RPC ms, double2 wait ms, double3
 * status, double4 whole request ms; index1 sandbox ID.
 */
export function recordMetrics(env: object, trace: RequestTrace): void {
	const dataset = (env as { METRICS?: AnalyticsEngineDataset }).METRICS;
	if (dataset === undefined) return;
	const kind = kindOf(trace);
	if (kind === undefined) return;
	try {
		dataset.writeDataPoint({
			blobs: [kind, trace.reason ?? "", trace.routeSource ?? "", trace.port === undefined ? "" : String(trace.port)],
			doubles: [trace.resumeMs ?? 0, trace.waitMs ?? 0, trace.status, trace.durationMs],
			indexes: [trace.sandboxId ?? ""],
		});
	} catch {
		// Metrics are best effort: a failing dataset never fails a request.
	}
}

export function kindOf(trace: RequestTrace): MetricKind | undefined {
	if (trace.reason === "resume_rate_limited") return "rate_limited";
	if (trace.negativeHit !== undefined) return "negative_cache_hit";
	if (trace.reason !== undefined) return "error";
	if (trace.wake === "resumed") return "resume";
	if (trace.wake === "joined") return "wake_joined";
	return undefined;
}
