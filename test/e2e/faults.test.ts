import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
	apiSecret,
	catalogSecret,
	type E2eStack,
	freshId,
	type RunningWorker,
	sandboxHost,
	startE2eStack,
	startWorker,
} from "./fixture.ts";
import { fetchVia, type Received, send } from "./http-client.ts";
import { until } from "./until.ts";

// Faults over real sockets, counted: ResumeSandbox calls as the control
// plane received them, and requests as the node or the app received them.

let env: E2eStack;

beforeAll(async () => {
	env = await startE2eStack({ resumeDelayMs: 300, catalogWrites: false, limits: { perClient: 10_000 } });
});
afterAll(async () => {
	await env?.close();
});

const json = { accept: "application/json" };

function callsFor(sandboxId: string) {
	return env.stack.controlPlane.calls().filter((call) => call.sandboxId === sandboxId);
}

async function pausedSandbox(options: { portOpenDelayMs?: number } = {}): Promise<string> {
	const id = freshId();
	await env.admin.create({ id, ...options });
	await env.admin.pause(id);
	return id;
}

function sleep(ms: number): Promise<void> {
	return new Promise((resolve) => setTimeout(resolve, ms));
}

describe("a request cancelled while others wait on its resume", () => {
	// The first request's client gives up once its resume is at the control
	// plane, which holds the call this long: the cancel lands while it goes on.
	const heldMs = 2000;

	it("does not cancel the resume: the others get the sandbox, with one RPC", async () => {
		const id = await pausedSandbox();
		await env.admin.setFault({ sandboxId: id, delayMs: heldMs, times: 1 });
		try {
			// The first request starts the resume, and its client gives up while it runs.
			const first = openRequest(env.worker, sandboxHost(id));
			await until("the resume to reach the control plane", () => callsFor(id).length === 1);
			const others = Promise.all(
				Array.from({ length: 10 }, (_, i) => fetchVia(env.worker.url, sandboxHost(id), `/headers?i=${i}`)),
			);
			first.cancel();
			expect(callsFor(id)[0]?.finishedAt).toBeUndefined();
			expect((await others).map((response) => response.status)).toEqual(Array(10).fill(200));
			expect(callsFor(id)).toHaveLength(1);
		} finally {
			await env.admin.clearFault();
		}
	});

	it("finishes the resume of a request that is alone and cancelled, so the next request needs no RPC", async () => {
		const id = await pausedSandbox();
		await env.admin.setFault({ sandboxId: id, delayMs: heldMs, times: 1 });
		try {
			const alone = openRequest(env.worker, sandboxHost(id));
			await until("the resume to reach the control plane", () => callsFor(id).length === 1);
			alone.cancel();
			expect(callsFor(id)[0]?.finishedAt).toBeUndefined();
			// The resume goes on without its requester.
			await until("the resume to be answered", () => callsFor(id)[0]?.finishedAt !== undefined);
			expect(callsFor(id)).toHaveLength(1);
			expect((await env.admin.get(id)).state).toBe("running");
			const response = await fetchVia(env.worker.url, sandboxHost(id), "/headers");
			expect(response.status).toBe(200);
			expect(callsFor(id)).toHaveLength(1);
		} finally {
			await env.admin.clearFault();
		}
	});
});

/** Sends a request whose client gives up (destroys its socket) when told to. */
function openRequest(worker: RunningWorker, host: string): { cancel(): void } {
	const req = request({
		host: worker.url.hostname,
		port: worker.url.port,
		path: "/",
		headers: { host },
		agent: false,
	});
	req.on("error", () => {});
	req.on("response", (res) => res.resume());
	req.end();
	return { cancel: () => req.destroy() };
}

// The control plane stamps calls with its own clock (performance.now()),
// workerd with Date.now(): they may differ by a few milliseconds.
const clockSkewMs = 20;

/**
 * Each try came after a backoff from the one before: jittered, each wait is
 * between half and all of 1 s, 2 s, 4 s... So counted by the time between
 * tries, the bound holds however long the requests went on.
 */
function expectBackoffsBetween(times: readonly number[]): void {
	for (let i = 1; i < times.length; i++) {
		expect((times[i] ?? 0) - (times[i - 1] ?? 0), `wait before try ${i + 1}`).toBeGreaterThanOrEqual(
			500 * 2 ** (i - 1) - clockSkewMs,
		);
	}
}

describe("a control plane that fails", () => {
	it("is not asked again by every request while it is down: it backs off, and says when to try again", async () => {
		const id = await pausedSandbox();
		await env.admin.setFault({ sandboxId: id, code: "Unavailable", message: "down" });
		try {
			// Requests one after another, until the control plane has been asked
			// again after the first backoff, and more than 10 were answered;
			// counted, since a loaded machine makes fewer in a given time.
			const responses: Received[] = [];
			await until(
				"a try after the first backoff, and more than 10 answers",
				async () => {
					responses.push(await fetchVia(env.worker.url, sandboxHost(id), "/", { headers: json }));
					return callsFor(id).length >= 2 && responses.length > 10;
				},
				30_000,
			);
			expect(new Set(responses.map((response) => response.status))).toEqual(new Set([503]));
			for (const response of responses) expect(Number(response.headers["retry-after"])).toBeGreaterThanOrEqual(1);
			// The first try, then one after each backoff: 0.5-1 s, then 1-2 s.
			expect(callsFor(id).length).toBeLessThan(responses.length);
			expectBackoffsBetween(callsFor(id).map((call) => call.at));
		} finally {
			await env.admin.clearFault();
		}
	});

	it("that is flapping is asked again after each backoff, each longer than the last, until it answers", async () => {
		const id = await pausedSandbox();
		await env.admin.setFault({ sandboxId: id, code: "Unavailable", message: "flap", times: 3 });
		let response = await fetchVia(env.worker.url, sandboxHost(id), "/", { headers: json });
		// Backoffs of at most 1 + 2 + 4 s; the margin is for a loaded machine.
		const deadline = Date.now() + 40_000;
		while (response.status === 503 && Date.now() < deadline) {
			await sleep(Number(response.headers["retry-after"] ?? 1) * 1000);
			response = await fetchVia(env.worker.url, sandboxHost(id), "/", { headers: json });
		}
		expect(response.status).toBe(200);
		const calls = callsFor(id);
		expect(calls).toHaveLength(4);
		const gaps = calls.slice(1).map((call, i) => call.at - (calls[i]?.at ?? 0));
		// Jittered: each wait is between half and all of 1 s, 2 s, 4 s.
		expect(gaps[0]).toBeGreaterThanOrEqual(500);
		expect(gaps[1]).toBeGreaterThanOrEqual(1000);
		expect(gaps[2]).toBeGreaterThanOrEqual(2000);
	});

	it("that is slow past the deadline gives a 504, and the requests after it a 503, with no new RPC until the backoff ends", async () => {
		const quick = await startWorker({ ...env.vars, RESUME_TIMEOUT_MS: "400" }, apiSecret, { perClient: 10_000 });
		try {
			const id = await pausedSandbox();
			await env.admin.setFault({ sandboxId: id, hang: true });
			const started = Date.now();
			const first = await fetchVia(quick.url, sandboxHost(id), "/", { headers: json });
			expect(first.status).toBe(504);
			// By the deadline, not by the control plane (which never answers); the margin is for a loaded machine.
			expect(Date.now() - started).toBeLessThan(400 + 10_000);
			// The next request comes within the backoff (0.5-1 s), unless a loaded
			// machine held it back past it: then it is rightly asked again, times
			// out too, and the backoff doubles. Until one lands within a backoff.
			const answers = [first];
			let second = first;
			while (second.status === 504) {
				expect(answers.length, "requests before one came within a backoff").toBeLessThan(6);
				second = await fetchVia(quick.url, sandboxHost(id), "/", { headers: json });
				answers.push(second);
			}
			expect(second.status).toBe(503);
			expect(second.json()).toMatchObject({ reason: "control_plane_unavailable" });
			expect(Number(second.headers["retry-after"])).toBeGreaterThanOrEqual(1);
			// An RPC for each timeout, none for the request within the backoff.
			expect(callsFor(id)).toHaveLength(answers.filter((answer) => answer.status === 504).length);
		} finally {
			await env.admin.clearFault();
			await quick.close();
		}
	});

	it("that refuses connections gives a 503 with Retry-After, and is not hammered", async () => {
		const closed = createServer();
		await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
		const port = (closed.address() as AddressInfo).port;
		const connections: number[] = [];
		closed.on("connection", (socket: Socket) => {
			connections.push(Date.now());
			socket.destroy();
		});
		const refusing = await startWorker({ ...env.vars, CONTROL_PLANE_URL: `http://127.0.0.1:${port}` }, apiSecret, {
			perClient: 10_000,
		});
		try {
			const id = freshId();
			const responses = [];
			for (let i = 0; i < 20; i++)
				responses.push(await fetchVia(refusing.url, sandboxHost(id), "/", { headers: json }));
			expect(new Set(responses.map((response) => response.status))).toEqual(new Set([503]));
			expect(connections.length).toBeGreaterThanOrEqual(1);
			// One try, and perhaps more, each after a backoff.
			expectBackoffsBetween(connections);
		} finally {
			await refusing.close();
			await new Promise((resolve) => closed.close(resolve));
		}
	});
});

describe("a node that fails mid-response", () => {
	let fakeNode: Server;
	let deliveries: string[] = [];
	let worker: RunningWorker;

	beforeAll(async () => {
		fakeNode = createServer((req: IncomingMessage, res: ServerResponse) => {
			deliveries.push(`${req.method} ${req.url}`);
			if (req.url === "/drop-after-headers") {
				res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(1 << 20) });
				res.write(Buffer.alloc(64 * 1024, 1));
				setTimeout(() => res.destroy(), 50);
				return;
			}
			if (req.url === "/drop-before-headers") {
				req.socket.destroy();
				return;
			}
			res.writeHead(200, { "content-type": "text/plain" });
			res.end("ok");
		});
		await new Promise<void>((resolve) => fakeNode.listen(0, "127.0.0.1", resolve));
		const port = (fakeNode.address() as AddressInfo).port;
		worker = await startWorker({ ...env.vars, NODE_ORIGIN_TEMPLATE: `http://{ip}:${port}` });
	});
	afterAll(async () => {
		await worker?.close();
		await new Promise((resolve) => fakeNode?.close(resolve));
	});

	async function pushRoute(id: string): Promise<void> {
		const body = JSON.stringify({ orchestrator_ip: "127.0.0.1", execution_id: `exec-${id}`, ttl_seconds: 600 });
		const response = await fetchVia(worker.url, "edge.localhost", `/v1/sandboxes/${id}`, {
			method: "PUT",
			headers: { authorization: `Bearer ${catalogSecret}`, "content-type": "application/json" },
			body,
		});
		expect(response.status).toBe(204);
	}

	it.each(["GET", "POST"])(
		"cuts the client's %s off too, once, without sending it again, and keeps the route",
		async (method) => {
			const id = freshId("drop");
			await pushRoute(id);
			deliveries = [];
			const response = await send(worker.url, sandboxHost(id), "/drop-after-headers", {
				method,
				...(method === "POST" ? { body: "x" } : {}),
			});
			expect(response.statusCode).toBe(200);
			let received = 0;
			const ended = await new Promise<string>((resolve) => {
				response.on("data", (chunk: Buffer) => {
					received += chunk.byteLength;
				});
				response.on("end", () => resolve("end"));
				response.on("error", () => resolve("error"));
				response.on("aborted", () => resolve("aborted"));
				response.on("close", () => resolve("close"));
			});
			// The body stops short of its length: the client can tell it is cut.
			expect(received).toBeLessThan(1 << 20);
			expect(ended).not.toBe("end");
			expect(deliveries).toEqual([`${method} /drop-after-headers`]);
			// The node answered, so its route stands.
			const next = await fetchVia(worker.url, sandboxHost(id), "/fine");
			expect(next.text).toBe("ok");
			expect(callsFor(id)).toHaveLength(0);
		},
	);

	it("answers a connection dropped before any response with a 502, sent once", async () => {
		const id = freshId("drop");
		await pushRoute(id);
		deliveries = [];
		const response = await fetchVia(worker.url, sandboxHost(id), "/drop-before-headers", {
			method: "POST",
			body: "once",
			headers: json,
		});
		expect(response.status).toBe(502);
		expect(response.json()).toMatchObject({ reason: "node_unreachable", sandboxId: id });
		expect(deliveries).toEqual(["POST /drop-before-headers"]);
	});
});

describe("a port that opens after the wake", () => {
	// The demo app's ports listen this long after each start or resume; until
	// then the node answers E2B's port-closed 502.
	const portOpenDelayMs = 700;

	it("is retried for a request the wake was for, which then reaches the app once", async () => {
		const id = await pausedSandbox({ portOpenDelayMs });
		const key = freshId("key");
		const response = await fetchVia(env.worker.url, sandboxHost(id), `/deliveries?key=${key}`, {
			method: "POST",
			body: "once",
			headers: json,
		});
		expect(response.status).toBe(200);
		expect(response.json()).toMatchObject({ key, deliveries: 1 });
		expect(callsFor(id)).toHaveLength(1);
		expect(env.worker.logText()).toContain(`"event":"port_retry","sandboxId":"${id}"`);
	});

	it("is retried for a browser, whose answer is E2B's HTML page", async () => {
		const id = await pausedSandbox({ portOpenDelayMs });
		const response = await fetchVia(env.worker.url, sandboxHost(id), "/", {
			headers: {
				accept: "text/html",
				"sec-fetch-mode": "navigate",
				"user-agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0 Safari/537.36",
			},
		});
		expect(response.status).toBe(200);
		expect(response.text).toContain(id);
	});

	it("goes to the client as the node's answer outside the window", async () => {
		const noWindow = await startWorker({ ...env.vars, PORT_RETRY_WINDOW_MS: "0" });
		try {
			const id = await pausedSandbox({ portOpenDelayMs: 5000 });
			const response = await fetchVia(noWindow.url, sandboxHost(id), "/", { headers: json });
			expect(response.status).toBe(502);
			expect(response.json()).toEqual({
				sandboxId: id,
				message: "The sandbox is running but port is not open",
				port: 3000,
				code: 502,
			});
		} finally {
			await noWindow.close();
		}
	});

	it("is not retried for a streamed body, which can go only once", async () => {
		const id = await pausedSandbox({ portOpenDelayMs: 5000 });
		const big = Buffer.alloc(256 * 1024, 7);
		const response = await fetchVia(env.worker.url, sandboxHost(id), "/upload", {
			method: "POST",
			body: big,
			headers: json,
		});
		expect(response.status).toBe(502);
		expect(response.json()).toMatchObject({ message: "The sandbox is running but port is not open" });
	});

	it("gives up after PORT_RETRY_ATTEMPTS and passes the node's answer on", async () => {
		const id = await pausedSandbox({ portOpenDelayMs: 10_000 });
		const started = Date.now();
		const response = await fetchVia(env.worker.url, sandboxHost(id), "/", { headers: json });
		expect(response.status).toBe(502);
		expect(response.json()).toMatchObject({ message: "The sandbox is running but port is not open", port: 3000 });
		// 5 retries after 0.1, 0.2, 0.4, 0.8 and 1 s.
		expect(Date.now() - started).toBeGreaterThanOrEqual(2500);
		const retries = env.worker
			.logText()
			.split("\n")
			.filter((line) => line.includes(`"event":"port_retry","sandboxId":"${id}"`));
		expect(retries).toHaveLength(5);
	});
});

describe("a node that is down", () => {
	it("costs at most two RPCs for 20 sequential requests, however long it stays down", async () => {
		const downed = await startWorker({ ...env.vars, NODE_ORIGIN_TEMPLATE: "http://{ip}:9" }, apiSecret, {
			perClient: 10_000,
		});
		try {
			const id = await pausedSandbox();
			const responses = [];
			for (let i = 0; i < 20; i++) responses.push(await fetchVia(downed.url, sandboxHost(id), "/", { headers: json }));
			expect(new Set(responses.map((response) => response.status))).toEqual(new Set([502]));
			expect(responses[19]?.json()).toMatchObject({ reason: "node_unreachable" });
			// The wake; then the control plane, asked once more, names the same node, which is believed for a while.
			expect(callsFor(id).length).toBeLessThanOrEqual(2);
		} finally {
			await downed.close();
		}
	});
});
