// Clients for what autocannon does not measure: many requests sent at one
// instant with their time to first byte, long transfers, and WebSocket round
// trips. Node's own http client and the `ws` package.
import { Agent, request } from "node:http";
import WebSocket from "ws";
import { cpuSecondsOf, type MemoryGrowth, watchMemory } from "./proc.ts";
import { ascending } from "./stats.ts";

export interface Target {
	url: URL;
	pid: number;
}

export interface BurstRequest {
	host: string;
	path: string;
	headers?: Record<string, string>;
}

export interface BurstResult {
	/** Per request, in the order given: status, ms to the response's head, ms to its end. */
	answers: { status: number; firstByteMs: number; doneMs: number }[];
	/** From the first request sent to the last answer's end. */
	batchMs: number;
}

/**
 * Connections opened beforehand, one per request of the burst, so that a
 * burst measures the Workers and not a storm of TCP handshakes on loopback
 * (whose SYN backlog would add whole seconds to some of them, on either side).
 */
export async function warmAgent(target: Target, count: number, host: string, path: string): Promise<Agent> {
	const agent = new Agent({ keepAlive: true, maxSockets: count, maxFreeSockets: count, keepAliveMsecs: 30_000 });
	const warm = await burst(
		target,
		Array.from({ length: count }, () => ({ host, path })),
		agent,
	);
	const failed = warm.answers.filter((answer) => answer.status !== 200).length;
	if (failed > 0) throw new Error(`warming ${count} connections: ${failed} answers were not 200`);
	return agent;
}

/** Sends every request at once (in one tick), each on a connection of its own. */
export function burst(target: Target, requests: readonly BurstRequest[], agent: Agent | false): Promise<BurstResult> {
	const started = performance.now();
	return new Promise((resolve, reject) => {
		const answers: BurstResult["answers"] = [];
		let left = requests.length;
		requests.forEach((spec, index) => {
			const sent = performance.now();
			const req = request(
				{
					host: target.url.hostname,
					port: target.url.port,
					path: spec.path,
					agent,
					headers: { host: spec.host, ...spec.headers },
				},
				(res) => {
					const firstByteMs = performance.now() - sent;
					res.resume();
					res.on("end", () => {
						answers[index] = { status: res.statusCode ?? 0, firstByteMs, doneMs: performance.now() - sent };
						left -= 1;
						if (left === 0) resolve({ answers, batchMs: performance.now() - started });
					});
				},
			);
			req.on("error", reject);
			req.end();
		});
		if (requests.length === 0) resolve({ answers, batchMs: 0 });
	});
}

export function firstBytesMs(result: BurstResult): number[] {
	return ascending(result.answers.map((answer) => answer.firstByteMs));
}

export interface TransferResult {
	bytes: number;
	seconds: number;
	cpuSeconds: number;
	memory: MemoryGrowth;
}

/**
 * Times one transfer through the target, with the CPU its workerd spent
 * and how its memory grew meanwhile; `run` gives the bytes it counted.
 */
async function measured(target: Target, run: () => Promise<number>): Promise<TransferResult> {
	const cpuBefore = cpuSecondsOf(target.pid);
	const memory = watchMemory(target.pid);
	const started = performance.now();
	let bytes: number;
	let growth: MemoryGrowth;
	try {
		bytes = await run();
	} finally {
		growth = memory.stop();
	}
	return {
		bytes,
		seconds: (performance.now() - started) / 1000,
		cpuSeconds: cpuSecondsOf(target.pid) - cpuBefore,
		memory: growth,
	};
}

/** Downloads `bytes` through the target, counting what arrives. */
export function download(target: Target, host: string, bytes: number): Promise<TransferResult> {
	return measured(target, async () => {
		let received = 0;
		await new Promise<void>((resolve, reject) => {
			const req = request(
				{
					host: target.url.hostname,
					port: target.url.port,
					path: `/download?bytes=${bytes}`,
					agent: false,
					headers: { host },
				},
				(res) => {
					if (res.statusCode !== 200) reject(new Error(`download: status ${res.statusCode}`));
					res.on("data", (data: Buffer) => {
						received += data.length;
					});
					res.on("end", resolve);
					res.on("error", reject);
				},
			);
			req.on("error", reject);
			req.end();
		});
		return received;
	});
}

/** Uploads `bytes` with a Content-Length; `bytes` in the result is what the node says it read. */
export function upload(target: Target, host: string, bytes: number): Promise<TransferResult> {
	const chunk = Buffer.alloc(256 * 1024, 0x62);
	return measured(target, async () => {
		let nodeRead = -1;
		await new Promise<void>((resolve, reject) => {
			const req = request(
				{
					host: target.url.hostname,
					port: target.url.port,
					method: "POST",
					path: "/upload",
					agent: false,
					headers: { host, "content-length": String(bytes), "content-type": "application/octet-stream" },
				},
				(res) => {
					let text = "";
					res.setEncoding("utf8");
					res.on("data", (data: string) => {
						text += data;
					});
					res.on("end", () => {
						if (res.statusCode !== 200) return reject(new Error(`upload: status ${res.statusCode}: ${text}`));
						nodeRead = (JSON.parse(text) as { bytes: number }).bytes;
						resolve();
					});
				},
			);
			req.on("error", reject);
			let sent = 0;
			const write = () => {
				while (sent < bytes) {
					const piece = bytes - sent >= chunk.length ? chunk : chunk.subarray(0, bytes - sent);
					sent += piece.length;
					if (!req.write(piece)) return void req.once("drain", write);
				}
				req.end();
			};
			write();
		});
		return nodeRead;
	});
}

export interface EchoResult {
	/** Echoes that came back equal to what was sent. */
	echoes: number;
	seconds: number;
	cpuSeconds: number;
}

/** Opens one WebSocket and makes `count` round trips on it, one after another. */
export async function echoes(target: Target, host: string, count: number): Promise<EchoResult> {
	const socket = new WebSocket(`ws://${target.url.host}/ws`, { headers: { host } });
	await new Promise<void>((resolve, reject) => {
		socket.once("open", () => resolve());
		socket.once("error", reject);
		socket.once("unexpected-response", (_req, res) =>
			reject(new Error(`WebSocket upgrade refused: ${res.statusCode}`)),
		);
	});
	const cpuBefore = cpuSecondsOf(target.pid);
	const started = performance.now();
	let matched = 0;
	try {
		await new Promise<void>((resolve, reject) => {
			let sent = 0;
			const sendNext = () => {
				sent += 1;
				socket.send(`echo ${sent} ${"x".repeat(16)}`);
			};
			socket.on("message", (data) => {
				if (String(data) === `echo ${sent} ${"x".repeat(16)}`) matched += 1;
				if (sent < count) sendNext();
				else resolve();
			});
			socket.once("error", reject);
			socket.once("close", () => (sent < count ? reject(new Error("the WebSocket closed early")) : resolve()));
			sendNext();
		});
	} finally {
		socket.close();
	}
	return {
		echoes: matched,
		seconds: (performance.now() - started) / 1000,
		cpuSeconds: cpuSecondsOf(target.pid) - cpuBefore,
	};
}
