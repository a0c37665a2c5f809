import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Stack, startStack } from "../../dev/stack.ts";
import { SandboxService } from "../../src/gen/proxy/proxy_pb.ts";
import { apiSecret, freshId } from "./fixture.ts";

// The development control plane must answer ResumeSandbox as E2B's API does
// (packages/api/internal/handlers/proxy_grpc.go), or the edge is tested
// against a control plane that no operator runs.
const transitionWaitMs = 400;
let stack: Stack;
let resume: (sandboxId: string) => Promise<string>;

beforeAll(async () => {
	stack = await startStack({
		apiSecret,
		controlPlanePort: 0,
		nodePort: 0,
		resumeDelayMs: 50,
		pauseDelayMs: 50,
		transitionWaitMs,
	});
	const client = createClient(
		SandboxService,
		createGrpcWebTransport({ baseUrl: stack.controlPlaneUrl, httpVersion: "1.1", useBinaryFormat: true }),
	);
	resume = async (sandboxId) =>
		(
			await client.resumeSandbox(
				{ sandboxId },
				{ headers: { "x-e2b-client-proxy-auth": apiSecret, "e2b-sandbox-request-port": "3000" } },
			)
		).orchestratorIp;
});
afterAll(async () => {
	await stack?.close();
});

async function refusal(sandboxId: string): Promise<{ code: Code; message: string }> {
	try {
		await resume(sandboxId);
	} catch (error) {
		const connectError = ConnectError.from(error);
		return { code: connectError.code, message: connectError.rawMessage };
	}
	throw new Error(`expected ${sandboxId} to be refused`);
}

describe("the development control plane's ResumeSandbox, as E2B's", () => {
	it("answers NotFound for a running sandbox that has never been paused: there is no snapshot", async () => {
		const id = freshId();
		await stack.controlPlane.sandboxes.create({ id });
		expect(await refusal(id)).toEqual({ code: Code.NotFound, message: "snapshot not found" });
	});

	it("answers NotFound for a paused sandbox whose auto-resume is off, and leaves it paused", async () => {
		const id = freshId();
		await stack.controlPlane.sandboxes.create({ id, autoResume: false });
		await stack.controlPlane.sandboxes.pause(id);
		expect(await refusal(id)).toEqual({ code: Code.NotFound, message: "sandbox auto-resume disabled" });
		expect(stack.controlPlane.sandboxes.get(id)?.state).toBe("paused");
	});

	it("answers NotFound for an unknown or killed sandbox, InvalidArgument for a malformed ID", async () => {
		expect((await refusal(freshId("nosuch"))).code).toBe(Code.NotFound);
		const id = freshId();
		await stack.controlPlane.sandboxes.create({ id });
		await stack.controlPlane.sandboxes.pause(id);
		await stack.controlPlane.sandboxes.kill(id);
		expect((await refusal(id)).code).toBe(Code.NotFound);
		expect(await refusal("Not-An-ID")).toEqual({ code: Code.InvalidArgument, message: "invalid sandbox ID" });
	});

	it("returns the node of a running sandbox that has a snapshot, at once", async () => {
		const id = freshId();
		await stack.controlPlane.sandboxes.create({ id });
		await stack.controlPlane.sandboxes.pause(id);
		await stack.controlPlane.sandboxes.resume(id);
		const started = Date.now();
		expect(await resume(id)).toBe("127.0.0.1");
		expect(Date.now() - started).toBeLessThan(transitionWaitMs);
	});

	it("resumes a paused sandbox and returns its node", async () => {
		const id = freshId();
		await stack.controlPlane.sandboxes.create({ id });
		await stack.controlPlane.sandboxes.pause(id);
		expect(await resume(id)).toBe("127.0.0.1");
		expect(stack.controlPlane.sandboxes.get(id)?.state).toBe("running");
	});

	it("waits out a pause in progress, then resumes the sandbox", async () => {
		const id = freshId();
		await stack.controlPlane.sandboxes.create({ id });
		stack.controlPlane.sandboxes.setDelays({ pauseDelayMs: transitionWaitMs / 2 });
		try {
			const pausing = stack.controlPlane.sandboxes.pause(id);
			expect(stack.controlPlane.sandboxes.get(id)?.state).toBe("pausing");
			expect(await resume(id)).toBe("127.0.0.1");
			await pausing;
			expect(stack.controlPlane.sandboxes.get(id)?.state).toBe("running");
		} finally {
			stack.controlPlane.sandboxes.setDelays({ pauseDelayMs: 50 });
		}
	});

	it("answers 'still transitioning' when the pause outlasts its wait", async () => {
		const id = freshId();
		await stack.controlPlane.sandboxes.create({ id, state: "pausing" });
		const started = Date.now();
		expect(await refusal(id)).toEqual({ code: Code.FailedPrecondition, message: "sandbox is still transitioning" });
		expect(Date.now() - started).toBeGreaterThanOrEqual(transitionWaitMs - 50);
	});
});
