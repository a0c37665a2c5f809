// The development control plane: ResumeSandbox over gRPC-web and Connect, plus
// the /admin JSON API, on one HTTP/1.1 port.

import { createServer, IncomingMessage, type ServerResponse } from "node:http";
import { type ContextValues, createContextValues } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { sleep as sleepUnlessAborted } from "../bridge/backoff.ts";
import { createAdminHandler } from "./admin-api.ts";
import { answerRawFault, createFaultSlot, describeFault, isGarbage, parseFault } from "./fault.ts";
import { BodyTooLargeError, headerRecord, pathOf, readBody, sendJson } from "./http-util.ts";
import { type Fault, type Log, type RecordedCall, silent } from "./model.ts";
import type { SandboxRegistry } from "./registry.ts";
import { callInfoKey, resumeRoutes, type TokenPolicy } from "./resume-service.ts";
import { protocolOf, sandboxIdFromBody } from "./rpc-body.ts";
import { listen } from "./server-lifecycle.ts";

export const RESUME_SANDBOX_PATH = "/proxy.SandboxService/ResumeSandbox";
export const DEFAULT_CONTROL_PLANE_PORT = 8790;
// E2B's API (autoResumeTransitionWaitBudget) waits this long for a pausing sandbox.
export const DEFAULT_TRANSITION_WAIT_MS = 60_000;

export interface ControlPlaneOptions {
	apiSecret: string;
	registry: SandboxRegistry;
	/** Default 8790; 0 picks a free port. */
	port?: number;
	/** Default "e2b"; see TokenPolicy. */
	tokenPolicy?: TokenPolicy;
	/** How long ResumeSandbox waits out a pause; default 60 s, as E2B's API. */
	transitionWaitMs?: number;
	log?: Log;
}

export interface ControlPlane {
	/** e.g. http://127.0.0.1:8790, the value for CONTROL_PLANE_URL. */
	readonly url: string;
	readonly port: number;
	readonly sandboxes: SandboxRegistry;
	/** Every ResumeSandbox POST received, oldest first, faulted ones included. */
	calls(): RecordedCall[];
	resetCalls(): void;
	fault(): Fault | undefined;
	/** Validates like PUT /admin/fault and throws FaultError on bad input. */
	setFault(fault: Fault): void;
	clearFault(): void;
	close(): Promise<void>;
}

const MAX_RECORDED_CALLS = 10_000;
const MAX_RPC_BODY_BYTES = 1024 * 1024;

/**
 * Epoch ms with a fraction: calls that follow each other within one
 * millisecond must still be seen not to overlap.
 */
function preciseNow(): number {
	return performance.timeOrigin + performance.now();
}

/** Resolves true after `ms`, or false as soon as the response closes. */
function delayUnlessClosed(ms: number, res: ServerResponse): Promise<boolean> {
	const closed = new AbortController();
	const onClose = () => closed.abort();
	res.once("close", onClose);
	return sleepUnlessAborted(ms, closed.signal).finally(() => res.off("close", onClose));
}

/**
 * The RPC body has been read to record the call and scope faults; the adapter
 * gets a fresh request over the same socket that replays it. `complete` keeps
 * Node from treating the replay's end as an abort that destroys the socket.
 */
function replayRequest(req: IncomingMessage, body: Buffer): IncomingMessage {
	const replay = new IncomingMessage(req.socket);
	replay.headers = req.headers;
	replay.rawHeaders = req.rawHeaders;
	replay.method = req.method;
	replay.url = req.url;
	replay.httpVersion = req.httpVersion;
	replay.httpVersionMajor = req.httpVersionMajor;
	replay.httpVersionMinor = req.httpVersionMinor;
	replay.complete = true;
	replay.push(body);
	replay.push(null);
	return replay;
}

export async function startControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
	const { apiSecret, registry } = options;
	const log = options.log ?? silent;
	if (apiSecret === "") throw new Error("apiSecret must not be empty");

	let calls: RecordedCall[] = [];
	const faults = createFaultSlot();
	const shutdown = new AbortController();
	const contexts = new WeakMap<IncomingMessage, ContextValues>();

	const rpc = connectNodeAdapter({
		routes: resumeRoutes({
			apiSecret,
			registry,
			tokenPolicy: options.tokenPolicy ?? "e2b",
			transitionWaitMs: options.transitionWaitMs ?? DEFAULT_TRANSITION_WAIT_MS,
			log,
		}),
		grpcWeb: true,
		connect: true,
		grpc: false,
		shutdownSignal: shutdown.signal,
		contextValues: (req) => (req instanceof IncomingMessage ? contexts.get(req) : undefined) ?? createContextValues(),
	});
	// Copies, so that a caller's snapshot does not change as calls finish.
	const snapshot = () => calls.map((call) => ({ ...call }));
	const admin = createAdminHandler({
		registry,
		calls: snapshot,
		resetCalls: () => {
			calls = [];
		},
		fault: faults,
	});

	async function handleRpc(req: IncomingMessage, res: ServerResponse): Promise<void> {
		let body: Buffer;
		try {
			body = await readBody(req, MAX_RPC_BODY_BYTES);
		} catch (error) {
			if (error instanceof BodyTooLargeError) return sendJson(res, 413, { message: error.message, code: 413 });
			res.destroy();
			return;
		}
		const protocol = protocolOf(req.headers["content-type"]);
		const sandboxId = sandboxIdFromBody(req.headers, body);
		const call: RecordedCall = { sandboxId, protocol, headers: headerRecord(req.headers), at: preciseNow() };
		calls.push(call);
		if (calls.length > MAX_RECORDED_CALLS) calls.splice(0, calls.length - MAX_RECORDED_CALLS);
		// Whichever comes first: a hung or abandoned call ends when its connection does.
		const finish = () => {
			call.finishedAt ??= preciseNow();
		};
		res.once("finish", finish);
		res.once("close", finish);

		const fault = faults.take(sandboxId);
		if (fault !== undefined) {
			const raw = fault.hang === true || fault.httpStatus !== undefined || isGarbage(fault);
			if (raw || fault.delayMs !== undefined) {
				log(`ResumeSandbox ${sandboxId || "<empty>"} (${protocol}) fault: ${describeFault(fault)}`);
			}
			if (fault.delayMs !== undefined && !(await delayUnlessClosed(fault.delayMs, res))) return;
			if (answerRawFault(fault, protocol, res)) return;
		}
		const replay = replayRequest(req, body);
		contexts.set(replay, createContextValues().set(callInfoKey, { protocol, fault }));
		rpc(replay, res);
	}

	const server = createServer((req, res) => {
		const path = pathOf(req);
		if (path === "/admin" || path.startsWith("/admin/")) return admin(req, res);
		if (path === RESUME_SANDBOX_PATH && req.method === "POST") {
			handleRpc(req, res).catch((error: unknown) => {
				log(`ResumeSandbox failed: ${error instanceof Error ? error.message : String(error)}`);
				if (!res.headersSent) sendJson(res, 500, { message: "internal error", code: 500 });
				else res.destroy();
			});
			return;
		}
		if (path === RESUME_SANDBOX_PATH) return rpc(req, res);
		sendJson(res, 404, {
			message: `no route; the RPC is POST ${RESUME_SANDBOX_PATH} and the admin API is under /admin`,
			code: 404,
		});
	});

	const managed = await listen(server, options.port ?? DEFAULT_CONTROL_PLANE_PORT);
	const url = `http://127.0.0.1:${managed.port}`;
	log(`listening on ${url} (ResumeSandbox over grpc-web and connect; admin API at ${url}/admin)`);

	return {
		url,
		port: managed.port,
		sandboxes: registry,
		calls: snapshot,
		resetCalls: () => {
			calls = [];
		},
		fault: () => faults.current(),
		setFault: (fault) => faults.set(parseFault(fault)),
		clearFault: () => faults.clear(),
		async close() {
			shutdown.abort();
			await managed.close();
		},
	};
}
