// The development control plane: proxy.SandboxService (ResumeSandbox and
// KeepAliveSandbox) over gRPC-web and Connect, plus the /admin JSON API, on
// one HTTP/1.1 port.

import { createServer, IncomingMessage, type ServerResponse } from "node:http";
import { type ContextValues, createContextValues } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { createAdminHandler } from "./admin-api.ts";
import { callInfoKey } from "./call-info.ts";
import { type ControlPlaneAuth, createClientProxyAuth } from "./client-proxy-auth.ts";
import { answerRawFault, createFaultSlot, describeFault, isGarbage, parseFault } from "./fault.ts";
import { BodyTooLargeError, delayUnlessClosed, headerRecord, pathOf, readBody, sendJson } from "./http-util.ts";
import { type Fault, type KeepAliveCall, type Log, type RecordedCall, type RpcName, silent } from "./model.ts";
import type { SandboxRegistry } from "./registry.ts";
import { createRestApiHandler } from "./rest-api.ts";
import type { TokenPolicy } from "./resume-service.ts";
import { keepAliveFieldsFromBody, protocolOf, sandboxIdFromBody } from "./rpc-body.ts";
import { sandboxServiceRoutes } from "./sandbox-service.ts";
import { listen } from "./server-lifecycle.ts";

export type { ControlPlaneAuth } from "./client-proxy-auth.ts";

export const RESUME_SANDBOX_PATH = "/proxy.SandboxService/ResumeSandbox";
export const KEEP_ALIVE_SANDBOX_PATH = "/proxy.SandboxService/KeepAliveSandbox";
const RPC_PATHS: ReadonlyMap<string, RpcName> = new Map([
	[RESUME_SANDBOX_PATH, "ResumeSandbox"],
	[KEEP_ALIVE_SANDBOX_PATH, "KeepAliveSandbox"],
]);
export const DEFAULT_CONTROL_PLANE_PORT = 8790;
// E2B's API (autoResumeTransitionWaitBudget) waits this long for a pausing sandbox.
export const DEFAULT_TRANSITION_WAIT_MS = 60_000;

export interface ControlPlaneOptions {
	/** x-e2b-client-proxy-auth's value in api_secret mode; unused in oauth2 mode. */
	apiSecret: string;
	/** How calls from the edge are authenticated; default { mode: "api_secret" }. */
	auth?: ControlPlaneAuth;
	registry: SandboxRegistry;
	/** Default 8790; 0 picks a free port. */
	port?: number;
	/** Default "e2b"; see TokenPolicy. */
	tokenPolicy?: TokenPolicy;
	/** How long ResumeSandbox waits out a pause; default 60 s, as E2B's API. */
	transitionWaitMs?: number;
	/** Serves E2B's REST API (rest-api.ts) on every other path, for callers with this X-API-Key; absent: off. */
	restApiKey?: string;
	/** The base domain of sandbox traffic that the REST API's answers name (`domain`); absent: none. */
	restSandboxDomain?: string;
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
	/** Every KeepAliveSandbox POST received, oldest first, faulted ones included. */
	keepAliveCalls(): KeepAliveCall[];
	resetKeepAliveCalls(): void;
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
	const auth = await createClientProxyAuth(apiSecret, options.auth ?? { mode: "api_secret" }, log);

	let calls: RecordedCall[] = [];
	let keepAliveCalls: KeepAliveCall[] = [];
	const faults = createFaultSlot();
	const shutdown = new AbortController();
	const contexts = new WeakMap<IncomingMessage, ContextValues>();

	const rpc = connectNodeAdapter({
		routes: sandboxServiceRoutes({
			auth,
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
	const keepAliveSnapshot = () => keepAliveCalls.map((call) => ({ ...call }));
	const resetCalls = () => {
		calls = [];
	};
	const resetKeepAliveCalls = () => {
		keepAliveCalls = [];
	};
	const admin = createAdminHandler({
		registry,
		calls: snapshot,
		resetCalls,
		keepAliveCalls: keepAliveSnapshot,
		resetKeepAliveCalls,
		fault: faults,
	});
	const rest =
		options.restApiKey === undefined
			? undefined
			: createRestApiHandler({
					registry,
					apiKey: options.restApiKey,
					transitionWaitMs: options.transitionWaitMs ?? DEFAULT_TRANSITION_WAIT_MS,
					...(options.restSandboxDomain === undefined ? {} : { sandboxDomain: options.restSandboxDomain }),
					log,
				});

	/** Records the call in its RPC's list, with the fields read from its body. */
	function record(rpc: RpcName, req: IncomingMessage, body: Buffer): RecordedCall {
		const protocol = protocolOf(req.headers["content-type"]);
		const headers = headerRecord(req.headers);
		const at = preciseNow();
		if (rpc === "KeepAliveSandbox") {
			const call: KeepAliveCall = { ...keepAliveFieldsFromBody(req.headers, body), protocol, headers, at };
			keepAliveCalls.push(call);
			if (keepAliveCalls.length > MAX_RECORDED_CALLS)
				keepAliveCalls.splice(0, keepAliveCalls.length - MAX_RECORDED_CALLS);
			return call;
		}
		const call: RecordedCall = { sandboxId: sandboxIdFromBody(req.headers, body), protocol, headers, at };
		calls.push(call);
		if (calls.length > MAX_RECORDED_CALLS) calls.splice(0, calls.length - MAX_RECORDED_CALLS);
		return call;
	}

	async function handleRpc(rpcName: RpcName, req: IncomingMessage, res: ServerResponse): Promise<void> {
		let body: Buffer;
		try {
			body = await readBody(req, MAX_RPC_BODY_BYTES);
		} catch (error) {
			if (error instanceof BodyTooLargeError) return sendJson(res, 413, { message: error.message, code: 413 });
			res.destroy();
			return;
		}
		const call = record(rpcName, req, body);
		const { sandboxId, protocol } = call;
		// Whichever comes first: a hung or abandoned call ends when its connection does.
		const finish = () => {
			call.finishedAt ??= preciseNow();
		};
		res.once("finish", finish);
		res.once("close", finish);

		const fault = faults.take(rpcName, sandboxId);
		if (fault !== undefined) {
			const raw = fault.hang === true || fault.httpStatus !== undefined || isGarbage(fault);
			if (raw || fault.delayMs !== undefined) {
				log(`${rpcName} ${sandboxId || "<empty>"} (${protocol}) fault: ${describeFault(fault)}`);
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
		const rpcName = RPC_PATHS.get(path);
		if (rpcName !== undefined && req.method === "POST") {
			handleRpc(rpcName, req, res).catch((error: unknown) => {
				log(`${rpcName} failed: ${error instanceof Error ? error.message : String(error)}`);
				if (!res.headersSent) sendJson(res, 500, { message: "internal error", code: 500 });
				else res.destroy();
			});
			return;
		}
		if (rpcName !== undefined) return rpc(req, res);
		if (rest !== undefined) return rest(req, res);
		sendJson(res, 404, {
			message: `no route; the RPCs are POST ${[...RPC_PATHS.keys()].join(" and ")}, and the admin API is under /admin`,
			code: 404,
		});
	});

	const managed = await listen(server, options.port ?? DEFAULT_CONTROL_PLANE_PORT);
	const url = `http://127.0.0.1:${managed.port}`;
	const authText = options.auth?.mode === "oauth2" ? `OAuth2 tokens from ${options.auth.issuerUrl}` : "the API secret";
	const restText = rest === undefined ? "" : `; E2B's REST API at ${url} for X-API-Key holders`;
	log(
		`listening on ${url} (ResumeSandbox and KeepAliveSandbox over grpc-web and connect, checking ${authText}; admin API at ${url}/admin${restText})`,
	);

	return {
		url,
		port: managed.port,
		sandboxes: registry,
		calls: snapshot,
		resetCalls,
		keepAliveCalls: keepAliveSnapshot,
		resetKeepAliveCalls,
		fault: () => faults.current(),
		setFault: (fault) => faults.set(parseFault(fault)),
		clearFault: () => faults.clear(),
		async close() {
			shutdown.abort();
			await managed.close();
		},
	};
}
