import { afterEach, describe, expect, it, vi } from "vitest";
import { logRequest } from "../../src/telemetry/request-log.ts";
import { RequestTrace } from "../../src/telemetry/request-trace.ts";

// Which requests get a `request` line, and what a sampled line says: the
// totals an operator reads back depend on it (docs/operations.md, "Telemetry").

function trace(fields: Partial<RequestTrace>): RequestTrace {
	const t = new RequestTrace(
		new Request("http://3000-abc.localhost/", { headers: { "cf-ray": "8f1e2d3c4b5a6978-AMS" } }),
	);
	Object.assign(t, { sandboxId: "abc", port: 3000, status: 200, routeSource: "isolate", ...fields });
	return t;
}

function linesOf(run: () => void): Record<string, unknown>[] {
	const log = vi.spyOn(console, "log").mockImplementation(() => {});
	try {
		run();
		return log.mock.calls.map((call) => JSON.parse(String(call[0])) as Record<string, unknown>);
	} finally {
		log.mockRestore();
	}
}

afterEach(() => {
	vi.restoreAllMocks();
});

describe("logRequest", () => {
	// Each of these did something worth knowing: never sampled away.
	it.each<[string, Partial<RequestTrace>]>([
		["a wake", { routeSource: "resume", wake: "resumed" }],
		["a wait for a wake", { routeSource: "push", wake: "joined" }],
		["a lookup in the location's cache", { routeSource: "location" }],
		["a lookup in the object", { routeSource: "object" }],
		["an error of the edge", { routeSource: undefined, status: 502, reason: "sandbox_not_found" }],
		[
			"a failure remembered",
			{ routeSource: undefined, status: 502, reason: "sandbox_not_found", negativeHit: "isolate" },
		],
		["a not-here after which the request failed", { status: 502, reason: "sandbox_not_found" }],
		["a rate limit", { routeSource: undefined, status: 429, reason: "resume_rate_limited" }],
		["the waiting page", { routeSource: undefined, page: "waiting" }],
		["a node's or an app's 5xx", { status: 503 }],
	])("always logs %s, without a sample rate", (_label, fields) => {
		const lines = linesOf(() => logRequest(trace(fields), 0));
		expect(lines).toHaveLength(1);
		expect(lines[0]).toMatchObject({ event: "request", requestId: "8f1e2d3c4b5a6978-AMS", sandboxId: "abc" });
		expect(lines[0]).not.toHaveProperty("sampleRate");
	});

	it("logs no routine request at rate 0, and every one, unmarked, at rate 1", () => {
		expect(linesOf(() => logRequest(trace({}), 0))).toEqual([]);
		expect(linesOf(() => logRequest(trace({ status: 404 }), 0))).toEqual([]);
		const all = linesOf(() => logRequest(trace({}), 1));
		expect(all).toHaveLength(1);
		expect(all[0]).not.toHaveProperty("sampleRate");
	});

	it("keeps routine requests at the rate, each kept line saying the rate it stands for", () => {
		const lines = linesOf(() => {
			for (let i = 0; i < 20_000; i++) logRequest(trace({}), 0.1);
		});
		// Binomial(20,000, 0.1): 2,000 ± 42; five deviations either way.
		expect(lines.length).toBeGreaterThan(1_790);
		expect(lines.length).toBeLessThan(2_210);
		expect(new Set(lines.map((line) => line.sampleRate))).toEqual(new Set([0.1]));
		const estimated = lines.reduce((total, line) => total + 1 / Number(line.sampleRate), 0);
		expect(Math.abs(estimated - 20_000)).toBeLessThan(2_100);
	});

	it("draws each request: a client cycling through sandboxes has each of them logged", () => {
		const seen = new Set<unknown>();
		const lines = linesOf(() => {
			for (let i = 0; i < 4_000; i++) logRequest(trace({ sandboxId: `s${i % 4}` }), 0.25);
		});
		for (const line of lines) seen.add(line.sandboxId);
		expect(seen).toEqual(new Set(["s0", "s1", "s2", "s3"]));
	});

	it("reads no request ID for a line it does not write", () => {
		const routine = trace({});
		const read = vi.spyOn(crypto, "randomUUID");
		const headers = vi.spyOn(Headers.prototype, "get");
		linesOf(() => logRequest(routine, 0));
		expect(read).not.toHaveBeenCalled();
		expect(headers).not.toHaveBeenCalled();
	});
});
