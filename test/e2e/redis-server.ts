// A throwaway redis-server on an ephemeral loopback port, for tests. No
// persistence, its own working directory, stopped (and the directory removed)
// by close().

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface RedisServer {
	port: number;
	/** redis://127.0.0.1:<port>/0 */
	url: string;
	/** What the server printed, for failure messages. */
	output(): string;
	close(): Promise<void>;
}

const START_ATTEMPTS = 5;
const START_TIMEOUT_MS = 10_000;

/**
 * Starts redis-server with `extraArgs` (e.g. `["--notify-keyspace-events", "K$gx"]`), on `fixedPort` if
 * given (to restart a server where its clients expect it), else on a free one.
 */
export async function startRedisServer(extraArgs: string[] = [], fixedPort?: number): Promise<RedisServer> {
	const dir = await mkdtemp(join(tmpdir(), "catalog-bridge-redis-"));
	let lastError: Error | undefined;
	for (let attempt = 0; attempt < (fixedPort === undefined ? START_ATTEMPTS : 1); attempt += 1) {
		const port = fixedPort ?? (await freePort());
		try {
			return await startOn(port, dir, extraArgs);
		} catch (error) {
			lastError = error as Error;
			// Another process took the port between our probe and redis-server's bind: try another.
			if (!/address already in use/i.test(lastError.message)) break;
		}
	}
	await rm(dir, { recursive: true, force: true });
	throw lastError ?? new Error("redis-server did not start");
}

function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const server = createServer();
		server.once("error", reject);
		server.listen(0, "127.0.0.1", () => {
			const address = server.address();
			const port = typeof address === "object" && address !== null ? address.port : 0;
			server.close(() => resolve(port));
		});
	});
}

async function startOn(port: number, dir: string, extraArgs: string[]): Promise<RedisServer> {
	const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir];
	const child = spawn("redis-server", [...args, ...extraArgs], { stdio: ["ignore", "pipe", "pipe"] });
	let output = "";
	const collect = (chunk: Buffer) => {
		output += chunk.toString("utf8");
	};
	child.stdout?.on("data", collect);
	child.stderr?.on("data", collect);
	const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));

	await new Promise<void>((resolve, reject) => {
		const timer = setTimeout(
			() => finish(new Error(`redis-server did not start within ${START_TIMEOUT_MS} ms`)),
			START_TIMEOUT_MS,
		);
		const onData = () => {
			if (output.includes("Ready to accept connections")) finish();
		};
		const onExit = () => finish(new Error(`redis-server exited at startup:\n${output}`));
		const onError = (error: Error) =>
			finish(
				(error as NodeJS.ErrnoException).code === "ENOENT"
					? new Error("redis-server is not installed (apt-get install redis-server; .ci/run does this)")
					: error,
			);
		function finish(error?: Error) {
			clearTimeout(timer);
			child.stdout?.off("data", onData);
			child.off("exit", onExit);
			child.off("error", onError);
			if (error === undefined) resolve();
			else {
				child.kill("SIGKILL");
				reject(error);
			}
		}
		child.stdout?.on("data", onData);
		child.once("exit", onExit);
		child.once("error", onError);
		onData();
	});

	let closing: Promise<void> | undefined;
	return {
		port,
		url: `redis://127.0.0.1:${port}/0`,
		output: () => output,
		close() {
			closing ??= (async () => {
				await stop(child, exited);
				await rm(dir, { recursive: true, force: true });
			})();
			return closing;
		},
	};
}

async function stop(child: ChildProcess, exited: Promise<void>): Promise<void> {
	if (child.exitCode !== null || child.signalCode !== null) return;
	child.kill("SIGTERM");
	const killTimer = setTimeout(() => child.kill("SIGKILL"), 5000);
	await exited;
	clearTimeout(killTimer);
}
