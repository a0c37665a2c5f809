import { evictDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { LookupResult } from "../../src/catalog/route.ts";
import { resumeResponse } from "./resume-wire.ts";
import { type GrpcCode, grpcCode } from "./upstream-model.ts";

// The sandbox's object decides, for the whole edge, when KeepAliveSandbox is
// called: these call it directly, as every isolate's reports would.

const keepAlivePath = "/proxy.SandboxService/KeepAliveSandbox";
const teamId = "0e2b0de7-7ea1-4c0d-8e5f-5a4db0c0de01";

let counter = 0;
function freshSandboxId(): string {
	counter += 1;
	return `katest${counter}${Date.now().toString(36)}`;
}

/** Answers KeepAliveSandbox calls with `code` (0: OK) and counts them; nothing else is faked. */
function spyKeepAlive(code: GrpcCode | 0 = 0): { calls: Headers[] } {
	const seen = { calls: [] as Headers[] };
	const realFetch = globalThis.fetch;
	vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
		const request = new Request(input, init);
		if (!new URL(request.url).pathname.endsWith(keepAlivePath)) return realFetch(input, init);
		seen.calls.push(new Headers(request.headers));
		// An empty message decodes as SandboxKeepAliveResponse; so does any other.
		return resumeResponse(code === 0 ? { kind: "ok", ip: "10.0.0.1" } : { kind: "status", code }, "grpc-web");
	});
	return seen;
}

async function pushRoute(sandboxId: string, trafficKeepalive: boolean, team: string | null = teamId) {
	await env.SANDBOX_ROUTE.getByName(sandboxId).write(sandboxId, [
		{
			op: "put",
			route: {
				nodeIp: "10.0.0.7",
				executionId: "exec-1",
				ttlSeconds: 3600,
				details: { trafficKeepalive, ...(team === null ? {} : { teamId: team }) },
			},
		},
	]);
}

const keepAlive = async (sandboxId: string) =>
	(await env.SANDBOX_ROUTE.getByName(sandboxId).keepAlive(sandboxId, { port: 3000 })).result;

afterEach(() => {
	vi.restoreAllMocks();
});

describe("SandboxRoute.keepAlive", () => {
	it("calls once per interval, however many reports arrive, even across an eviction", async () => {
		const upstream = spyKeepAlive();
		const sandboxId = freshSandboxId();
		await pushRoute(sandboxId, true);
		const results = await Promise.all([keepAlive(sandboxId), keepAlive(sandboxId), keepAlive(sandboxId)]);
		expect(results.sort()).toEqual(["sent", "skipped", "skipped"]);
		await evictDurableObject(env.SANDBOX_ROUTE.getByName(sandboxId));
		const report = await env.SANDBOX_ROUTE.getByName(sandboxId).keepAlive(sandboxId, { port: 3000 });
		// It says when it will call again: a reporting isolate waits until then, no longer.
		expect(report.result).toBe("skipped");
		expect(report.nextAt).toBeGreaterThan(Date.now());
		expect(report.nextAt).toBeLessThanOrEqual(Date.now() + 60_000);
		expect(upstream.calls).toHaveLength(1);
		expect(upstream.calls[0]?.get("x-e2b-client-proxy-auth")).toBe("unit-test-secret");
		expect(upstream.calls[0]?.get("e2b-sandbox-request-port")).toBe("3000");
	});

	it("tells the Worker which routes to report, and calls nothing for the others", async () => {
		const upstream = spyKeepAlive();
		const on = freshSandboxId();
		const off = freshSandboxId();
		const teamless = freshSandboxId();
		await pushRoute(on, true);
		await pushRoute(off, false);
		await pushRoute(teamless, true, null);
		const lookup = async (id: string) =>
			(await env.SANDBOX_ROUTE.getByName(id).lookup(id, { port: 3000 })) as LookupResult;
		expect(await lookup(on)).toMatchObject({ ok: true, route: { keepalive: true } });
		for (const id of [off, teamless]) {
			const result = await lookup(id);
			expect(result.ok && result.route.keepalive).toBeFalsy();
			expect(await keepAlive(id)).toBe("off");
		}
		expect(upstream.calls).toHaveLength(0);
	});

	it.each([
		["InvalidArgument", grpcCode.invalidArgument],
		["FailedPrecondition", grpcCode.failedPrecondition],
	])("turns keepalive off for the entry on %s, the entry's refusal", async (_, code) => {
		spyKeepAlive(code);
		const sandboxId = freshSandboxId();
		await pushRoute(sandboxId, true);
		expect(await keepAlive(sandboxId)).toBe("off");
		const stored = await env.SANDBOX_ROUTE.getByName(sandboxId).describe();
		expect(stored?.details.trafficKeepalive).toBe(false);
		// A new push with keepalive on turns it back on, and reports its traffic at once.
		await pushRoute(sandboxId, true);
		expect((await env.SANDBOX_ROUTE.getByName(sandboxId).describe())?.details.trafficKeepalive).toBe(true);
		expect(await keepAlive(sandboxId)).toBe("off");
	});

	it.each([
		["PermissionDenied", grpcCode.permissionDenied],
		["Unauthenticated", grpcCode.unauthenticated],
	])("after %s for one caller's credentials, keeps it on and leaves the interval to the owner's", async (_, code) => {
		// The control plane refuses every token but the owner's.
		const calls: (string | null)[] = [];
		const realFetch = globalThis.fetch;
		vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
			const request = new Request(input, init);
			if (!new URL(request.url).pathname.endsWith(keepAlivePath)) return realFetch(input, init);
			const token = request.headers.get("e2b-traffic-access-token");
			calls.push(token);
			return resumeResponse(token === "owner" ? { kind: "ok", ip: "10.0.0.1" } : { kind: "status", code }, "grpc-web");
		});
		const sandboxId = freshSandboxId();
		await pushRoute(sandboxId, true);
		const stub = env.SANDBOX_ROUTE.getByName(sandboxId);
		const as = async (token: string) =>
			(await stub.keepAlive(sandboxId, { port: 3000, trafficAccessToken: token })).result;
		expect(await as("guess")).toBe("refused");
		expect((await stub.describe())?.details.trafficKeepalive).toBe(true);
		// The same credentials are not tried again within the interval...
		expect(await as("guess")).toBe("refused");
		// ...and the owner's still have it.
		expect(await as("owner")).toBe("sent");
		expect(await as("guess")).toBe("skipped");
		expect(calls).toEqual(["guess", "owner"]);
	});

	it("keeps it on after any other failure, for the next interval", async () => {
		spyKeepAlive(grpcCode.unavailable);
		const sandboxId = freshSandboxId();
		await pushRoute(sandboxId, true);
		expect(await keepAlive(sandboxId)).toBe("failed");
		expect((await env.SANDBOX_ROUTE.getByName(sandboxId).describe())?.details.trafficKeepalive).toBe(true);
		expect(await keepAlive(sandboxId)).toBe("skipped");
	});
});
