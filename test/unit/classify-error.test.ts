import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { classifyResumeError } from "../../src/control-plane/classify-error.ts";
import { isNodeIp } from "../../src/control-plane/node-ip.ts";
import { resumeHeaders } from "../../src/control-plane/sandbox-service.ts";

function classify(code: Code, message = "") {
	return classifyResumeError(new ConnectError(message, code));
}

describe("classifyResumeError", () => {
	it.each([
		[Code.NotFound, "sandbox not found", "sandbox_not_found"],
		[Code.InvalidArgument, "invalid sandbox id", "sandbox_not_found"],
		[Code.FailedPrecondition, "sandbox is not paused", "sandbox_not_found"],
		[Code.FailedPrecondition, "", "sandbox_not_found"],
		[Code.FailedPrecondition, "sandbox is still transitioning", "sandbox_transitioning"],
		[Code.FailedPrecondition, "Sandbox Is Still Transitioning (pausing)", "sandbox_transitioning"],
		[Code.PermissionDenied, "forbidden", "resume_forbidden"],
		[Code.Unauthenticated, "missing token", "resume_forbidden"],
		[Code.DeadlineExceeded, "the operation timed out", "resume_timeout"],
		[Code.Unavailable, "upstream connect error", "control_plane_unavailable"],
		[Code.Unknown, "HTTP 500", "control_plane_unavailable"],
		[Code.Internal, "protocol error", "control_plane_unavailable"],
		[Code.Unimplemented, "HTTP 404", "control_plane_unavailable"],
		[Code.Canceled, "aborted", "control_plane_unavailable"],
	] as const)("maps code %i %j to %s", (code, message, expected) => {
		expect(classify(code, message)).toEqual({ code: expected });
	});

	it("does not pass on the control plane's text for non-rate-limit errors", () => {
		for (const code of [Code.NotFound, Code.PermissionDenied, Code.Unavailable, Code.Internal]) {
			expect(classify(code, "internal detail: db at 10.0.0.5").message).toBeUndefined();
		}
	});

	it.each([
		["a plain TypeError", new TypeError("connection refused")],
		["a plain Error", new Error("Network connection lost.")],
		["a string", "boom"],
		["undefined", undefined],
	])("maps %s to control_plane_unavailable", (_label, error) => {
		expect(classifyResumeError(error)).toEqual({ code: "control_plane_unavailable" });
	});

	describe("ResourceExhausted", () => {
		it("carries the control plane's message", () => {
			expect(classify(Code.ResourceExhausted, "too many resumes, retry in 10s")).toEqual({
				code: "resume_rate_limited",
				message: "too many resumes, retry in 10s",
			});
		});

		it("falls back to the registry's message when the control plane gives none", () => {
			expect(classify(Code.ResourceExhausted, "")).toEqual({ code: "resume_rate_limited" });
			expect(classify(Code.ResourceExhausted, " \n\t ")).toEqual({ code: "resume_rate_limited" });
		});

		it("removes control and non-ASCII characters", () => {
			const result = classify(Code.ResourceExhausted, "slow\r\ndown\x00now\x1b[31m\u2028!");
			expect(result.code).toBe("resume_rate_limited");
			expect(result.message).toBeDefined();
			expect(result.message).toMatch(/^[\x20-\x7e]+$/);
			expect(result.message).toContain("slow");
			expect(result.message).toContain("down");
			expect(result.message).toContain("now");
		});

		it("truncates long text", () => {
			const result = classify(Code.ResourceExhausted, `${"x".repeat(150)}${"y".repeat(1000)}`);
			const message = result.message ?? "";
			expect(message.startsWith("x".repeat(150))).toBe(true);
			expect(message.length).toBeLessThanOrEqual(201);
			expect(message.length).toBeGreaterThan(100);
		});
	});
});

describe("isNodeIp", () => {
	it.each([
		"10.0.0.1",
		"192.168.1.254",
		"0.0.0.0",
		"255.255.255.255",
		"127.0.0.1",
		"::1",
		"fd00::1",
		"2001:db8::8a2e:370:7334",
		"2001:DB8::1",
		"::ffff:10.0.0.1",
	])("accepts %j", (ip) => {
		expect(isNodeIp(ip)).toBe(true);
	});

	it.each([
		"",
		"evil.com",
		"localhost",
		"1.2.3.4:80",
		"1.2.3.4/x",
		"user@1.2.3.4",
		"256.1.1.1",
		"1.2.3",
		"1.2.3.4.5",
		"01.2.3.4",
		" 1.2.3.4",
		"1.2.3.4\n",
		"::1]:80@x",
		"[::1]",
		":::",
		"1:2:3:4:5:6:7:8:9",
		"fe80::1%eth0",
		"::g",
	])("refuses %j", (ip) => {
		expect(isNodeIp(ip)).toBe(false);
	});
});

describe("resumeHeaders", () => {
	const secretAuth = { "x-e2b-client-proxy-auth": "s3cret" };

	it("carries the API secret and the requested port", () => {
		const headers = resumeHeaders(secretAuth, { port: 3000 });
		expect([...headers]).toEqual([
			["e2b-sandbox-request-port", "3000"],
			["x-e2b-client-proxy-auth", "s3cret"],
		]);
	});

	it("carries the traffic and envd tokens only when present", () => {
		const both = resumeHeaders(secretAuth, { port: 49983, trafficAccessToken: "tat", envdAccessToken: "eat" });
		expect(both.get("e2b-traffic-access-token")).toBe("tat");
		expect(both.get("e2b-envd-access-token")).toBe("eat");
		expect(both.get("x-e2b-client-proxy-auth")).toBe("s3cret");
		expect(both.get("e2b-sandbox-request-port")).toBe("49983");

		const trafficOnly = resumeHeaders(secretAuth, { port: 80, trafficAccessToken: "tat" });
		expect(trafficOnly.get("e2b-traffic-access-token")).toBe("tat");
		expect(trafficOnly.has("e2b-envd-access-token")).toBe(false);

		const envdOnly = resumeHeaders(secretAuth, { port: 80, envdAccessToken: "eat" });
		expect(envdOnly.has("e2b-traffic-access-token")).toBe(false);
		expect(envdOnly.get("e2b-envd-access-token")).toBe("eat");
	});

	it("carries an OAuth2 token as E2B's verifier reads it, and no shared secret", () => {
		const headers = resumeHeaders({ authorization: "Bearer t0k" }, { port: 3000 });
		expect(headers.get("authorization")).toBe("Bearer t0k");
		expect(headers.has("x-e2b-client-proxy-auth")).toBe(false);
	});
});
