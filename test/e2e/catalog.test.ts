import { request } from "node:http";
import { connect } from "node:net";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
	catalogSecret,
	type E2eStack,
	edgeUrl,
	freshId,
	type RunningWorker,
	sandboxHost,
	startE2eStack,
	startWorker,
} from "./fixture.ts";
import { fetchVia } from "./http-client.ts";
import { until } from "./until.ts";

const json = { accept: "application/json" };
const browser = {
	accept: "text/html,application/xhtml+xml",
	"user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0",
	"sec-fetch-mode": "navigate",
};

let env: E2eStack;
// A Worker the control plane does not write to, with its own catalog. A
// catalog write drops the route from the cache of the isolate it lands on,
// and other isolates keep theirs for up to ROUTE_CACHE_TTL_MS. In this
// Worker both its cache and its catalog object still hold the route after a
// pause or a kill, so, as in those isolates, only the node's answer can tell
// it that the route is stale.
let other: RunningWorker;

beforeAll(async () => {
	env = await startE2eStack();
	other = await startWorker({ ...env.vars, ROUTE_CACHE_TTL_MS: "60000" });
});
afterAll(async () => {
	await other?.close();
	await env?.close();
});

function callsFor(sandboxId: string) {
	return env.stack.controlPlane.calls().filter((call) => call.sandboxId === sandboxId);
}

function logLines(event: string, sandboxId: string, worker = env.worker): string[] {
	return worker
		.logText()
		.split("\n")
		.filter((line) => line.includes(`"event":"${event}"`) && line.includes(`"sandboxId":"${sandboxId}"`));
}

/** The catalog API's answer for a sandbox: its stored route, or null. */
async function catalogEntry(sandboxId: string, worker = env.worker): Promise<Record<string, unknown> | null> {
	const response = await fetchVia(worker.url, edgeHost(worker), `/v1/sandboxes/${sandboxId}`, {
		headers: { authorization: `Bearer ${catalogSecret}` },
	});
	if (response.status === 404) return null;
	expect(response.status).toBe(200);
	return response.json();
}

function edgeHost(worker = env.worker): string {
	return new URL(edgeUrl(worker)).host;
}

async function putRoute(sandboxId: string, body: Record<string, unknown>, worker = env.worker): Promise<number> {
	const response = await fetchVia(worker.url, edgeHost(worker), `/v1/sandboxes/${sandboxId}`, {
		method: "PUT",
		headers: { authorization: `Bearer ${catalogSecret}`, "content-type": "application/json" },
		body: JSON.stringify(body),
	});
	return response.status;
}

/** A running sandbox whose route the Worker has used, so that its isolate has it cached. */
async function servedSandbox(): Promise<string> {
	const id = freshId();
	await env.admin.create({ id });
	expect((await fetchVia(env.worker.url, sandboxHost(id), "/headers")).status).toBe(200);
	return id;
}

/** A running sandbox whose route `other` was given and has cached, as an isolate the next write will not reach. */
async function cachedElsewhere(): Promise<string> {
	const id = freshId();
	const created = await env.admin.create({ id });
	const route = { orchestrator_ip: "127.0.0.1", execution_id: created.executionId, ttl_seconds: 3600 };
	expect(await putRoute(id, route, other)).toBe(204);
	expect((await fetchVia(other.url, sandboxHost(id), "/headers")).status).toBe(200);
	return id;
}

interface UploadOutcome {
	status?: number;
	body?: string;
	error?: string;
	sent: number;
}

/** Streams `bytes` as fast as the connection takes them, as a raw client does, and reads whatever answer comes. */
function rawUpload(worker: RunningWorker, id: string, bytes: number, withLength: boolean): Promise<UploadOutcome> {
	return new Promise((resolve) => {
		let sent = 0;
		const req = request({
			host: worker.url.hostname,
			port: worker.url.port,
			method: "POST",
			path: "/upload",
			headers: { host: sandboxHost(id), ...json, ...(withLength ? { "content-length": String(bytes) } : {}) },
			agent: false,
		});
		req.on("response", (res) => {
			let body = "";
			res.on("data", (chunk) => {
				body += chunk;
			});
			res.on("end", () => resolve({ status: res.statusCode ?? 0, body, sent }));
		});
		req.on("error", (error: NodeJS.ErrnoException) => resolve({ error: error.code ?? error.message, sent }));
		const chunk = Buffer.alloc(64 * 1024, 7);
		const write = () => {
			while (sent < bytes) {
				sent += chunk.byteLength;
				if (!req.write(chunk)) return void req.once("drain", write);
			}
			req.end();
		};
		write();
	});
}

function pause(ms: number): Promise<void> {
	return new Promise((resolve) => setTimeout(resolve, ms));
}

describe("routes the control plane pushes", () => {
	it("reaches a created sandbox with zero ResumeSandbox calls", async () => {
		const id = freshId();
		const created = await env.admin.create({ id });
		const response = await fetchVia(env.worker.url, sandboxHost(id), "/", { headers: { accept: "text/html" } });
		expect(response.status).toBe(200);
		expect(response.text).toContain(id);
		expect(callsFor(id)).toHaveLength(0);
		expect(await catalogEntry(id)).toMatchObject({
			sandbox_id: id,
			orchestrator_ip: "127.0.0.1",
			execution_id: created.executionId,
			source: "push",
			sandbox_max_length_in_hours: 1,
		});
	});

	it("resumes a paused sandbox with one RPC while an isolate still holds its route", async () => {
		const id = await cachedElsewhere();
		await env.admin.pause(id);
		// The pause deleted the route, but not from this isolate's cache: the
		// node's answer (E2B's JSON, no header) is what tells the Worker.
		const response = await fetchVia(other.url, sandboxHost(id), "/headers", { headers: json });
		expect(response.status).toBe(200);
		expect(callsFor(id)).toHaveLength(1);
		expect(logLines("stale_route", id, other)).toHaveLength(1);
	});

	it("keeps the route that the control plane pushes during a resume", async () => {
		const id = freshId();
		await env.admin.create({ id });
		await env.admin.pause(id);
		expect((await fetchVia(env.worker.url, sandboxHost(id), "/headers")).status).toBe(200);
		expect(callsFor(id)).toHaveLength(1);
		// The push landed while the RPC was in flight and was kept: the route names the new execution.
		const resumed = await env.admin.get(id);
		expect(await catalogEntry(id)).toMatchObject({ source: "push", execution_id: resumed.executionId });
	});

	it("resumes a paused sandbox with one RPC where the delete has dropped the route", async () => {
		const id = await servedSandbox();
		await env.admin.pause(id);
		expect(await catalogEntry(id)).toBeNull();
		const response = await fetchVia(env.worker.url, sandboxHost(id), "/headers", { headers: json });
		expect(response.status).toBe(200);
		expect(callsFor(id)).toHaveLength(1);
		// Straight to the resume: no node was asked about a route the catalog no longer had.
		expect(logLines("stale_route", id)).toHaveLength(0);
	});

	it("answers 502 for a killed sandbox, cached or not", async () => {
		const id = await cachedElsewhere();
		await env.admin.kill(id);
		// Where the route is still held, the node's answer sends the Worker to the
		// control plane, which cannot resume a killed sandbox.
		const cached = await fetchVia(other.url, sandboxHost(id), "/", { headers: json });
		expect(cached.status).toBe(502);
		expect(cached.json()).toMatchObject({
			sandboxId: id,
			message: "The sandbox was not found",
			reason: "sandbox_not_found",
		});
		expect(logLines("stale_route", id, other)).toHaveLength(1);
		// Where the kill's delete landed, there is no route to try.
		const uncached = await fetchVia(env.worker.url, sandboxHost(id), "/", { headers: json });
		expect(uncached.status).toBe(502);
		expect(uncached.json()).toMatchObject({ reason: "sandbox_not_found" });
		expect(logLines("stale_route", id)).toHaveLength(0);
	});

	it("keeps a newer execution's route when a late delete names an older one", async () => {
		const id = freshId();
		const first = await env.admin.create({ id });
		await env.admin.pause(id);
		const second = await env.admin.resume(id);
		expect(second.executionId).not.toBe(first.executionId);
		const late = await fetchVia(env.worker.url, edgeHost(), `/v1/sandboxes/${id}?execution_id=${first.executionId}`, {
			method: "DELETE",
			headers: { authorization: `Bearer ${catalogSecret}` },
		});
		expect(late.status).toBe(204);
		expect(await catalogEntry(id)).toMatchObject({ execution_id: second.executionId });
		expect((await fetchVia(env.worker.url, sandboxHost(id), "/headers")).status).toBe(200);
		expect(callsFor(id)).toHaveLength(0);
	});

	it("stops using a pushed route after its ttl_seconds", async () => {
		const id = freshId();
		await env.admin.create({ id });
		// Two seconds: still there when read right after, even on a loaded machine.
		expect(await putRoute(id, { orchestrator_ip: "127.0.0.1", execution_id: "short-lived", ttl_seconds: 2 })).toBe(204);
		expect(await catalogEntry(id)).toMatchObject({ execution_id: "short-lived" });
		await until("the route to lapse", async () => (await catalogEntry(id)) === null);
		// With no route, the Worker asks the control plane, which (as E2B's) cannot resume a never-paused sandbox.
		const response = await fetchVia(env.worker.url, sandboxHost(id), "/", { headers: json });
		expect(response.status).toBe(502);
		expect(callsFor(id)).toHaveLength(1);
	});
});

describe("the node's 'not here', as E2B's nodes give it", () => {
	it.each([
		["JSON", json, "application/json"],
		["an HTML page", browser, "text/html"],
	])("is recognised as %s, with no header, and the sandbox is resumed", async (_label, headers, type) => {
		const id = await cachedElsewhere();
		await env.admin.pause(id);
		// What the node says, asked directly as the Worker will ask it.
		const node = new URL(`http://127.0.0.1:${env.stack.nodePort}`);
		const direct = await fetchVia(node, node.host, "/", {
			headers: { ...headers, "e2b-sandbox-id": id, "e2b-sandbox-port": "3000" },
		});
		expect(direct.status).toBe(502);
		expect(direct.headers["content-type"]).toContain(type);
		expect(direct.headers["x-e2b-sandbox-not-found"]).toBeUndefined();

		const response = await fetchVia(other.url, sandboxHost(id), "/", { headers });
		expect(response.status).toBe(200);
		expect(response.text).toContain(id);
		expect(callsFor(id)).toHaveLength(1);
		expect(logLines("stale_route", id, other)).toHaveLength(1);
	});

	it("passes a sandbox app's own 502 to the client untouched, and resumes nothing", async () => {
		const id = await servedSandbox();
		const cases = [
			{ path: "/status/502", body: '{"status":502}' },
			// E2B's words, but for another sandbox.
			{
				path: `/status/502?body=${encodeURIComponent('{"sandboxId":"other","message":"The sandbox was not found","code":502}')}`,
				body: '{"sandboxId":"other","message":"The sandbox was not found","code":502}',
			},
			{ path: "/status/502?type=text/html&body=%3Ch1%3EBad%20gateway%3C%2Fh1%3E", body: "<h1>Bad gateway</h1>" },
		];
		for (const { path, body } of cases) {
			const response = await fetchVia(env.worker.url, sandboxHost(id), path, { headers: json });
			expect(response.status).toBe(502);
			expect(response.text).toBe(body);
		}
		// Longer than what the Worker reads of a 502, and streamed without a length.
		const long = await fetchVia(env.worker.url, sandboxHost(id), "/status/502?pad=20000", { headers: json });
		expect(long.status).toBe(502);
		expect(long.body.byteLength).toBe('{"status":502}'.length + 20000);
		expect(callsFor(id)).toHaveLength(0);
		expect(logLines("stale_route", id)).toHaveLength(0);
	});

	it("ignores a not-here header that the sandbox app forges: the node strips it", async () => {
		const id = await servedSandbox();
		const response = await fetchVia(
			env.worker.url,
			sandboxHost(id),
			"/status/502?header=X-E2b-Sandbox-Not-Found:1&header=x-app:kept",
			{ headers: json },
		);
		expect(response.status).toBe(502);
		expect(response.headers["x-e2b-sandbox-not-found"]).toBeUndefined();
		expect(response.headers["x-app"]).toBe("kept");
		expect(callsFor(id)).toHaveLength(0);
		expect(logLines("stale_route", id)).toHaveLength(0);
	});
});

describe("requests that meet a paused sandbox", () => {
	it("delivers a POST interrupted by a pause exactly once", async () => {
		const id = await servedSandbox();
		const key = freshId("post");
		const post = fetchVia(env.worker.url, sandboxHost(id), `/deliveries?key=${key}&ms=5000`, {
			method: "POST",
			body: "small, buffered body",
			headers: json,
		});
		// Pause once the sandbox has the request, while it is still answering.
		const sandboxPort = (await env.admin.get(id)).localPorts?.["3000"];
		for (;;) {
			const seen = await fetch(`http://127.0.0.1:${sandboxPort}/deliveries?key=${key}`).then((r) => r.json());
			if ((seen as { deliveries: number }).deliveries === 1) break;
			await pause(20);
		}
		await env.admin.pause(id);
		const interrupted = await post;
		// The node had dialed the sandbox: its answer is "port closed", never "not here".
		expect(interrupted.status).toBe(502);
		expect(interrupted.json()).toMatchObject({ sandboxId: id, message: "The sandbox is running but port is not open" });
		expect(callsFor(id)).toHaveLength(0);

		const count = await fetchVia(env.worker.url, sandboxHost(id), `/deliveries?key=${key}`, { headers: json });
		expect(count.status).toBe(200);
		expect(count.json()).toMatchObject({ deliveries: 1 });
		expect(callsFor(id)).toHaveLength(1);
	});

	it.each([
		["10 MiB with a Content-Length", 10, true, 3],
		["10 MiB chunked", 10, false, 3],
		// Past the part of a body the Worker pumps itself: the node's refusal still comes first.
		["64 MiB with a Content-Length", 64, true, 1],
	])("answers a %s upload on a stale route with a real 503, every time", async (_label, mib, withLength, rounds) => {
		for (let round = 0; round < rounds; round++) {
			const id = await cachedElsewhere();
			await env.admin.pause(id);
			const outcome = await rawUpload(other, id, mib * 1024 * 1024, withLength);
			expect(outcome.error).toBeUndefined();
			expect(outcome.status).toBe(503);
			expect(JSON.parse(outcome.body ?? "")).toMatchObject({ sandboxId: id, reason: "request_not_replayable" });
			// The client sent it all, and then read the answer.
			expect(outcome.sent).toBe(mib * 1024 * 1024);
			// Woken while the body drained, so that the client's retry finds it awake.
			expect((await env.admin.get(id)).state).toBe("running");
			expect(callsFor(id)).toHaveLength(1);
		}
	});

	it("recognises the node's answer to HEAD, and resumes the sandbox", async () => {
		const id = await cachedElsewhere();
		await env.admin.pause(id);
		const response = await fetchVia(other.url, sandboxHost(id), "/", { method: "HEAD", headers: json });
		expect(response.status).toBe(200);
		expect(callsFor(id)).toHaveLength(1);
	});

	it("answers a streamed upload whose sandbox cannot be found with a whole 502, never a reset", async () => {
		const id = freshId("nosuch");
		const outcome = await rawUpload(env.worker, id, 10 * 1024 * 1024, true);
		expect(outcome.error).toBeUndefined();
		expect(outcome.status).toBe(502);
		expect(JSON.parse(outcome.body ?? "")).toMatchObject({ sandboxId: id, reason: "sandbox_not_found" });
		expect(outcome.sent).toBe(10 * 1024 * 1024);
	});

	it("stops using the route to a node that cannot be reached, even when only streamed uploads go to it", async () => {
		// A sandbox that can be resumed (it has paused before), running on the
		// live node, while the catalog was pointed at a dead one (nothing
		// listens on 127.0.0.2), as if it had moved.
		const id = freshId();
		await env.admin.create({ id });
		await env.admin.pause(id);
		await env.admin.resume(id);
		expect(await putRoute(id, { orchestrator_ip: "127.0.0.2", execution_id: "moved", ttl_seconds: 3600 })).toBe(204);
		const upload = await fetchVia(env.worker.url, sandboxHost(id), "/upload", {
			method: "POST",
			body: Readable.from([Buffer.alloc(256 * 1024, 1), Buffer.alloc(256 * 1024, 2)]),
			headers: json,
		});
		expect(upload.status).toBe(502);
		expect(upload.json()).toMatchObject({ reason: "node_unreachable" });
		// The next request asks the control plane where the sandbox is, and gets there.
		const next = await fetchVia(env.worker.url, sandboxHost(id), "/upload", {
			method: "POST",
			body: Readable.from([Buffer.alloc(256 * 1024, 3)]),
			headers: json,
		});
		expect(next.status).toBe(200);
		expect(next.json()).toMatchObject({ bytes: 256 * 1024 });
		expect(callsFor(id)).toHaveLength(1);
		expect(await catalogEntry(id)).toMatchObject({ orchestrator_ip: "127.0.0.1", source: "resume" });
	});

	it.each([
		["drops the connection", "destroy"],
		["stops sending short of its Content-Length", "half-close"],
	] as const)("keeps the route when the client %s mid-upload", async (_label, how) => {
		const id = await servedSandbox();
		const before = await catalogEntry(id);
		const seenByNode = () => env.stack.node.requests().filter((r) => r.headers["e2b-sandbox-id"] === id).length;
		const socket = connect(Number(env.worker.url.port), env.worker.url.hostname);
		socket.on("error", () => {});
		const closed = new Promise((resolve) => socket.once("close", resolve));
		socket.write(`POST /upload HTTP/1.1\r\nHost: ${sandboxHost(id)}\r\nContent-Length: 1048576\r\n\r\n`);
		socket.write(Buffer.alloc(300_000));
		// Once the upload has reached the sandbox, the client gives up on it.
		await until("the upload at the node", () => seenByNode() >= 2);
		expect(seenByNode()).toBe(2);
		if (how === "destroy") socket.destroy();
		else socket.end();
		// A half-closed client still reads; one that dropped the connection does not.
		const answered = new Promise((resolve) => socket.once("data", resolve));
		await Promise.race([closed, answered]);
		socket.destroy();
		await pause(200);
		expect(await catalogEntry(id)).toEqual(before);
		expect((await fetchVia(env.worker.url, sandboxHost(id), "/headers")).status).toBe(200);
		expect(callsFor(id)).toHaveLength(0);
	});
});

describe("a node that passes sandboxes' headers through, as E2B's does", () => {
	let e2bLike: E2eStack;
	beforeAll(async () => {
		e2bLike = await startE2eStack({ nodeStripsNotHereHeader: false });
	});
	afterAll(async () => {
		await e2bLike?.close();
	});

	it("takes a not-here header that the app forges for the app's own answer: nothing is doubted or resumed", async () => {
		const id = freshId();
		await e2bLike.admin.create({ id });
		const calls = () => e2bLike.stack.controlPlane.calls().filter((call) => call.sandboxId === id);
		for (let i = 0; i < 3; i++) {
			const forged = await fetchVia(
				e2bLike.worker.url,
				sandboxHost(id),
				"/status/502?header=X-E2b-Sandbox-Not-Found:1&body=app",
				{ headers: json },
			);
			expect(forged.status).toBe(502);
			expect(forged.text).toBe("app");
			expect(forged.headers["x-e2b-sandbox-not-found"]).toBe("1");
		}
		expect(calls()).toHaveLength(0);
		expect(e2bLike.worker.logText()).not.toMatch(new RegExp(`"stale_route"[^\\n]*${id}`));
		expect((await fetchVia(e2bLike.worker.url, sandboxHost(id), "/headers", { headers: json })).status).toBe(200);
	});
});

describe("a route pushed while requests wait on a resume", () => {
	it("wakes them at once, without waiting for the resume's answer", async () => {
		const id = freshId();
		await env.admin.create({ id });
		await env.admin.pause(id);
		// The RPC waits 3 s before it even looks at the sandbox.
		await env.admin.setFault({ sandboxId: id, delayMs: 3000 });
		try {
			const requests = Promise.all(
				Array.from({ length: 10 }, (_, i) => fetchVia(env.worker.url, sandboxHost(id), `/headers?i=${i}`)),
			);
			// Once the requests' resume is at the control plane, someone else
			// resumes it; the control plane pushes its route.
			await until("the resume's call", () => callsFor(id).length === 1);
			await env.admin.resume(id);
			const responses = await requests;
			expect(responses.map((response) => response.status)).toEqual(Array(10).fill(200));
			// Answered by the push: the resume's own call is still held.
			expect(callsFor(id)[0]?.finishedAt).toBeUndefined();
			expect(callsFor(id)).toHaveLength(1);
		} finally {
			await env.admin.clearFault();
		}
	});
});
