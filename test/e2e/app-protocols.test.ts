// A sandbox's own RPC app, reached through the edge: Connect (JSON and
// binary) and gRPC-web, the RPC protocols that a Worker can carry, since
// they are plain HTTP request and response bodies (gRPC-web carries its
// trailers in the body). Native gRPC needs HTTP/2 trailers and is not
// served here.
//
// The app (rpc-app.ts) is envd's Filesystem service with fake handlers, on a
// loopback port. A dev node of this file's own maps one sandbox's port 50051
// to it, the Worker is pointed at that node, and the sandbox's route is
// pushed to the Worker's catalog API, as the control plane would push it.
// The clients are connect-node's, speaking HTTP/1.1 to the Worker's port
// with the sandbox's host, 50051-<id>.localhost.

import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveLocalhost } from "../../bridge/edge-client.ts";
import { type DevNode, startNode } from "../../dev/node.ts";
import type { SandboxDirectory } from "../../dev/registry.ts";
import { Filesystem, FileType, StatRequestSchema } from "../../src/gen/envd/filesystem/filesystem_pb.ts";
import { catalogSecret, type E2eStack, edgeUrl, freshId, startE2eStack } from "./fixture.ts";
import { fetchVia } from "./http-client.ts";
import {
	EVENTS_BEFORE_FAILURE,
	fakeSize,
	MISSING_PREFIX,
	notFoundMessage,
	type RpcApp,
	startRpcApp,
	TRAILER_NAME,
	trailerValue,
	WATCH_EVENTS,
} from "./rpc-app.ts";

const APP_PORT = 50051;
// Each call's own deadline: a stream held back by the edge fails in this
// time instead of hanging the file.
const CALL_TIMEOUT_MS = 5000;

const sandboxId = freshId("rpc");
let app: RpcApp;
let node: DevNode;
let env: E2eStack;
let sandboxOrigin: string;

beforeAll(async () => {
	app = await startRpcApp();
	const ports: ReadonlyMap<number, number> = new Map([[APP_PORT, app.port]]);
	const directory: SandboxDirectory = {
		lookup: (id) => (id === sandboxId ? ports : undefined),
		trafficAccessToken: () => undefined,
		maskRequestHost: () => undefined,
	};
	node = await startNode({ directory, port: 0 });
	env = await startE2eStack({
		catalogWrites: false,
		workerVars: { NODE_ORIGIN_TEMPLATE: `http://{ip}:${node.port}` },
	});
	const edge = new URL(edgeUrl(env.worker));
	const put = await fetchVia(env.worker.url, edge.host, `/v1/sandboxes/${sandboxId}`, {
		method: "PUT",
		headers: { authorization: `Bearer ${catalogSecret}`, "content-type": "application/json" },
		body: JSON.stringify({ orchestrator_ip: "127.0.0.1", execution_id: "e1", ttl_seconds: 3600 }),
	});
	expect(put.status, put.text).toBeLessThan(300);
	sandboxOrigin = `http://${APP_PORT}-${sandboxId}.localhost:${env.worker.url.port}`;
});
afterAll(async () => {
	await env?.close();
	await node?.close();
	await app?.close();
});

interface Protocol {
	name: string;
	/** A path segment that keeps this protocol's calls apart from the others'. */
	slug: string;
	/** The protocol the app must see (its protocolName). */
	protocol: "connect" | "grpc-web";
	/** The request content type the app must see, for a unary call and for a stream. */
	contentTypes: { unary: string; stream: string };
	transport(): Transport;
}

// Node's resolver knows no *.localhost; resolveLocalhost sends them to 127.0.0.1.
const nodeOptions = { lookup: resolveLocalhost };

const protocols: Protocol[] = [
	{
		name: "Connect with JSON",
		slug: "connect-json",
		protocol: "connect",
		contentTypes: { unary: "application/json", stream: "application/connect+json" },
		transport: () =>
			createConnectTransport({ baseUrl: sandboxOrigin, httpVersion: "1.1", useBinaryFormat: false, nodeOptions }),
	},
	{
		name: "Connect with binary messages",
		slug: "connect-proto",
		protocol: "connect",
		contentTypes: { unary: "application/proto", stream: "application/connect+proto" },
		transport: () =>
			createConnectTransport({ baseUrl: sandboxOrigin, httpVersion: "1.1", useBinaryFormat: true, nodeOptions }),
	},
	{
		name: "gRPC-web",
		slug: "grpc-web",
		protocol: "grpc-web",
		contentTypes: { unary: "application/grpc-web+proto", stream: "application/grpc-web+proto" },
		transport: () => createGrpcWebTransport({ baseUrl: sandboxOrigin, httpVersion: "1.1", nodeOptions }),
	},
];

/** The error a call failed with; fails the test if it did not fail. */
async function failure(call: Promise<unknown>): Promise<ConnectError> {
	try {
		await call;
	} catch (error) {
		return ConnectError.from(error);
	}
	throw new Error("the call succeeded");
}

describe.each(protocols)("$name through the edge", (p) => {
	const client = () => createClient(Filesystem, p.transport());

	it("answers a unary call, with the app's trailer, delivered once", async () => {
		const path = `/${p.slug}/unary/report.txt`;
		const trailers: Headers[] = [];
		const { entry } = await client().stat(
			{ path },
			{ timeoutMs: CALL_TIMEOUT_MS, onTrailer: (trailer) => trailers.push(trailer) },
		);
		expect(entry).toMatchObject({
			name: "report.txt",
			path,
			type: FileType.FILE,
			size: fakeSize(path),
			permissions: "-rw-r--r--",
			metadata: { protocol: p.protocol },
		});
		expect(trailers.map((trailer) => trailer.get(TRAILER_NAME))).toEqual([trailerValue(path)]);
		expect(app.calls.filter((call) => call.path === path)).toEqual([
			{ method: "stat", path, protocol: p.protocol, contentType: p.contentTypes.unary },
		]);
	});

	it("delivers a server stream's every message, in order, as the app sends them", async () => {
		const path = `/${p.slug}/watched`;
		const events: string[] = [];
		const trailers: Headers[] = [];
		const stream = client().watchDir(
			{ path },
			{ timeoutMs: CALL_TIMEOUT_MS, onTrailer: (trailer) => trailers.push(trailer) },
		);
		for await (const { event } of stream) {
			events.push(event.case === "filesystem" ? `${event.value.type} ${event.value.name}` : String(event.case));
			// The app sends the rest only once this client has read the first event.
			if (event.case === "filesystem") app.release(path);
		}
		const expected = ["start"];
		for (let i = 0; i < WATCH_EVENTS; i++) expected.push(`${i % 2 === 0 ? 1 : 2} ${path}/${i}.txt`);
		expect(events).toEqual(expected);
		expect(trailers.map((trailer) => trailer.get(TRAILER_NAME))).toEqual([trailerValue(path)]);
		expect(app.calls.filter((call) => call.path === path)).toEqual([
			{ method: "watchDir", path, protocol: p.protocol, contentType: p.contentTypes.stream },
		]);
	});

	it("passes the app's error on a unary call with its code and message", async () => {
		const path = `${MISSING_PREFIX}${p.slug}/unary.txt`;
		const error = await failure(client().stat({ path }, { timeoutMs: CALL_TIMEOUT_MS }));
		expect({ code: Code[error.code], message: error.rawMessage }).toEqual({
			code: Code[Code.NotFound],
			message: notFoundMessage(path),
		});
		expect(error.metadata.get(TRAILER_NAME)).toBe(trailerValue(path));
		expect(app.count(path)).toBe(1);
	});

	it("passes the app's error in the middle of a stream, after the messages before it", async () => {
		const path = `${MISSING_PREFIX}${p.slug}/watched`;
		const events: string[] = [];
		const error = await failure(
			(async () => {
				for await (const { event } of client().watchDir({ path }, { timeoutMs: CALL_TIMEOUT_MS })) {
					events.push(event.case === "filesystem" ? event.value.name : String(event.case));
					if (event.case === "filesystem") app.release(path);
				}
			})(),
		);
		const before = Array.from({ length: EVENTS_BEFORE_FAILURE }, (_, i) => `${path}/${i}.txt`);
		expect(events).toEqual(["start", ...before]);
		expect({ code: Code[error.code], message: error.rawMessage }).toEqual({
			code: Code[Code.NotFound],
			message: notFoundMessage(path),
		});
		expect(error.metadata.get(TRAILER_NAME)).toBe(trailerValue(path));
		expect(app.count(path)).toBe(1);
	});
});

// What the clients above rely on, on the wire: no HTTP trailers anywhere.
describe("the errors' wire format through the edge", () => {
	const host = () => `${APP_PORT}-${sandboxId}.localhost`;

	it("gRPC-web: a 200 whose body ends with a trailer frame holding grpc-status and grpc-message", async () => {
		const path = `${MISSING_PREFIX}wire/grpc-web.txt`;
		const message = toBinary(StatRequestSchema, create(StatRequestSchema, { path }));
		const response = await fetchVia(env.worker.url, host(), "/filesystem.Filesystem/Stat", {
			method: "POST",
			headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" },
			body: envelope(0x00, message),
		});
		expect(response.status).toBe(200);
		expect(response.headers["grpc-status"]).toBeUndefined();
		const frames = envelopes(response.body);
		expect(frames.map((f) => f.flags)).toEqual([0x80]);
		const trailer = parseTrailer(frames[0]?.data ?? Buffer.alloc(0));
		expect({
			status: trailer.get("grpc-status"),
			message: decodeURIComponent(trailer.get("grpc-message") ?? ""),
			app: trailer.get(TRAILER_NAME),
		}).toEqual({ status: String(Code.NotFound), message: notFoundMessage(path), app: trailerValue(path) });
		expect(app.count(path)).toBe(1);
	});

	it("Connect unary: the error's HTTP status and a JSON body with its code and message", async () => {
		const path = `${MISSING_PREFIX}wire/connect.txt`;
		const response = await fetchVia(env.worker.url, host(), "/filesystem.Filesystem/Stat", {
			method: "POST",
			headers: { "content-type": "application/json", "connect-protocol-version": "1" },
			body: JSON.stringify({ path }),
		});
		expect(response.status).toBe(404);
		expect(response.json()).toEqual({ code: "not_found", message: notFoundMessage(path) });
		expect(response.headers[`trailer-${TRAILER_NAME}`]).toBe(trailerValue(path));
		expect(app.count(path)).toBe(1);
	});

	it("Connect stream: a 200 whose end-stream message holds the error", async () => {
		const path = `${MISSING_PREFIX}wire/connect-stream`;
		app.release(path);
		const response = await fetchVia(env.worker.url, host(), "/filesystem.Filesystem/WatchDir", {
			method: "POST",
			headers: { "content-type": "application/connect+json", "connect-protocol-version": "1" },
			body: envelope(0x00, Buffer.from(JSON.stringify({ path }))),
		});
		expect(response.status).toBe(200);
		const frames = envelopes(response.body);
		expect(frames.map((f) => f.flags)).toEqual([...Array(1 + EVENTS_BEFORE_FAILURE).fill(0x00), 0x02]);
		expect(JSON.parse(frames.at(-1)?.data.toString("utf8") ?? "null")).toEqual({
			error: { code: "not_found", message: notFoundMessage(path) },
			metadata: { [TRAILER_NAME]: [trailerValue(path)] },
		});
		expect(app.count(path)).toBe(1);
	});
});

/** An envelope of Connect streaming and gRPC-web: flags, a 32-bit big-endian length, the data. */
function envelope(flags: number, data: Uint8Array): Buffer {
	const head = Buffer.alloc(5);
	head.writeUInt8(flags, 0);
	head.writeUInt32BE(data.length, 1);
	return Buffer.concat([head, data]);
}

function envelopes(body: Buffer): { flags: number; data: Buffer }[] {
	const out: { flags: number; data: Buffer }[] = [];
	let at = 0;
	while (at < body.length) {
		if (body.length - at < 5) throw new Error(`a truncated envelope at byte ${at} of ${body.length}`);
		const length = body.readUInt32BE(at + 1);
		if (body.length - at - 5 < length) throw new Error(`a truncated envelope at byte ${at} of ${body.length}`);
		out.push({ flags: body.readUInt8(at), data: body.subarray(at + 5, at + 5 + length) });
		at += 5 + length;
	}
	return out;
}

/** gRPC-web's trailer frame: HTTP/1-style header lines. */
function parseTrailer(data: Buffer): Map<string, string> {
	const out = new Map<string, string>();
	for (const line of data.toString("utf8").split("\r\n")) {
		const colon = line.indexOf(":");
		if (colon > 0) out.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
	}
	return out;
}
