// The development node: an orchestrator proxy like E2B's on :5007. It routes
// a request to a sandbox's local servers as E2B's does (node-routing.ts) and
// hands it on as E2B's does (headersToSandbox).

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
import { headerRecord } from "./http-util.ts";
import { ENVD_PORT, type Log, type RecordedNodeRequest, silent } from "./model.ts";
import {
	badRequest,
	NOT_HERE_HEADER,
	type NodeAnswer,
	portClosed,
	sandboxNotFound,
	trafficTokenRefused,
	wantsHtml,
} from "./node-answers.ts";
import { maskedHost, type NodeRouting, targetOf } from "./node-routing.ts";
import { endToEndHeaders, headersToSandbox, writeRawHead } from "./proxy-headers.ts";
import type { SandboxDirectory } from "./registry.ts";
import { listen } from "./server-lifecycle.ts";

export const DEFAULT_NODE_PORT = 5007;

export interface NodeOptions {
	directory: SandboxDirectory;
	/** Default 5007; 0 picks a free port. */
	port?: number;
	/** How a request names its sandbox; default "headers-or-host", as E2B's nodes since May 2026. */
	routing?: NodeRouting;
	/**
	 * Also mark "sandbox not here" with the X-E2b-Sandbox-Not-Found header.
	 * Default false: E2B's nodes send no such header, and the edge must not need it.
	 */
	notFoundHeader?: boolean;
	/**
	 * Strip that header from sandboxes' own responses, so that an app cannot
	 * claim its sandbox is gone. Default true; E2B's nodes pass it through.
	 */
	stripNotHereHeader?: boolean;
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
	/** The Host the node received, which the sandbox gets unless masked. */
	receivedHost: string;
	/** The sandbox's MaskRequestHost for this port, `${PORT}` filled in. */
	mask: string | undefined;
}

const MAX_RECORDED_REQUESTS = 1000;
// Go's net/http reads this much of a body its handler left unread (maxPostHandlerReadBytes),
// and lingers this long after half-closing the connection on the rest (rstAvoidanceDelay).
const GO_POST_HANDLER_READ_BYTES = 256 * 1024;
const GO_RST_AVOIDANCE_DELAY_MS = 500;
// Node's servers close idle connections after 5 s. Without a timeout of its
// own, Node's agent keeps idle ones for ever: it heeds the server's
// Keep-Alive hint only to shorten its own timeout.
const POOLED_IDLE_MS = 2000;
const TRAFFIC_TOKEN_HEADER = "e2b-traffic-access-token";

export const ROUTING_DESCRIPTIONS: Record<NodeRouting, string> = {
	"headers-or-host":
		"routes on E2b-Sandbox-Id / E2b-Sandbox-Port on localhost, IP and sandbox.* hosts, else on <port>-<id>.<domain>",
	host: "routes on the Host only, <port>-<id>.<domain>, as E2B's nodes before May 2026",
};

function single(value: string | string[] | undefined): string | undefined {
	return Array.isArray(value) ? value[0] : value;
}

/**
 * Where a request goes, decided before anything is dialed, as E2B's
 * orchestrator proxy decides it: a sandbox this node does not hold gets the
 * not-found answer, which is the only answer that says so.
 */
function resolveTarget(
	directory: SandboxDirectory,
	req: IncomingMessage,
	routing: NodeRouting,
	notFoundHeader: boolean,
): Target | NodeAnswer {
	const receivedHost = req.headers.host ?? "";
	const routed = targetOf(receivedHost, req.rawHeaders, routing);
	if (typeof routed === "string") return badRequest(routed);
	const { sandboxId, port } = routed;
	const asHtml = wantsHtml(req.headers);
	const ports = directory.lookup(sandboxId);
	if (ports === undefined) return sandboxNotFound(sandboxId, asHtml, notFoundHeader);
	// Like E2B's orchestrator, the node, not the edge, guards a private
	// sandbox's traffic; envd checks its own access token.
	const token = directory.trafficAccessToken(sandboxId);
	if (token !== undefined && port !== ENVD_PORT) {
		const given = single(req.headers[TRAFFIC_TOKEN_HEADER]);
		if (given !== token) return trafficTokenRefused(sandboxId, TRAFFIC_TOKEN_HEADER, given === undefined, asHtml);
	}
	// A mask lets the customer's app pass its own Host checks; envd is E2B's and never masked.
	const maskSetting = port === ENVD_PORT ? undefined : directory.maskRequestHost(sandboxId);
	const mask = maskSetting === undefined || maskSetting === "" ? undefined : maskedHost(maskSetting, port);
	// E2B's node dials the port and is refused; the answer is the same.
	const localPort = ports.get(port);
	if (localPort === undefined) return portClosed(sandboxId, port, asHtml);
	return { sandboxId, port, localPort, receivedHost, mask };
}

function isTarget(value: Target | NodeAnswer): value is Target {
	return "localPort" in value;
}

function answerHeaders(answer: NodeAnswer): Record<string, string> {
	return {
		...answer.headers,
		"content-type": answer.contentType,
		"content-length": String(Buffer.byteLength(answer.body)),
	};
}

function writeAnswerToSocket(socket: Socket, answer: NodeAnswer): void {
	const headers = Object.entries({ ...answerHeaders(answer), connection: "close" }).flat();
	writeRawHead(socket, answer.status, STATUS_CODES[answer.status] ?? "", headers);
	socket.end(answer.body);
}

/** A sandbox's own response must not be able to claim that its sandbox is not here. */
function withoutNotHereHeader(headers: readonly string[]): string[] {
	const out: string[] = [];
	for (let i = 0; i + 1 < headers.length; i += 2) {
		if (headers[i]?.toLowerCase() === NOT_HERE_HEADER) continue;
		out.push(headers[i] ?? "", headers[i + 1] ?? "");
	}
	return out;
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
	const routing = options.routing ?? "headers-or-host";
	const notFoundHeader = options.notFoundHeader ?? false;
	const stripNotHereHeader = options.stripNotHereHeader ?? true;
	const sandboxResponseHeaders = (raw: readonly string[], headerOptions: { upgrade?: boolean } = {}) => {
		const headers = endToEndHeaders(raw, headerOptions);
		return stripNotHereHeader ? withoutNotHereHeader(headers) : headers;
	};
	const log = options.log ?? silent;
	// Keep-alive to the sandbox servers, like a real node's pooled connections.
	// An idle one is closed well before its server would close it: a request
	// sent on it just as the server closes it fails with ECONNRESET, which the
	// node must answer "port is not open" for a sandbox that is listening.
	// (E2B's node, on Go's transport, sends such a request again instead.)
	const agent = new Agent({ keepAlive: true, maxSockets: 256, timeout: POOLED_IDLE_MS });
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

	function refuse(res: ServerResponse, answer: NodeAnswer): void {
		res.writeHead(answer.status, answerHeaders(answer));
		res.end(answer.body);
	}

	/**
	 * Answers before reading the body, as E2B's node (Go's net/http) does:
	 * after the answer it reads at most 256 KiB of what the client still
	 * sends; past that it half-closes the connection, waits 500 ms so that the
	 * client can read the answer, and closes it on the rest. Node's own server
	 * would read all of it, which would hide what an edge meets in production.
	 */
	function refuseUnread(req: IncomingMessage, res: ServerResponse, answer: NodeAnswer): void {
		refuse(res, answer);
		let discarded = 0;
		const onData = (chunk: Buffer) => {
			discarded += chunk.byteLength;
			if (discarded <= GO_POST_HANDLER_READ_BYTES) return;
			req.off("data", onData);
			req.pause();
			req.socket.end();
			setTimeout(() => req.socket.destroy(), GO_RST_AVOIDANCE_DELAY_MS).unref();
		};
		req.on("data", onData);
	}

	function proxyRequest(req: IncomingMessage, res: ServerResponse): void {
		record(req, false);
		const target = resolveTarget(directory, req, routing, notFoundHeader);
		if (!isTarget(target)) {
			refuseUnread(req, res, target);
			return;
		}

		const headers = headersToSandbox(req.rawHeaders, target.receivedHost, target.mask);
		const upstream = requestToSandbox(req, target, headers, agent);
		upstream.on("response", (up) => {
			res.writeHead(up.statusCode ?? 502, up.statusMessage, sandboxResponseHeaders(up.rawHeaders));
			// Headers go out now, so an SSE client sees the stream open before the first event.
			res.flushHeaders();
			pipeline(up, res, () => {});
		});
		upstream.on("error", (error: NodeJS.ErrnoException) => {
			req.unpipe(upstream);
			if (res.headersSent) return void res.destroy();
			// The sandbox was dialed: whatever failed (a closed port, a sandbox
			// paused mid-request), the request may have reached it, so the
			// answer is never "not here".
			log(
				`${target.sandboxId}:${target.port} ${req.method} ${req.url} -> 502 port closed (${error.code ?? error.message})`,
			);
			req.resume();
			refuse(res, portClosed(target.sandboxId, target.port, wantsHtml(req.headers)));
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
		const target = resolveTarget(directory, req, routing, notFoundHeader);
		if (!isTarget(target)) {
			writeAnswerToSocket(socket, target);
			return;
		}

		// An upgraded socket leaves the pool anyway.
		const headers = headersToSandbox(req.rawHeaders, target.receivedHost, target.mask, { upgrade: true });
		const upstream = requestToSandbox(req, target, headers, false);
		upstream.on("upgrade", (up, upSocket, upHead) => {
			writeRawHead(
				socket,
				up.statusCode ?? 101,
				up.statusMessage ?? "Switching Protocols",
				sandboxResponseHeaders(up.rawHeaders, { upgrade: true }),
			);
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
				...sandboxResponseHeaders(up.rawHeaders),
				"connection",
				"close",
			]);
			pipeline(up, socket, () => socket.destroy());
		});
		upstream.on("error", () => {
			if (socket.destroyed) return;
			writeAnswerToSocket(socket, portClosed(target.sandboxId, target.port, wantsHtml(req.headers)));
		});
		socket.once("close", () => upstream.destroy());
		upstream.end();
	}

	const server = createServer(proxyRequest);
	server.on("upgrade", proxyUpgrade);
	const managed = await listen(server, options.port ?? DEFAULT_NODE_PORT);
	const origin = `http://127.0.0.1:${managed.port}`;
	log(`listening on ${origin} (${ROUTING_DESCRIPTIONS[routing]})`);

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
