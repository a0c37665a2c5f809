// Real servers standing in for the processes inside one sandbox. Each sandbox
// port gets its own 127.0.0.1 listener on an ephemeral port; the dev node maps
// (sandboxId, sandbox port) to it.

import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline, Readable } from "node:stream";
import { WebSocketServer } from "ws";
import { renderDemoPage } from "./demo-page.ts";
import { startEnvdServer } from "./envd/server.ts";
import { headerRecord, pathOf, queryOf, sendJson } from "./http-util.ts";
import { DEMO_PORTS, ENVD_PORT, type Log, silent } from "./model.ts";
import { listen, type ManagedServer } from "./server-lifecycle.ts";

export interface RunningSandbox {
	/** Sandbox port -> local port on 127.0.0.1, for the ports that listen; it grows as late ports open. */
	readonly ports: ReadonlyMap<number, number>;
	close(): Promise<void>;
}

export interface StartOptions {
	/** The app's ports (all but envd's) listen only this long after the start; the start does not wait. */
	portOpenDelayMs?: number;
	/** A secure sandbox's envd access token, which its envd (port 49983) checks. */
	envdAccessToken?: string;
}

/** Starts and stops the processes of sandboxes; the registry drives it. */
export interface SandboxRuntime {
	start(sandboxId: string, ports: readonly number[], options?: StartOptions): Promise<RunningSandbox>;
	/** The sandbox is gone for good (killed or deleted): drop what survives a pause. */
	forget(sandboxId: string): void;
	/** The stack is closing: drop what every sandbox kept (their envd scratch roots). */
	close?(): void;
}

/** What a paused sandbox keeps, the way a real pause snapshots memory. */
interface DemoMemory {
	count: number;
	/** Deliveries of POST /deliveries, by key: what a test counts to prove a request ran once. */
	deliveries: Map<string, number>;
	/** envd's scratch directory, the sandbox's "/" (its disk, which a pause keeps); absent: one per run. */
	envdRoot?: string;
}

const MiB = 1024 * 1024;
const DEFAULT_DOWNLOAD_BYTES = 100 * MiB;
const MAX_DOWNLOAD_BYTES = 1024 * MiB;
const CHUNK_BYTES = 64 * 1024;
// byte[i] = i % 256, and CHUNK_BYTES is a multiple of 256, so every chunk is a
// prefix of this one buffer and clients can verify content without a side channel.
const PATTERN = Buffer.from(Array.from({ length: CHUNK_BYTES }, (_, i) => i % 256));

// Scratch directories still to remove, however the process ends.
const scratchDirs = new Set<string>();
process.once("exit", () => {
	for (const dir of scratchDirs) rmSync(dir, { recursive: true, force: true });
});

function scratchDir(prefix: string): string {
	const dir = mkdtempSync(join(tmpdir(), prefix));
	scratchDirs.add(dir);
	return dir;
}

function removeScratch(dir: string): void {
	try {
		rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
		scratchDirs.delete(dir);
	} catch {
		// A command still writing there: the exit hook tries again.
	}
}

export function createDemoRuntime(options: { log?: Log } = {}): SandboxRuntime {
	const log = options.log ?? silent;
	const memories = new Map<string, DemoMemory>();
	return {
		start(sandboxId, ports, startOptions = {}) {
			let memory = memories.get(sandboxId);
			if (memory === undefined) {
				memory = { count: 0, deliveries: new Map(), envdRoot: scratchDir(`dev-sandbox-${sandboxId}-`) };
				memories.set(sandboxId, memory);
			}
			return startDemoSandbox(sandboxId, ports, memory, { ...startOptions, log });
		},
		forget(sandboxId) {
			const root = memories.get(sandboxId)?.envdRoot;
			if (root !== undefined) removeScratch(root);
			memories.delete(sandboxId);
		},
		close() {
			for (const sandboxId of [...memories.keys()]) this.forget(sandboxId);
		},
	};
}

export async function startDemoSandbox(
	sandboxId: string,
	ports: readonly number[],
	memory: DemoMemory = { count: 0, deliveries: new Map() },
	options: StartOptions & { log?: Log } = {},
): Promise<RunningSandbox> {
	for (const port of ports) {
		if (!DEMO_PORTS.includes(port)) throw new Error(`the demo sandbox cannot serve port ${port}`);
	}
	const delayMs = options.portOpenDelayMs ?? 0;
	const late = delayMs > 0 ? ports.filter((port) => port !== ENVD_PORT) : [];
	const servers = new Map<number, ManagedServer>();
	// Live: the node reads it on every request, so a late port is routed to as soon as it listens.
	const listening = new Map<number, number>();
	// Without a root that outlives runs (a direct caller's memory), envd gets one for this run.
	const runRoot =
		memory.envdRoot === undefined && ports.includes(ENVD_PORT) ? scratchDir(`dev-sandbox-${sandboxId}-`) : undefined;
	const envd = { root: memory.envdRoot ?? runRoot ?? "", accessToken: options.envdAccessToken, log: options.log };
	const open = async (port: number) => {
		const server = await startPortServer(sandboxId, port, memory, envd);
		servers.set(port, server);
		listening.set(port, server.port);
	};
	const closeAll = async () => {
		await Promise.all([...servers.values()].map((s) => s.close()));
		if (runRoot !== undefined) removeScratch(runRoot);
	};
	try {
		for (const port of ports) if (!late.includes(port)) await open(port);
	} catch (error) {
		await closeAll();
		throw error;
	}
	if (late.length === 0) return { ports: listening, close: closeAll };

	let closed = false;
	let opening: Promise<void> | undefined;
	const timer = setTimeout(() => {
		opening = (async () => {
			for (const port of late) {
				if (closed) return;
				try {
					await open(port);
					options.log?.(`sandbox ${sandboxId}: port ${port} open after ${delayMs}ms`);
				} catch (error) {
					// The port stays closed, as an app's would if it failed to start.
					options.log?.(`sandbox ${sandboxId}: port ${port} failed to open: ${String(error)}`);
				}
			}
		})();
	}, delayMs);
	return {
		ports: listening,
		async close() {
			closed = true;
			clearTimeout(timer);
			// A port may be opening right now; it must be closed with the rest.
			await opening;
			await closeAll();
		},
	};
}

function startPortServer(
	sandboxId: string,
	port: number,
	memory: DemoMemory,
	envd: { root: string; accessToken: string | undefined; log: Log | undefined },
): Promise<ManagedServer> {
	if (port === 3000) return startWebApp(sandboxId, memory);
	if (port === ENVD_PORT) {
		const { root, accessToken, log } = envd;
		return startEnvdServer({ root, sandboxId, ...(accessToken === undefined ? {} : { accessToken }), log });
	}
	return listen(
		createServer((req, res) => sendJson(res, 200, { sandboxId, port, method: req.method, path: req.url })),
		0,
	);
}

async function startWebApp(sandboxId: string, memory: DemoMemory): Promise<ManagedServer> {
	const wss = new WebSocketServer({ noServer: true });
	wss.on("connection", (ws) => {
		ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
	});

	const server = createServer((req, res) => {
		handleWebApp(sandboxId, memory, req, res).catch((error: unknown) => {
			if (!res.headersSent) sendJson(res, 500, { message: String(error), code: 500 });
			else res.destroy();
		});
	});
	server.on("upgrade", (req, socket, head) => {
		if (pathOf(req) !== "/ws") {
			socket.end("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
			return;
		}
		wss.handleUpgrade(req, socket, head, (ws) => wss.emit("connection", ws, req));
	});

	const managed = await listen(server, 0);
	return {
		port: managed.port,
		async close() {
			for (const client of wss.clients) client.terminate();
			wss.close();
			await managed.close();
		},
	};
}

async function handleWebApp(
	sandboxId: string,
	memory: DemoMemory,
	req: IncomingMessage,
	res: ServerResponse,
): Promise<void> {
	const path = pathOf(req);
	const method = req.method ?? "GET";
	const query = queryOf(req);

	if (path === "/" && (method === "GET" || method === "HEAD")) {
		memory.count += 1;
		const html = renderDemoPage(sandboxId, memory.count);
		res.writeHead(200, {
			"content-type": "text/html; charset=utf-8",
			"content-length": Buffer.byteLength(html),
			"cache-control": "no-store",
		});
		res.end(method === "HEAD" ? undefined : html);
		return;
	}
	if (path === "/count") {
		if (method === "POST") memory.count += 1;
		return sendJson(res, 200, { count: memory.count });
	}
	if (path === "/events") return serveClock(res, query);
	if (path === "/download") return serveDownload(res, query);
	if (path === "/upload" && method !== "GET" && method !== "HEAD") return serveUpload(req, res);
	if (path === "/echo" && method === "POST") return serveEcho(req, res);
	if (path === "/headers") return sendJson(res, 200, headerRecord(req.headers));
	if (path === "/redirect") {
		res.writeHead(302, {
			location: "/",
			"set-cookie": ["a=1; Path=/", "b=2; Path=/"],
			"content-length": 0,
		});
		res.end();
		return;
	}
	if (path === "/cookies") {
		res.setHeader("set-cookie", ["c1=one; Path=/", "c2=two; Path=/; HttpOnly", "c3=three; Path=/; SameSite=Lax"]);
		return sendJson(res, 200, { cookies: 3 });
	}
	const status = /^\/status\/(\d{3})$/.exec(path);
	if (status !== null) return serveStatus(res, Number(status[1]), query);
	if (path === "/deliveries") return serveDeliveries(req, res, memory, query);
	if (path === "/slow") return serveSlow(res, query);
	sendJson(res, 404, { message: `no route for ${method} ${path}`, code: 404 });
}

function intParam(query: URLSearchParams, name: string, fallback: number, min: number, max: number): number | string {
	const raw = query.get(name);
	if (raw === null || raw === "") return fallback;
	const value = Number(raw);
	if (!Number.isInteger(value) || value < min || value > max) {
		return `?${name} must be an integer from ${min} to ${max}`;
	}
	return value;
}

function serveClock(res: ServerResponse, query: URLSearchParams): void {
	const interval = intParam(query, "interval", 1000, 10, 3_600_000);
	const count = intParam(query, "count", 0, 0, Number.MAX_SAFE_INTEGER);
	if (typeof interval === "string") {
		sendJson(res, 400, { message: interval, code: 400 });
		return;
	}
	if (typeof count === "string") {
		sendJson(res, 400, { message: count, code: 400 });
		return;
	}

	res.writeHead(200, {
		"content-type": "text/event-stream; charset=utf-8",
		"cache-control": "no-cache",
		// Tells any buffering proxy in front of us (nginx-style) to pass events through.
		"x-accel-buffering": "no",
	});
	res.flushHeaders();
	let sent = 0;
	const tick = () => {
		res.write(`data: ${new Date().toISOString()}\n\n`);
		sent += 1;
		if (count > 0 && sent >= count) {
			clearInterval(timer);
			res.end();
		}
	};
	const timer = setInterval(tick, interval);
	res.once("close", () => clearInterval(timer));
	tick();
}

function* patternChunks(total: number): Generator<Buffer> {
	for (let remaining = total; remaining > 0; remaining -= CHUNK_BYTES) {
		yield PATTERN.subarray(0, Math.min(CHUNK_BYTES, remaining));
	}
}

function serveDownload(res: ServerResponse, query: URLSearchParams): void {
	const bytes = intParam(query, "bytes", DEFAULT_DOWNLOAD_BYTES, 0, MAX_DOWNLOAD_BYTES);
	if (typeof bytes === "string") {
		sendJson(res, 400, { message: bytes, code: 400 });
		return;
	}
	res.writeHead(200, {
		"content-type": "application/octet-stream",
		"content-length": bytes,
		"x-content-pattern": "byte[i] = i % 256",
	});
	// pipeline gives backpressure and stops generating when the client goes away.
	pipeline(Readable.from(patternChunks(bytes)), res, () => {});
}

async function serveUpload(req: IncomingMessage, res: ServerResponse): Promise<void> {
	const hash = createHash("sha256");
	let bytes = 0;
	for await (const chunk of req) {
		const buf = chunk as Buffer;
		bytes += buf.byteLength;
		hash.update(buf);
	}
	sendJson(res, 200, { bytes, sha256: hash.digest("hex") });
}

/** Streams the request body back as it arrives: only a proxy that streams both ways lets a client converse with it. */
function serveEcho(req: IncomingMessage, res: ServerResponse): void {
	res.writeHead(200, { "content-type": "application/octet-stream", "cache-control": "no-store" });
	res.flushHeaders();
	req.pipe(res);
}

/**
 * Any status, as an app behind the proxy might give it. `?header=name:value`
 * adds a header (an app may forge one); `?body=` replaces the JSON body, sent
 * as `?type=` (default application/json); `?pad=N` makes the body N bytes
 * longer and streams it without a length.
 */
function serveStatus(res: ServerResponse, status: number, query: URLSearchParams): void {
	if (status < 200 || status > 599) {
		sendJson(res, 400, { message: "status must be from 200 to 599", code: 400 });
		return;
	}
	const headers: Record<string, string> = { "content-type": query.get("type") ?? "application/json; charset=utf-8" };
	for (const header of query.getAll("header")) {
		const colon = header.indexOf(":");
		if (colon > 0) headers[header.slice(0, colon).trim().toLowerCase()] = header.slice(colon + 1).trim();
	}
	if (status === 204 || status === 304) {
		res.writeHead(status, headers);
		res.end();
		return;
	}
	const pad = intParam(query, "pad", 0, 0, 16 * MiB);
	if (typeof pad === "string") {
		sendJson(res, 400, { message: pad, code: 400 });
		return;
	}
	const body = query.get("body") ?? JSON.stringify({ status });
	if (pad === 0) {
		res.writeHead(status, { ...headers, "content-length": String(Buffer.byteLength(body)) });
		res.end(body);
		return;
	}
	res.writeHead(status, headers);
	res.write(body);
	res.end(" ".repeat(pad));
}

/**
 * POST counts a delivery under `?key=` and answers after `?ms=`: a request
 * that is cut off in that window has still been delivered. GET reads the count.
 * The count lives in the sandbox's memory, which a pause keeps.
 */
function serveDeliveries(req: IncomingMessage, res: ServerResponse, memory: DemoMemory, query: URLSearchParams): void {
	const key = query.get("key") ?? "";
	if (req.method === "GET") {
		sendJson(res, 200, { key, deliveries: memory.deliveries.get(key) ?? 0 });
		return;
	}
	const ms = intParam(query, "ms", 0, 0, 600_000);
	if (typeof ms === "string") {
		sendJson(res, 400, { message: ms, code: 400 });
		return;
	}
	req.resume();
	req.on("end", () => {
		const deliveries = (memory.deliveries.get(key) ?? 0) + 1;
		memory.deliveries.set(key, deliveries);
		const timer = setTimeout(() => sendJson(res, 200, { key, deliveries }), ms);
		res.once("close", () => clearTimeout(timer));
	});
}

function serveSlow(res: ServerResponse, query: URLSearchParams): void {
	const ms = intParam(query, "ms", 1000, 0, 600_000);
	if (typeof ms === "string") {
		sendJson(res, 400, { message: ms, code: 400 });
		return;
	}
	const timer = setTimeout(() => sendJson(res, 200, { waitedMs: ms }), ms);
	res.once("close", () => clearTimeout(timer));
}
