import { logEvent } from "../log.ts";
import type { RequestTrace } from "./request-trace.ts";

/**
 * Writes the request's `request` line: always for a request that did
 * something worth knowing (a wake or a wait for one, a lookup past the
 * isolate's cache, an error, a not-here, a rate limit), and for a routine
 * one at `sampleRate`. A line is one Workers Logs event: one per routine
 * request would bill the operator for what Cloudflare's own Workers metrics
 * already count, and cost the hot path a tenth of its CPU (BENCHMARKS.md,
 * "Issue 18"). A sampled line says its rate, so that totals can be read back
 * (docs/operations.md, "Telemetry").
 */
export function logRequest(trace: RequestTrace, sampleRate: number): void {
	if (!trace.routine) {
		logEvent("request", trace.logFields());
		return;
	}
	// Drawn per request, not every Nth: a client that cycles through N
	// sandboxes would otherwise have only one of them ever logged.
	if (sampleRate === 0 || (sampleRate < 1 && Math.random() >= sampleRate)) return;
	logEvent("request", trace.logFields(sampleRate < 1 ? sampleRate : undefined));
}
