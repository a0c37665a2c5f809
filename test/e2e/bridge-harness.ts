// What the catalog bridge's end-to-end tests share: the edge behind a
// recording switch, and the bridge's CLI as a child process.

import { type ChildProcess, spawn } from "node:child_process";
import { createServer, type IncomingMessage, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";

export const bridgeCli = fileURLToPath(new URL("../../bridge/cli.ts", import.meta.url));

export interface SentBatch {
	put: { sandbox_id: string; execution_id: string; [field: string]: unknown }[];
	delete: { sandbox_id: string; execution_id: string }[];
	/** When the Worker's answer came back. */
	at: number;
}

/**
 * Forwards to the Worker, Host header and all, and records every batch the
 * Worker answered. While "down", it resets connections, as an unreachable edge
 * would.
 */
export interface EdgeSwitch {
	/** http://edge.localhost:<port>: the bridge resolves *.localhost itself. */
	origin: string;
	setDown(down: boolean): void;
	batches(): SentBatch[];
	/** Requests refused while down. */
	refused(): number;
	close(): Promise<void>;
}

export async function startEdgeSwitch(worker: URL): Promise<EdgeSwitch> {
	let down = false;
	let refused = 0;
	const batches: SentBatch[] = [];
	const server: Server = createServer((req, res) => {
		if (down) {
			refused += 1;
			req.socket.destroy();
			return;
		}
		void readAll(req).then((body) => {
			const upstream = request(
				{ host: worker.hostname, port: worker.port, method: req.method, path: req.url, headers: req.headers },
				(answer) => {
					void readAll(answer).then((text) => {
						if (req.url === "/v1/sandboxes/batch" && answer.statusCode === 200) {
							batches.push({ ...(JSON.parse(body) as Omit<SentBatch, "at">), at: Date.now() });
						}
						res.writeHead(answer.statusCode ?? 502, answer.headers);
						res.end(text);
					});
				},
			);
			upstream.on("error", () => res.destroy());
			upstream.end(body);
		});
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	const port = (server.address() as AddressInfo).port;
	return {
		origin: `http://edge.localhost:${port}`,
		setDown: (value) => {
			down = value;
			// Kept-alive connections would otherwise still reach the Worker.
			if (down) server.closeAllConnections();
		},
		batches: () => batches,
		refused: () => refused,
		close: () =>
			new Promise<void>((resolve) => {
				server.close(() => resolve());
				server.closeAllConnections();
			}),
	};
}

async function readAll(stream: IncomingMessage): Promise<string> {
	const chunks: Buffer[] = [];
	for await (const chunk of stream) chunks.push(chunk as Buffer);
	return Buffer.concat(chunks).toString("utf8");
}

/** The environment for the bridge's CLI: this process's, with the secret, and `overrides` (undefined removes). */
export function childEnv(catalogSecret: string, overrides: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
	const childEnvironment: NodeJS.ProcessEnv = { ...process.env, CATALOG_SECRET: catalogSecret };
	for (const [name, value] of Object.entries(overrides)) {
		if (value === undefined) delete childEnvironment[name];
		else childEnvironment[name] = value;
	}
	return childEnvironment;
}

export interface RunningChild {
	pid: number | undefined;
	output(): string;
	signal(signal: NodeJS.Signals): void;
	/** SIGTERM, then its exit code. */
	stop(): Promise<number | null>;
}

export function spawnBridge(args: string[], catalogSecret: string): RunningChild {
	const child: ChildProcess = spawn(process.execPath, [bridgeCli, ...args], {
		env: childEnv(catalogSecret),
		stdio: ["ignore", "pipe", "pipe"],
	});
	let output = "";
	const collect = (chunk: Buffer) => {
		output += chunk.toString("utf8");
	};
	child.stdout?.on("data", collect);
	child.stderr?.on("data", collect);
	const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
	return {
		pid: child.pid,
		output: () => output,
		signal: (signal) => {
			child.kill(signal);
		},
		async stop() {
			if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
			const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
			const code = await exited;
			clearTimeout(timer);
			return code;
		},
	};
}
