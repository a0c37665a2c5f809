import { request } from "node:http";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiSecret, type E2eStack, freshId, sandboxHost, startE2eStack, startWorker } from "./fixture.ts";
import { fetchVia } from "./http-client.ts";
import { until } from "./until.ts";

let env: E2eStack;

beforeAll(async () => {
	env = await startE2eStack({ resumeDelayMs: 300, catalogWrites: false });
});
afterAll(async () => {
	await env?.close();
});

async function pausedSandbox(options: { public?: boolean; secure?: boolean } = {}): Promise<string> {
	const id = freshId();
	await env.admin.create({ id, ...options });
	await env.admin.pause(id);
	return id;
}

// In-process rather than through the admin API, which redacts the secret.
async function callsFor(sandboxId: string) {
	return env.stack.controlPlane.calls().filter((call) => call.sandboxId === sandboxId);
}

describe("auto-resume", () => {
	it("answers a cold request to a paused sandbox as if it had never slept", async () => {
		const id = await pausedSandbox();
		const response = await fetchVia(env.worker.url, sandboxHost(id), "/", { headers: { accept: "text/html" } });
		expect(response.status).toBe(200);
		expect(response.text).toContain(id);
		expect((await env.admin.get(id)).state).toBe("running");

		const calls = await callsFor(id);
		expect(calls).toHaveLength(1);
		expect(calls[0]?.protocol).toBe("grpc-web");
		expect(calls[0]?.headers["x-e2b-client-proxy-auth"]).toBe(apiSecret);
		expect(calls[0]?.headers["e2b-sandbox-request-port"]).toBe("3000");
		expect(env.worker.logText()).toContain('"event":"resume"');
	});

	it("wakes a paused sandbox with exactly one RPC for 100 concurrent requests, all of which succeed", async () => {
		const id = await pausedSandbox();
		const responses = await Promise.all(
			Array.from({ length: 100 }, (_, i) => fetchVia(env.worker.url, sandboxHost(id), `/headers?i=${i}`)),
		);
		expect(responses.map((r) => r.status)).toEqual(Array(100).fill(200));
		expect(await callsFor(id)).toHaveLength(1);
	});

	it("wakes a sandbox with one RPC for concurrent requests to different ports and credentials", async () => {
		const id = await pausedSandbox();
		const responses = await Promise.all([
			fetchVia(env.worker.url, sandboxHost(id, 3000), "/headers"),
			fetchVia(env.worker.url, sandboxHost(id, 8080), "/"),
			fetchVia(env.worker.url, sandboxHost(id, 49983), "/health", { headers: { "x-access-token": "t" } }),
		]);
		expect(responses.map((r) => r.status)).toEqual([200, 200, 204]);
		expect(await callsFor(id)).toHaveLength(1);
	});

	it("does not let a stranger's refused wake fail the owner's requests", async () => {
		const id = freshId();
		const owner = await env.admin.create({ id, public: false });
		await env.admin.pause(id);
		// Slow the control plane down so that the owner's request joins the stranger's call.
		await env.admin.setFault({ sandboxId: id, delayMs: 600 });
		try {
			const stranger = fetchVia(env.worker.url, sandboxHost(id), "/", {
				headers: { accept: "application/json", "e2b-traffic-access-token": "guess" },
			});
			// The owner's request goes out once the stranger's call is at the control plane.
			while ((await callsFor(id)).length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
			const ownerResponse = await fetchVia(env.worker.url, sandboxHost(id), "/", {
				headers: { "e2b-traffic-access-token": owner.trafficAccessToken ?? "" },
			});
			expect((await stranger).status).toBe(403);
			expect(ownerResponse.status).toBe(200);
			expect(await callsFor(id)).toHaveLength(2);
		} finally {
			await env.admin.clearFault();
		}
	});

	it("does not make requests for one sandbox wait on another's resume", async () => {
		const slow = await pausedSandbox();
		const fast = await pausedSandbox();
		await env.admin.setFault({ sandboxId: slow, delayMs: 3000 });
		try {
			const order: string[] = [];
			const slowDone = fetchVia(env.worker.url, sandboxHost(slow), "/").then((r) => {
				order.push("slow");
				return r;
			});
			// The slow resume starts first: its call is at the control plane.
			await until("the slow resume's call", async () => (await callsFor(slow)).length === 1);
			const fastResponse = await fetchVia(env.worker.url, sandboxHost(fast), "/");
			order.push("fast");
			expect(fastResponse.status).toBe(200);
			expect((await slowDone).status).toBe(200);
			expect(order).toEqual(["fast", "slow"]);
		} finally {
			await env.admin.clearFault();
		}
	});

	it("uses the stored route while the sandbox runs, and resumes again once it is paused", async () => {
		const id = await pausedSandbox();
		expect((await fetchVia(env.worker.url, sandboxHost(id), "/headers")).status).toBe(200);
		expect((await fetchVia(env.worker.url, sandboxHost(id), "/headers")).status).toBe(200);
		expect(await callsFor(id)).toHaveLength(1);

		await env.admin.pause(id);
		const woken = await fetchVia(env.worker.url, sandboxHost(id), "/headers");
		expect(woken.status).toBe(200);
		expect(await callsFor(id)).toHaveLength(2);
		expect(env.worker.logText()).toContain('"event":"stale_route"');
	});

	it("sends a small request body again after waking a sandbox paused behind a known route", async () => {
		const id = await pausedSandbox();
		expect((await fetchVia(env.worker.url, sandboxHost(id), "/headers")).status).toBe(200);
		await env.admin.pause(id);
		const response = await fetchVia(env.worker.url, sandboxHost(id), "/upload", { method: "POST", body: "abc" });
		expect(response.status).toBe(200);
		expect(response.json()).toMatchObject({ bytes: 3 });
		expect(await callsFor(id)).toHaveLength(2);
	});

	it("wakes the sandbox but asks for a resend when a streamed body met a stale route", async () => {
		const id = await pausedSandbox();
		expect((await fetchVia(env.worker.url, sandboxHost(id), "/headers")).status).toBe(200);
		await env.admin.pause(id);
		const streamed = () => Readable.from([Buffer.alloc(100_000, 1), Buffer.alloc(100_000, 2)]);
		const first = await fetchVia(env.worker.url, sandboxHost(id), "/upload", {
			method: "POST",
			body: streamed(),
			headers: { accept: "application/json" },
		});
		expect(first.status).toBe(503);
		expect(first.headers["retry-after"]).toBe("1");
		expect(first.json().reason).toBe("request_not_replayable");
		expect((await env.admin.get(id)).state).toBe("running");

		const again = await fetchVia(env.worker.url, sandboxHost(id), "/upload", { method: "POST", body: streamed() });
		expect(again.status).toBe(200);
		expect(again.json()).toMatchObject({ bytes: 200_000 });
	});

	it("keeps the route when a client abandons its own upload", async () => {
		const id = await pausedSandbox();
		expect((await fetchVia(env.worker.url, sandboxHost(id), "/headers")).status).toBe(200);
		const upload = request({
			host: env.worker.url.hostname,
			port: env.worker.url.port,
			method: "POST",
			path: "/upload",
			headers: { host: sandboxHost(id) },
		});
		upload.on("error", () => {});
		upload.write(Buffer.alloc(200_000));
		// The client gives up once the upload has reached the sandbox's node.
		await until("the upload at the node", () =>
			env.stack.node.requests().some((r) => r.headers["e2b-sandbox-id"] === id && r.url.startsWith("/upload")),
		);
		upload.destroy();
		await new Promise((resolve) => setTimeout(resolve, 300));

		expect((await fetchVia(env.worker.url, sandboxHost(id), "/headers")).status).toBe(200);
		expect(await callsFor(id)).toHaveLength(1);
	});

	it("routes to other ports of the sandbox", async () => {
		const id = await pausedSandbox();
		const response = await fetchVia(env.worker.url, sandboxHost(id, 8080), "/anything");
		expect(response.status).toBe(200);
		expect(response.json()).toMatchObject({ sandboxId: id, port: 8080 });
	});

	it("passes the caller's access tokens to the control plane, which checks them", async () => {
		const id = freshId();
		const created = await env.admin.create({ id, public: false, secure: true });
		await env.admin.pause(id);
		const denied = await fetchVia(env.worker.url, sandboxHost(id), "/", { headers: { accept: "application/json" } });
		expect(denied.status).toBe(403);
		expect(denied.json().message).toBe(
			"This sandbox can't be resumed with the credentials provided. Check your access token and try again.",
		);
		expect((await env.admin.get(id)).state).toBe("paused");

		const allowed = await fetchVia(env.worker.url, sandboxHost(id), "/", {
			headers: {
				"e2b-traffic-access-token": created.trafficAccessToken ?? "",
				"x-access-token": created.envdAccessToken ?? "",
			},
		});
		expect(allowed.status).toBe(200);
		const calls = await callsFor(id);
		expect(calls.at(-1)?.headers["e2b-traffic-access-token"]).toBe(created.trafficAccessToken);
		expect(calls.at(-1)?.headers["e2b-envd-access-token"]).toBe(created.envdAccessToken);
	});

	it("gives 403 when the Worker's API_SECRET is wrong", async () => {
		const wrong = await startWorker(env.vars, "not-the-secret");
		try {
			const id = await pausedSandbox();
			const response = await fetchVia(wrong.url, sandboxHost(id), "/", { headers: { accept: "application/json" } });
			expect(response.status).toBe(403);
			expect(response.json()).toMatchObject({ sandboxId: id, code: 403, reason: "resume_forbidden" });
			expect((await env.admin.get(id)).state).toBe("paused");
		} finally {
			await wrong.close();
		}
	});

	it("speaks Connect as well as gRPC-web", async () => {
		const connect = await startWorker({ ...env.vars, CONTROL_PLANE_PROTOCOL: "connect" });
		try {
			const id = await pausedSandbox();
			expect((await fetchVia(connect.url, sandboxHost(id), "/")).status).toBe(200);
			const calls = await callsFor(id);
			expect(calls).toHaveLength(1);
			expect(calls[0]?.protocol).toBe("connect");
		} finally {
			await connect.close();
		}
	});

	it("never lets the API secret reach a response, a log line or a node", async () => {
		const id = await pausedSandbox();
		const response = await fetchVia(env.worker.url, sandboxHost(id), "/headers", {
			headers: { "X-E2B-Client-Proxy-Auth": "spoofed-by-client" },
		});
		expect(response.status).toBe(200);
		const seenBySandbox = response.json<Record<string, string>>();
		expect(seenBySandbox["x-e2b-client-proxy-auth"]).toBeUndefined();
		expect(response.text).not.toContain(apiSecret);
		for (const request of env.stack.node.requests()) {
			expect(request.headers["x-e2b-client-proxy-auth"]).toBeUndefined();
			expect(JSON.stringify(request.headers)).not.toContain(apiSecret);
		}
		expect(env.worker.logText()).not.toContain(apiSecret);
	});
});
