// A user's RPC server, as a sandbox would run one: envd's Filesystem service
// (the generated code in src/gen) with small fake handlers, served by
// connectNodeAdapter over HTTP/1.1, so Connect and gRPC-web only. It counts
// every call it receives, so that a test can tell a call delivered twice (or
// not at all) from one delivered once.

import { createServer } from "node:http";
import { posix } from "node:path";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { listen } from "../../dev/server-lifecycle.ts";
import {
	EntryInfoSchema,
	EventType,
	Filesystem,
	FileType,
	type StatResponse,
	StatResponseSchema,
	type WatchDirResponse,
	WatchDirResponseSchema,
} from "../../src/gen/envd/filesystem/filesystem_pb.ts";

/** A path under this prefix does not exist: Stat and WatchDir fail with NotFound. */
export const MISSING_PREFIX = "/missing/";
/** How many filesystem events WatchDir sends after its start event (fewer when the path is missing). */
export const WATCH_EVENTS = 5;
/** How many of them WatchDir sends for a missing path before it fails. */
export const EVENTS_BEFORE_FAILURE = 2;
/** The response trailer every call ends with, so that a test can see trailers arrive. */
export const TRAILER_NAME = "x-app-trailer";

export function notFoundMessage(path: string): string {
	return `no such file or directory: ${path}`;
}

/** What the app's trailer says for a call on `path`. */
export function trailerValue(path: string): string {
	return `done ${path}`;
}

/** One call as the app received it. */
export interface AppCall {
	method: "stat" | "watchDir";
	path: string;
	/** "connect" or "grpc-web" (connectNodeAdapter's protocolName). */
	protocol: string;
	contentType: string;
}

export interface RpcApp {
	readonly port: number;
	readonly calls: readonly AppCall[];
	/** How many calls the app received for `path`, by any method and protocol. */
	count(path: string): number;
	/** Lets a WatchDir on `path` go on past its first filesystem event. */
	release(path: string): void;
	close(): Promise<void>;
}

/** A file's size as the fake Stat reports it: past 2^53, so that int64 must survive JSON. */
export function fakeSize(path: string): bigint {
	return 2n ** 60n + BigInt(path.length);
}

export async function startRpcApp(): Promise<RpcApp> {
	const calls: AppCall[] = [];
	const gates = new Map<string, Gate>();
	const gate = (path: string) => {
		let g = gates.get(path);
		if (g === undefined) {
			g = newGate();
			gates.set(path, g);
		}
		return g;
	};
	const received = (method: AppCall["method"], path: string, ctx: HandlerContext) => {
		calls.push({
			method,
			path,
			protocol: ctx.protocolName,
			contentType: ctx.requestHeader.get("content-type") ?? "",
		});
		ctx.responseTrailer.set(TRAILER_NAME, trailerValue(path));
	};

	const handler = connectNodeAdapter({
		// Connect and gRPC-web are on by default; said here, since they are the
		// point. Native gRPC needs HTTP/2 trailers, which a Worker cannot carry.
		connect: true,
		grpcWeb: true,
		grpc: false,
		routes: (router) => {
			router.service(Filesystem, {
				stat(req, ctx): StatResponse {
					received("stat", req.path, ctx);
					if (req.path.startsWith(MISSING_PREFIX)) throw new ConnectError(notFoundMessage(req.path), Code.NotFound);
					return create(StatResponseSchema, {
						entry: create(EntryInfoSchema, {
							name: posix.basename(req.path),
							type: FileType.FILE,
							path: req.path,
							size: fakeSize(req.path),
							mode: 0o644,
							permissions: "-rw-r--r--",
							owner: "user",
							group: "user",
							metadata: { protocol: ctx.protocolName },
						}),
					});
				},
				async *watchDir(req, ctx): AsyncGenerator<WatchDirResponse> {
					received("watchDir", req.path, ctx);
					const missing = req.path.startsWith(MISSING_PREFIX);
					yield create(WatchDirResponseSchema, { event: { case: "start", value: {} } });
					for (let i = 0; i < WATCH_EVENTS; i++) {
						if (missing && i === EVENTS_BEFORE_FAILURE) {
							throw new ConnectError(notFoundMessage(req.path), Code.NotFound);
						}
						// The rest waits until the client has read the first event: a
						// proxy that held the response back until it ended would hang here.
						if (i === 1) await untilReleased(gate(req.path).promise, ctx.signal);
						yield create(WatchDirResponseSchema, {
							event: {
								case: "filesystem",
								value: { name: `${req.path}/${i}.txt`, type: i % 2 === 0 ? EventType.CREATE : EventType.WRITE },
							},
						});
					}
				},
			});
		},
	});
	const server = await listen(createServer(handler), 0);
	return {
		port: server.port,
		calls,
		count: (path) => calls.filter((call) => call.path === path).length,
		release: (path) => gate(path).resolve(),
		close: () => server.close(),
	};
}

interface Gate {
	promise: Promise<void>;
	resolve(): void;
}

function newGate(): Gate {
	let resolve = () => {};
	const promise = new Promise<void>((done) => {
		resolve = done;
	});
	return { promise, resolve };
}

function untilReleased(released: Promise<void>, signal: AbortSignal): Promise<void> {
	return new Promise((resolve, reject) => {
		const abort = () => reject(signal.reason);
		if (signal.aborted) abort();
		signal.addEventListener("abort", abort, { once: true });
		released.then(() => {
			signal.removeEventListener("abort", abort);
			resolve();
		});
	});
}
