import { describe, expect, it } from "vitest";
import { recordMetrics } from "../../src/telemetry/metrics.ts";
import { RequestTrace } from "../../src/telemetry/request-trace.ts";

// Analytics Engine's binding, recorded: what reaches it is the contract an
// operator's queries depend on (docs/operations.md, "Telemetry").
function dataset() {
	const points: AnalyticsEngineDataPoint[] = [];
	return {
		points,
		env: { METRICS: { writeDataPoint: (point?: AnalyticsEngineDataPoint) => points.push(point ?? {}) } },
	};
}

function trace(fields: Partial<RequestTrace>): RequestTrace {
	const t = new RequestTrace(new Request("http://3000-abc.localhost/"));
	Object.assign(t, { sandboxId: "abc", port: 3000, status: 200, ...fields });
	return t;
}

describe("recordMetrics", () => {
	it("writes nothing for a request served from a cached route", () => {
		const { points, env } = dataset();
		recordMetrics(env, trace({ routeSource: "isolate" }));
		recordMetrics(env, trace({ routeSource: "location" }));
		expect(points).toEqual([]);
	});

	it("writes a resume with its latency, and a joined wake with its wait", () => {
		const { points, env } = dataset();
		recordMetrics(env, trace({ routeSource: "resume", wake: "resumed", resumeMs: 812, waitMs: 830 }));
		recordMetrics(env, trace({ routeSource: "resume", wake: "joined", resumeMs: 812, waitMs: 640 }));
		expect(points.map((p) => p.blobs?.[0])).toEqual(["resume", "wake_joined"]);
		expect(points[0]).toMatchObject({ blobs: ["resume", "", "resume", "3000"], indexes: ["abc"] });
		expect(points[0]?.doubles?.slice(0, 3)).toEqual([812, 830, 200]);
		expect(points[1]?.doubles?.[1]).toBe(640);
	});

	it("writes errors by reason, negative-cache hits and rate limiting", () => {
		const { points, env } = dataset();
		recordMetrics(env, trace({ status: 503, reason: "control_plane_unavailable" }));
		recordMetrics(env, trace({ status: 502, reason: "sandbox_not_found", negativeHit: "isolate" }));
		recordMetrics(env, trace({ status: 429, reason: "resume_rate_limited" }));
		expect(points.map((p) => [p.blobs?.[0], p.blobs?.[1]])).toEqual([
			["error", "control_plane_unavailable"],
			["negative_cache_hit", "sandbox_not_found"],
			["rate_limited", "resume_rate_limited"],
		]);
	});

	it("does nothing without the binding, and never fails the request when the dataset does", () => {
		expect(() => recordMetrics({}, trace({ wake: "resumed" }))).not.toThrow();
		const failing = {
			METRICS: {
				writeDataPoint: () => {
					throw new Error("dataset down");
				},
			},
		};
		expect(() => recordMetrics(failing, trace({ wake: "resumed" }))).not.toThrow();
	});
});
