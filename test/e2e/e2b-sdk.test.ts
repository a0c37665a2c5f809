import { createHash, randomBytes } from "node:crypto";
import { Sandbox, SandboxNotFoundError, TimeoutError } from "e2b";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_REST_API_KEY } from "../../dev/rest-api.ts";
import { type E2eStack, startE2eStack } from "./fixture.ts";

// E2B's own SDK, the `e2b` package, pinned and unmodified: its API calls go
// to the development control plane's REST API, and all its sandbox traffic
// (envd on port 49983) through the Worker in workerd, on the shared host with
// E2b-Sandbox-Id and E2b-Sandbox-Port, as it reaches E2B's edge.

let env: E2eStack;
let connection: { apiKey: string; apiUrl: string; sandboxUrl: string; domain: string; requestTimeoutMs: number };

beforeAll(async () => {
	env = await startE2eStack({ resumeDelayMs: 300 });
	connection = {
		apiKey: DEFAULT_REST_API_KEY,
		apiUrl: env.stack.controlPlaneUrl,
		// The edge itself: an IP literal host, which the Worker routes on the
		// SDK's E2b-Sandbox-* headers in development, as E2B's shared host does.
		sandboxUrl: env.worker.url.origin,
		domain: "localhost",
		requestTimeoutMs: 30_000,
	};
});
afterAll(async () => {
	await env?.close();
});

function resumeCallsFor(sandboxId: string) {
	return env.stack.controlPlane.calls().filter((call) => call.sandboxId === sandboxId);
}

describe("the E2B SDK through the edge", () => {
	it("creates a sandbox, writes a file, reads it back and lists its directory", async () => {
		const sandbox = await Sandbox.create({ ...connection, timeoutMs: 60_000 });
		try {
			await sandbox.files.write("/home/user/hello.txt", "hello from the SDK\n");
			expect(await sandbox.files.read("/home/user/hello.txt")).toBe("hello from the SDK\n");
			await sandbox.files.makeDir("/home/user/dir");
			const names = (await sandbox.files.list("/home/user")).map((entry) => entry.name).sort();
			expect(names).toEqual(expect.arrayContaining(["dir", "hello.txt"]));
			// Every envd call went through the edge: the Worker logged each one, for port 49983.
			const throughEdge = env.worker
				.logText()
				.split("\n")
				.filter((line) => line.includes('"event":"request"') && line.includes(`"sandboxId":"${sandbox.sandboxId}"`));
			expect(throughEdge.length).toBeGreaterThanOrEqual(4);
			for (const line of throughEdge) expect(line).toContain('"port":49983');
		} finally {
			await sandbox.kill();
		}
	});

	it("streams a command's output, each line before the command ends, and its exit code", async () => {
		const sandbox = await Sandbox.create({ ...connection, timeoutMs: 60_000 });
		try {
			// After each line the command waits until the test has read it, and
			// written (through the edge) the file it waits for: output held back
			// until the command ends would never let it end, only its timeout.
			const lines: string[] = [];
			const writes: Promise<unknown>[] = [];
			const result = await sandbox.commands.run(
				"for i in 1 2 3; do echo line $i; while [ ! -e streamed-$i ]; do sleep 0.02; done; done",
				{
					timeoutMs: 30_000,
					onStdout: (data) => {
						for (const text of data.split("\n").filter((line) => line !== "")) {
							lines.push(text);
							writes.push(sandbox.files.write(`/home/user/streamed-${lines.length}`, ""));
						}
					},
				},
			);
			await Promise.all(writes);
			expect(result.exitCode).toBe(0);
			expect(lines).toEqual(["line 1", "line 2", "line 3"]);
			const failed = await sandbox.commands.run("exit 3").catch((error: { exitCode?: number }) => error);
			expect(failed.exitCode).toBe(3);
		} finally {
			await sandbox.kill();
		}
	});

	it("uploads and downloads 50 MiB intact", async () => {
		const sandbox = await Sandbox.create({ ...connection, timeoutMs: 120_000 });
		try {
			const data = randomBytes(50 * 1024 * 1024);
			const digest = createHash("sha256").update(data).digest("hex");
			await sandbox.files.write(
				"/home/user/big.bin",
				data.buffer.slice(data.byteOffset, data.byteOffset + data.length),
			);
			const back = await sandbox.files.read("/home/user/big.bin", { format: "bytes" });
			expect(back.byteLength).toBe(data.length);
			expect(createHash("sha256").update(back).digest("hex")).toBe(digest);
		} finally {
			await sandbox.kill();
		}
	}, 120_000);

	it("pauses through the SDK, and a file read through the edge wakes it with one ResumeSandbox call", async () => {
		const sandbox = await Sandbox.create({
			...connection,
			timeoutMs: 60_000,
			lifecycle: { onTimeout: "pause", autoResume: true },
		});
		try {
			await sandbox.files.write("/home/user/kept.txt", "still here\n");
			expect(await sandbox.betaPause()).toBe(true);
			expect((await env.admin.get(sandbox.sandboxId)).state).toBe("paused");
			expect(resumeCallsFor(sandbox.sandboxId)).toHaveLength(0);

			expect(await sandbox.files.read("/home/user/kept.txt")).toBe("still here\n");
			expect(resumeCallsFor(sandbox.sandboxId)).toHaveLength(1);
			expect((await env.admin.get(sandbox.sandboxId)).state).toBe("running");
		} finally {
			await sandbox.kill();
		}
	});

	it("reaches a secure sandbox with the SDK's envd token, and is refused without it", async () => {
		const sandbox = await Sandbox.create({ ...connection, timeoutMs: 60_000, secure: true });
		try {
			await sandbox.files.write("/home/user/secret.txt", "for the owner\n");
			expect(await sandbox.files.read("/home/user/secret.txt")).toBe("for the owner\n");
			// The same sandbox, as a client without its token would reach it.
			const stranger = await fetch(`${connection.sandboxUrl}/files?path=/home/user/secret.txt`, {
				headers: { "E2b-Sandbox-Id": sandbox.sandboxId, "E2b-Sandbox-Port": "49983" },
			});
			expect(stranger.status).toBe(401);
			expect(await stranger.text()).not.toContain("for the owner");
		} finally {
			await sandbox.kill();
		}
	});

	it("gets the SDK's own not-found error after a kill", async () => {
		const sandbox = await Sandbox.create({ ...connection, timeoutMs: 60_000 });
		await sandbox.files.write("/home/user/x.txt", "x");
		await sandbox.kill();
		// Through the edge: the node no longer holds it, and the control plane does not know it.
		// The SDK reads the edge's 502 as it reads E2B's own edge's: its TimeoutError, with its text.
		const read = await sandbox.files.read("/home/user/x.txt").catch((thrown: unknown) => thrown);
		expect(read).toBeInstanceOf(TimeoutError);
		expect((read as Error).message).toMatch(/^The sandbox was not found: This error is likely due to sandbox timeout/);
		const error = await Sandbox.connect(sandbox.sandboxId, connection).catch((thrown: unknown) => thrown);
		expect(error).toBeInstanceOf(SandboxNotFoundError);
		// The SDK's own text for a connect's 404.
		expect((error as Error).message).toBe(`Paused sandbox ${sandbox.sandboxId} not found`);
	});
});
