// The development node: an orchestrator proxy that routes on E2b-Sandbox-Id and
// E2b-Sandbox-Port, like E2B's proxy on :5007, to the sandbox's local servers.

import {
	Agent,
	type ClientRequest,
	createServer,
	type IncomingMessage,
	request,
	type ServerResponse,
	STATUS_CODES,
} from "node:http";
import type { Socket } from "node:net";
import { pipeline } from "node:stream";
import { headerRecord, sendJson } from "./http-util.ts";
import { type Log, type RecordedNodeRequest, SANDBOX_ID_PATTERN, silent } from "./model.ts";
import { endToEndHeaders, writeRawHead } from "./proxy-headers.ts";
import type { SandboxDirectory } from "./registry.ts";
import { listen } from "./server-lifecycle.ts";

export const DEFAULT_NODE_PORT = 5007;

export interface NodeOptions {
	directory: SandboxDirectory;
	/** Default 5007; 0 picks a free port. */
	port?: number;
	log?: Log;
}

export interface DevNode {
	readonly port: number;
	/** e.g. http://127.0.0.1:5007 */
	readonly origin: string;
	/** The last 1000 requests received (upgrades included), oldest first. */
	requests(): RecordedNodeRequest[];
	resetRequests(): void;
	close(): Promise<void>;
}

interface Target {
	sandboxId: string;
	port: number;
	localPort: number;
}

interface Refusal {
	status: number;
	body: Record<string, unknown>;
	headers: Record<string, string>;
}

const MAX_RECORDED_REQUESTS = 1000;
const ENVD_PORT = 49983;

function notFound(sandboxId: string): Refusal {
	return {
		status: 502,
		body: { message: "The sandbox was not found", sandboxId, code: 502 },
		headers: { "x-e2b-sandbox-not-found": "1" },
	};
}

function portClosed(sandboxId: string, port: number): Refusal {
	return {
		status: 502,
		body: { message: "The sandbox is running but port is not open", sandboxId, port, code: 502 },
		headers: { "x-e2b-port-closed": "1" },
	};
}

function trafficForbidden(sandboxId: string): Refusal {
	return {
		status: 403,
		body: {
			message: "The sandbox's traffic is private: send its e2b-traffic-access-token header",
			sandboxId,
			code: 403,
		},
		headers: {},
	};
}

function badRequest(message: string): Refusal {
	return { status: 400, body: { message, code: 400 }, headers: {} };
}

function single(value: string | string[] | undefined): string | undefined {
	return Array.isArray(value) ? value[0] : value;
}

function resolveTarget(directory: SandboxDirectory, req: IncomingMessage): Target | Refusal {
	const sandboxId = single(req.headers["e2b-sandbox-id"]);
	const rawPort = single(req.headers["e2b-sandbox-port"]);
	if (sandboxId === undefined || rawPort === undefined) {
		return badRequest("missing E2b-Sandbox-Id or E2b-Sandbox-Port header");
	}
	if (!SANDBOX_ID_PATTERN.test(sandboxId)) return badRequest("E2b-Sandbox-Id must match ^[a-z0-9]+$");
	const port = /^\d{1,5}$/.test(rawPort) ? Number(rawPort) : Number.NaN;
	if (!(port >= 1 && port <= 65535)) return badRequest("E2b-Sandbox-Port must be a port from 1 to 65535");
	const ports = directory.lookup(sandboxId);
	if (ports === undefined) return notFound(sandboxId);
	// Like E2B's orchestrator, the node, not the edge, guards a private
	// sandbox's traffic; envd checks its own access token.
	const token = directory.trafficAccessToken(sandboxId);
	if (token !== undefined && port !== ENVD_PORT && single(req.headers["e2b-traffic-access-token"]) !== token) {
		return trafficForbidden(sandboxId);
	}
	const localPort = ports.get(port);
	if (localPort === undefined) return portClosed(sandboxId, port);
	return { sandboxId, port, localPort };
}

/** A refused connection means the sandbox stopped between lookup and connect. */
function refusalAfterError(directory: SandboxDirectory, target: Target, error: NodeJS.ErrnoException): Refusal {
	if (directory.lookup(target.sandboxId)?.has(target.port) !== true) {
		return directory.lookup(target.sandboxId) === undefined
			? notFound(target.sandboxId)
			: portClosed(target.sandboxId, target.port);
	}
	if (error.code === "ECONNREFUSED") return portClosed(target.sandboxId, target.port);
	return {
		status: 502,
		body: {
			message: `error reaching the sandbox: ${error.code ?? error.message}`,
			sandboxId: target.sandboxId,
			code: 502,
		},
		headers: {},
	};
}

function writeRefusalToSocket(socket: Socket, refusal: Refusal): void {
	const body = JSON.stringify(refusal.body);
	const headers = Object.entries({
		...refusal.headers,
		"content-type": "application/json; charset=utf-8",
		"content-length": String(Buffer.byteLength(body)),
		connection: "close",
	}).flat();
	writeRawHead(socket, refusal.status, STATUS_CODES[refusal.status] ?? "", headers);
	socket.end(body);
}

function requestToSandbox(
	req: IncomingMessage,
	target: Target,
	headers: string[],
	agent: Agent | false,
): ClientRequest {
	return request({ host: "127.0.0.1", port: target.localPort, method: req.method, path: req.url, headers, agent });
}

export async function startNode(options: NodeOptions): Promise<DevNode> {
	const { directory } = options;
	const log = options.log ?? silent;
	// Keep-alive to the sandbox servers, like a real node's pooled connections.
	const agent = new Agent({ keepAlive: true, maxSockets: 256 });
	let recorded: RecordedNodeRequest[] = [];

	function record(req: IncomingMessage, upgrade: boolean): void {
		recorded.push({
			method: req.method ?? "",
			url: req.url ?? "",
			headers: headerRecord(req.headers),
			upgrade,
			at: Date.now(),
		});
		if (recorded.length > MAX_RECORDED_REQUESTS) recorded.splice(0, recorded.length - MAX_RECORDED_REQUESTS);
	}

	function refuse(res: ServerResponse, refusal: Refusal): void {
		sendJson(res, refusal.status, refusal.body, refusal.headers);
	}

	function proxyRequest(req: IncomingMessage, res: ServerResponse): void {
		record(req, false);
		const target = resolveTarget(directory, req);
		if (!("localPort" in target)) {
			refuse(res, target);
			return;
		}

		const upstream = requestToSandbox(req, target, endToEndHeaders(req.rawHeaders), agent);
		upstream.on("response", (up) => {
			res.writeHead(up.statusCode ?? 502, up.statusMessage, endToEndHeaders(up.rawHeaders));
			// Headers go out now, so an SSE client sees the stream open before the first event.
			res.flushHeaders();
			pipeline(up, res, () => {});
		});
		upstream.on("error", (error: NodeJS.ErrnoException) => {
			req.unpipe(upstream);
			if (res.headersSent) return void res.destroy();
			const refusal = refusalAfterError(directory, target, error);
			log(
				`${target.sandboxId}:${target.port} ${req.method} ${req.url} -> ${refusal.status} (${error.code ?? error.message})`,
			);
			req.resume();
			refuse(res, refusal);
		});
		// A client that goes away mid-request or mid-response takes the upstream with it.
		res.once("close", () => {
			if (!res.writableFinished) upstream.destroy();
		});
		req.pipe(upstream);
	}

	function proxyUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
		record(req, true);
		socket.on("error", () => socket.destroy());
		const target = resolveTarget(directory, req);
		if (!("localPort" in target)) {
			writeRefusalToSocket(socket, target);
			return;
		}

		// An upgraded socket leaves the pool anyway.
		const upstream = requestToSandbox(req, target, endToEndHeaders(req.rawHeaders, { upgrade: true }), false);
		upstream.on("upgrade", (up, upSocket, upHead) => {
			writeRawHead(socket, up.statusCode ?? 101, up.statusMessage ?? "Switching Protocols", up.rawHeaders);
			if (upHead.byteLength > 0) socket.write(upHead);
			if (head.byteLength > 0) upSocket.write(head);
			const destroyBoth = () => {
				upSocket.destroy();
				socket.destroy();
			};
			upSocket.on("error", destroyBoth);
			upSocket.on("close", destroyBoth);
			socket.on("close", destroyBoth);
			upSocket.pipe(socket);
			socket.pipe(upSocket);
		});
		upstream.on("response", (up) => {
			// The sandbox declined the upgrade: relay its answer, delimited by closing the connection.
			writeRawHead(socket, up.statusCode ?? 502, up.statusMessage ?? "", [
				...endToEndHeaders(up.rawHeaders),
				"connection",
				"close",
			]);
			pipeline(up, socket, () => socket.destroy());
		});
		upstream.on("error", (error: NodeJS.ErrnoException) => {
			if (socket.destroyed) return;
			writeRefusalToSocket(socket, refusalAfterError(directory, target, error));
		});
		socket.once("close", () => upstream.destroy());
		upstream.end();
	}

	const server = createServer(proxyRequest);
	server.on("upgrade", proxyUpgrade);
	const managed = await listen(server, options.port ?? DEFAULT_NODE_PORT);
	const origin = `http://127.0.0.1:${managed.port}`;
	log(`listening on ${origin} (routes on E2b-Sandbox-Id / E2b-Sandbox-Port)`);

	return {
		port: managed.port,
		origin,
		requests: () => [...recorded],
		resetRequests: () => {
			recorded = [];
		},
		async close() {
			await managed.close();
			agent.destroy();
		},
	};
}
