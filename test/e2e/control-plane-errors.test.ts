import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Fault } from "../../dev/model.ts";
import {
	apiSecret,
	type E2eStack,
	freshId,
	type RunningWorker,
	sandboxHost,
	startE2eStack,
	startWorker,
} from "./fixture.ts";
import { fetchVia } from "./http-client.ts";

const notFound = "The sandbox was not found";
const forbidden = "This sandbox can't be resumed with the credentials provided. Check your access token and try again.";
const unavailable = "The sandbox service is temporarily unavailable";

// Each row of the contract's table, produced by a control plane made to answer that way.
const table: { name: string; fault: Fault; status: number; message: string; retryAfter?: boolean }[] = [
	{ name: "OK with an empty IP", fault: { code: "ok-empty-ip" }, status: 502, message: notFound },
	{ name: "NotFound", fault: { code: "NotFound", message: "sandbox not found" }, status: 502, message: notFound },
	{ name: "InvalidArgument", fault: { code: "InvalidArgument", message: "bad id" }, status: 502, message: notFound },
	{
		name: "FailedPrecondition (other)",
		fault: { code: "FailedPrecondition", message: "sandbox is paused and auto-resume is disabled" },
		status: 502,
		message: notFound,
	},
	{ name: "PermissionDenied", fault: { code: "PermissionDenied", message: "no" }, status: 403, message: forbidden },
	{ name: "Unauthenticated", fault: { code: "Unauthenticated", message: "no" }, status: 403, message: forbidden },
	{
		name: "FailedPrecondition transitioning",
		fault: { code: "FailedPrecondition", message: "sandbox is still transitioning" },
		status: 409,
		message: "The sandbox is still transitioning. Try again in a moment.",
		retryAfter: true,
	},
	{
		name: "ResourceExhausted",
		fault: { code: "ResourceExhausted", message: "team concurrency limit of 20 sandboxes reached" },
		status: 429,
		message: "team concurrency limit of 20 sandboxes reached",
		retryAfter: true,
	},
	{
		name: "Unavailable",
		fault: { code: "Unavailable", message: "x" },
		status: 503,
		message: unavailable,
		retryAfter: true,
	},
	{ name: "Internal", fault: { code: "Internal", message: "x" }, status: 503, message: unavailable, retryAfter: true },
	{ name: "HTTP 500", fault: { httpStatus: 500 }, status: 503, message: unavailable, retryAfter: true },
	{
		name: "HTTP 502 from a load balancer",
		fault: { httpStatus: 502 },
		status: 503,
		message: unavailable,
		retryAfter: true,
	},
	{ name: "a garbage message", fault: { garbage: true }, status: 503, message: unavailable, retryAfter: true },
	{
		name: "an unframed garbage body",
		fault: { garbage: "unframed" },
		status: 503,
		message: unavailable,
		retryAfter: true,
	},
	{
		name: "a frame cut short",
		fault: { garbage: "truncated" },
		status: 503,
		message: unavailable,
		retryAfter: true,
	},
	{
		name: "HTTP 200 with an HTML page",
		fault: { httpStatus: 200 },
		status: 503,
		message: unavailable,
		retryAfter: true,
	},
	{
		name: "no answer within RESUME_TIMEOUT_MS",
		fault: { hang: true },
		status: 504,
		message: "Timed out waiting for the sandbox to resume",
		retryAfter: true,
	},
];

const resumeTimeoutMs = 1500;
// Every test here wakes sandboxes from the one loopback client.
const manyResumes = { perClient: 10_000 };
const noFailureMemory = { NOT_FOUND_CACHE_MS: "0", REFUSAL_CACHE_MS: "0", RESUME_BACKOFF_MAX_MS: "0" };
let env: E2eStack;
let connectWorker: RunningWorker;

beforeAll(async () => {
	// These tests are of how each answer maps to a status, and that a failure
	// stores no route: the failure memory (tested in abuse.test.ts) is off.
	env = await startE2eStack({
		workerVars: { RESUME_TIMEOUT_MS: String(resumeTimeoutMs), ...noFailureMemory },
		limits: manyResumes,
	});
	connectWorker = await startWorker({ ...env.vars, CONTROL_PLANE_PROTOCOL: "connect" }, apiSecret, manyResumes);
});
afterAll(async () => {
	await connectWorker?.close();
	await env?.close();
});

describe.each(["grpc-web", "connect"])("control-plane outcomes over %s", (protocol) => {
	const worker = () => (protocol === "connect" ? connectWorker : env.worker);

	it.each(table)("$name gives $status", async ({ fault, status, message, retryAfter }) => {
		const id = freshId();
		await env.admin.create({ id });
		await env.admin.pause(id);
		await env.admin.setFault({ ...fault, sandboxId: id });
		const started = Date.now();
		const response = await fetchVia(worker().url, sandboxHost(id), "/", { headers: { accept: "application/json" } });
		// Whatever the control plane does, the answer comes by the resume
		// deadline (one that hangs would hold it for ever); the margin is for a
		// loaded machine.
		expect(Date.now() - started).toBeLessThan(resumeTimeoutMs + 10_000);
		expect(response.status).toBe(status);
		expect(response.json()).toMatchObject({ sandboxId: id, message, code: status });
		expect(response.headers["retry-after"] !== undefined).toBe(retryAfter === true);

		// A failed resume is not stored as a route: once the control plane
		// answers properly, the next request resumes the sandbox.
		await env.admin.clearFault();
		const retried = await fetchVia(worker().url, sandboxHost(id), "/");
		expect(retried.status).toBe(200);
		const calls = (await env.admin.calls()).filter((call) => call.sandboxId === id);
		expect(calls).toHaveLength(2);
		expect(calls.every((call) => call.protocol === protocol)).toBe(true);
	});
});

describe("control-plane states", () => {
	it("gives 409 for a sandbox that is still pausing", async () => {
		const id = freshId();
		await env.admin.create({ id, state: "pausing" });
		const response = await fetchVia(env.worker.url, sandboxHost(id), "/", { headers: { accept: "application/json" } });
		expect(response.status).toBe(409);
		expect(response.json().reason).toBe("sandbox_transitioning");
	});

	it("gives 502 for a killed sandbox and for one that never existed", async () => {
		const killed = freshId();
		await env.admin.create({ id: killed });
		await env.admin.kill(killed);
		for (const id of [killed, freshId("never")]) {
			const response = await fetchVia(env.worker.url, sandboxHost(id), "/", {
				headers: { accept: "application/json" },
			});
			expect(response.status).toBe(502);
			expect(response.json()).toMatchObject({ sandboxId: id, message: notFound, reason: "sandbox_not_found" });
		}
	});
});

describe("an unreachable control plane", () => {
	let refusing: RunningWorker;
	let closedPort: number;

	beforeAll(async () => {
		// A port that was just free: connections to it are refused.
		const server: Server = createServer();
		await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
		closedPort = (server.address() as AddressInfo).port;
		await new Promise((resolve) => server.close(resolve));
		refusing = await startWorker({ ...env.vars, CONTROL_PLANE_URL: `http://127.0.0.1:${closedPort}` });
	});
	afterAll(async () => {
		await refusing?.close();
	});

	it("gives 503 with Retry-After as JSON to an API client", async () => {
		const response = await fetchVia(refusing.url, sandboxHost(freshId()), "/", {
			headers: { "user-agent": "e2b-js-sdk/2.0" },
		});
		expect(response.status).toBe(503);
		expect(response.headers["content-type"]).toContain("application/json");
		expect(response.headers["retry-after"]).toBe("5");
		expect(response.json().message).toBe(unavailable);
	});

	it("gives the same error as an HTML page to a browser", async () => {
		const id = freshId();
		const response = await fetchVia(refusing.url, sandboxHost(id), "/", {
			headers: {
				"user-agent":
					"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Safari/537.36",
				accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
				"sec-fetch-mode": "navigate",
			},
		});
		expect(response.status).toBe(503);
		expect(response.headers["content-type"]).toContain("text/html");
		expect(response.text).toContain(unavailable);
		expect(response.text).toContain(id);
	});
});

describe("a control plane that answers OK with something that is not an IP", () => {
	it.each(["evil.example.com", "127.0.0.1:80@evil.example.com", "127.0.0.1/admin"])(
		"refuses %s as a node address with 503",
		async (orchestratorIp) => {
			const lying = await startE2eStack({ orchestratorIp });
			try {
				const id = freshId();
				await lying.admin.create({ id });
				// Paused, so that the route comes from the resume's answer; the
				// catalog API already refused the same address when it was pushed.
				await lying.admin.pause(id);
				const response = await fetchVia(lying.worker.url, sandboxHost(id), "/", {
					headers: { accept: "application/json" },
				});
				expect(response.status).toBe(503);
				expect(response.json()).toMatchObject({ sandboxId: id, reason: "control_plane_bad_answer" });
				expect(lying.stack.node.requests()).toHaveLength(0);
			} finally {
				await lying.close();
			}
		},
	);
});

describe("a control plane that answers an error with a huge body", () => {
	it.each(["grpc-web", "connect"])(
		"is read no further than a bound over %s: a 503, and the rest is never taken",
		async (protocol) => {
			let written = 0;
			let finished = false;
			const flooding: Server = createServer((_req, res) => {
				res.writeHead(500, { "content-type": "application/json" });
				const chunk = Buffer.alloc(64 * 1024, 0x20);
				// 64 MiB, written as fast as the reader takes it.
				const pump = () => {
					while (written < 64 << 20) {
						written += chunk.byteLength;
						if (!res.write(chunk)) return void res.once("drain", pump);
					}
					finished = true;
					res.end();
				};
				res.on("close", () => res.removeAllListeners("drain"));
				pump();
			});
			await new Promise<void>((resolve) => flooding.listen(0, "127.0.0.1", resolve));
			const port = (flooding.address() as AddressInfo).port;
			const worker = await startWorker(
				{ ...env.vars, CONTROL_PLANE_URL: `http://127.0.0.1:${port}`, CONTROL_PLANE_PROTOCOL: protocol },
				apiSecret,
			);
			try {
				const response = await fetchVia(worker.url, sandboxHost(freshId()), "/", {
					headers: { accept: "application/json" },
				});
				expect(response.status).toBe(503);
				expect(response.json()).toMatchObject({ reason: "control_plane_unavailable" });
				expect(finished).toBe(false);
				// What was taken: the bound (64 KiB) plus what the sockets' buffers hold.
				expect(written).toBeLessThan(16 << 20);
			} finally {
				await worker.close();
				flooding.closeAllConnections();
				await new Promise((resolve) => flooding.close(resolve));
			}
		},
	);
});
