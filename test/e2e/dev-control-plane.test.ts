import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAdminClient } from "../../dev/admin-client.ts";
import { maxConcurrentCalls } from "../../dev/call-overlap.ts";
import { startDemoSandbox } from "../../dev/demo-sandbox.ts";
import type { RecordedCall } from "../../dev/model.ts";
import { type Stack, startStack } from "../../dev/stack.ts";
import { SandboxService } from "../../src/gen/proxy/proxy_pb.ts";
import { apiSecret, freshId } from "./fixture.ts";
import { fetchVia, type Received } from "./http-client.ts";

// The development control plane must answer ResumeSandbox as E2B's API does
// (packages/api/internal/handlers/proxy_grpc.go), or the edge is tested
// against a control plane that no operator runs.
// Long enough that "at once" below can be told from a wait with room to spare
// on a loaded machine.
const transitionWaitMs = 2000;
const resumeDelayMs = 50;
let stack: Stack;
let resume: (sandboxId: string, signal?: AbortSignal) => Promise<string>;

beforeAll(async () => {
	stack = await startStack({
		apiSecret,
		controlPlanePort: 0,
		nodePort: 0,
		resumeDelayMs,
		pauseDelayMs: 50,
		transitionWaitMs,
	});
	const client = createClient(
		SandboxService,
		createGrpcWebTransport({ baseUrl: stack.controlPlaneUrl, httpVersion: "1.1", useBinaryFormat: true }),
	);
	resume = async (sandboxId, signal) =>
		(
			await client.resumeSandbox(
				{ sandboxId },
				{
					headers: { "x-e2b-client-proxy-auth": apiSecret, "e2b-sandbox-request-port": "3000" },
					...(signal === undefined ? {} : { signal }),
				},
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

	it("takes E2B's composite ID, <id>-<client ID>, as utils.ShortID does, and nothing with more dashes", async () => {
		const id = freshId();
		await stack.controlPlane.sandboxes.create({ id });
		await stack.controlPlane.sandboxes.pause(id);
		expect(await resume(`${id}-legacyclient`)).toBe("127.0.0.1");
		expect(stack.controlPlane.sandboxes.get(id)?.state).toBe("running");
		expect(await refusal(`${id}-legacy-client`)).toEqual({ code: Code.InvalidArgument, message: "invalid sandbox ID" });
		expect(await refusal(`${id.toUpperCase()}-x`)).toEqual({
			code: Code.InvalidArgument,
			message: "invalid sandbox ID",
		});
	});

	it("returns the node of a running sandbox that has a snapshot, at once", async () => {
		const id = freshId();
		await stack.controlPlane.sandboxes.create({ id });
		await stack.controlPlane.sandboxes.pause(id);
		await stack.controlPlane.sandboxes.resume(id);
		const started = Date.now();
		expect(await resume(id)).toBe("127.0.0.1");
		// Neither a resume's delay nor a transition's wait.
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

/** Fails instead of waiting: a node that hangs is as wrong as one that answers wrongly. */
function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
	let timer: NodeJS.Timeout | undefined;
	const timeout = new Promise<never>((_, reject) => {
		timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms}ms`)), ms);
	});
	return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function until(what: string, condition: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
	const deadline = Date.now() + ms;
	while (!(await condition())) {
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
		await new Promise((resolve) => setTimeout(resolve, 20));
	}
}

describe("a sandbox whose app ports open late (portOpenDelayMs)", () => {
	// Long enough for a start or a resume and three answers from the node
	// inside the window, even on a loaded machine.
	const portOpenDelayMs = 3000;

	/** Straight to the node, as the edge sends it. */
	function viaNode(sandboxId: string, port: number, path = "/"): Promise<Received> {
		const node = new URL(stack.node.origin);
		const headers = { "e2b-sandbox-id": sandboxId, "e2b-sandbox-port": String(port), accept: "application/json" };
		return within(5000, fetchVia(node, node.host, path, { headers }), `the node, for ${sandboxId}:${port}`);
	}

	/** From `since`, when the sandbox started or resumed: closed app ports, an open envd, then open app ports. */
	async function expectPortsToOpenLate(sandboxId: string, since: number): Promise<void> {
		for (const port of [3000, 8080]) {
			const answer = await viaNode(sandboxId, port);
			expect(answer.status).toBe(502);
			// E2B's port-closed answer: the sandbox is there, so not "The sandbox was not found".
			expect(answer.json()).toEqual({
				sandboxId,
				message: "The sandbox is running but port is not open",
				port,
				code: 502,
			});
		}
		expect((await viaNode(sandboxId, 49983, "/health")).status).toBe(204);
		// Otherwise the answers above did not come from inside the window.
		expect(Date.now() - since).toBeLessThan(portOpenDelayMs);

		await until(
			`port 3000 of ${sandboxId} to open`,
			async () => (await viaNode(sandboxId, 3000)).status === 200,
			portOpenDelayMs + 10_000,
		);
		// Timers may round a millisecond down.
		expect(Date.now() - since).toBeGreaterThanOrEqual(portOpenDelayMs - 2);
		expect((await viaNode(sandboxId, 8080)).status).toBe(200);
	}

	it("answers port-closed for them after the sandbox is created, until they open", async () => {
		const id = freshId();
		const started = Date.now();
		const created = await stack.controlPlane.sandboxes.create({ id, portOpenDelayMs });
		expect(created).toMatchObject({ state: "running", portOpenDelayMs });
		await expectPortsToOpenLate(id, started);
	});

	it("answers port-closed for them after each resume, which is not delayed", async () => {
		const id = freshId();
		await stack.controlPlane.sandboxes.create({ id, portOpenDelayMs });
		for (let round = 0; round < 2; round++) {
			await stack.controlPlane.sandboxes.pause(id);
			const started = Date.now();
			expect(await resume(id)).toBe("127.0.0.1");
			// Not held until the ports open.
			expect(Date.now() - started).toBeLessThan(portOpenDelayMs);
			await expectPortsToOpenLate(id, started);
		}
	});

	it("never opens them once the sandbox has stopped", async () => {
		// Long enough that it is stopped well before its ports would open.
		const delay = { portOpenDelayMs: 1000 };
		const running = await startDemoSandbox("early", [3000, 49983], undefined, delay);
		// Started after it with the same delay, so its port opens after the
		// stopped one's would have: once it has, the stopped one has had its chance.
		const witness = await startDemoSandbox("witness", [3000, 49983], undefined, delay);
		try {
			expect([...running.ports.keys()]).toEqual([49983]);
			await running.close();
			await until("the witness's port to open", () => witness.ports.has(3000));
			expect([...running.ports.keys()]).toEqual([49983]);
		} finally {
			await witness.close();
		}
	});
});

describe("recorded ResumeSandbox calls", () => {
	const callsFor = (id: string) => stack.controlPlane.calls().filter((call) => call.sandboxId === id);

	it("say when each call finished, so that overlapping calls can be counted", async () => {
		const id = freshId();
		await stack.controlPlane.sandboxes.create({ id });
		await stack.controlPlane.sandboxes.pause(id);
		// Long enough that all four arrive while it goes on, and within the transition wait.
		const slowResumeMs = transitionWaitMs / 2;
		stack.controlPlane.sandboxes.setDelays({ resumeDelayMs: slowResumeMs });
		try {
			await Promise.all([1, 2, 3, 4].map(() => resume(id)));
		} finally {
			stack.controlPlane.sandboxes.setDelays({ resumeDelayMs });
		}
		const together = callsFor(id);
		expect(together).toHaveLength(4);
		// Each waited for the one resume, which the first call started: finishedAt
		// is the answer's end, not the request's.
		const firstAt = Math.min(...together.map((call) => call.at));
		for (const call of together) expect(call.finishedAt ?? 0).toBeGreaterThanOrEqual(firstAt + slowResumeMs - 50);
		expect(maxConcurrentCalls(together)).toBe(4);

		// Calls made one after another never overlap, however quickly each is answered.
		for (let i = 0; i < 5; i++) await resume(id);
		const oneByOne = callsFor(id).slice(4);
		expect(oneByOne).toHaveLength(5);
		expect(maxConcurrentCalls(oneByOne)).toBe(1);

		// The admin API reports them too.
		const overHttp = (await createAdminClient(stack.controlPlaneUrl).calls()).filter((c) => c.sandboxId === id);
		expect(overHttp.map((call) => call.finishedAt)).toEqual(callsFor(id).map((call) => call.finishedAt));
	});

	it("finish when the caller goes away from a call that never answers", async () => {
		const id = freshId();
		await stack.controlPlane.sandboxes.create({ id });
		await stack.controlPlane.sandboxes.pause(id);
		stack.controlPlane.setFault({ hang: true, sandboxId: id, times: 1 });
		const abandon = new AbortController();
		const call = resume(id, abandon.signal).catch(() => "abandoned");
		await until("the call to be recorded", () => callsFor(id).length === 1);
		await new Promise((resolve) => setTimeout(resolve, 100));
		const inFlight = callsFor(id)[0];
		expect(inFlight?.finishedAt).toBeUndefined();
		expect(maxConcurrentCalls([...callsFor(id), ...callsFor(id)])).toBe(2);

		const abandonedAt = Date.now();
		abandon.abort();
		expect(await call).toBe("abandoned");
		await until("the call to finish", () => callsFor(id)[0]?.finishedAt !== undefined);
		const recorded = callsFor(id)[0] as RecordedCall;
		expect(recorded.finishedAt).toBeGreaterThanOrEqual(abandonedAt - 5);
		// What a caller read earlier stays as it was.
		expect(inFlight?.finishedAt).toBeUndefined();
	});
});

describe("maxConcurrentCalls", () => {
	const call = (at: number, finishedAt?: number): RecordedCall => ({
		sandboxId: "x",
		protocol: "grpc-web",
		headers: {},
		at,
		...(finishedAt === undefined ? {} : { finishedAt }),
	});

	it("counts the most calls in flight at one moment", () => {
		expect(maxConcurrentCalls([])).toBe(0);
		expect(maxConcurrentCalls([call(0, 10)])).toBe(1);
		expect(maxConcurrentCalls([call(0, 10), call(5, 15), call(12, 20)])).toBe(2);
		expect(maxConcurrentCalls([call(0, 100), call(10, 20), call(15, 30), call(18, 19)])).toBe(4);
		expect(maxConcurrentCalls([call(30, 40), call(0, 35), call(10, 20)])).toBe(2);
	});

	it("takes a call that ends as another starts as not overlapping it", () => {
		expect(maxConcurrentCalls([call(0, 10), call(10, 20), call(20, 30)])).toBe(1);
	});

	it("counts calls that took no time, and calls still in flight", () => {
		expect(maxConcurrentCalls([call(0, 10), call(5, 5)])).toBe(2);
		expect(maxConcurrentCalls([call(5, 5), call(5, 5)])).toBe(2);
		expect(maxConcurrentCalls([call(0), call(1000, 1001)])).toBe(2);
		expect(maxConcurrentCalls([call(0), call(1)])).toBe(2);
	});
});

describe("the recorded calls, over the admin API", () => {
	it("say that the secret and the callers' tokens were sent, without showing them", async () => {
		const id = freshId();
		const client = createClient(
			SandboxService,
			createGrpcWebTransport({ baseUrl: stack.controlPlaneUrl, httpVersion: "1.1", useBinaryFormat: true }),
		);
		await client
			.resumeSandbox(
				{ sandboxId: id },
				{
					headers: {
						"x-e2b-client-proxy-auth": apiSecret,
						"e2b-sandbox-request-port": "3000",
						"e2b-traffic-access-token": "traffic-token-value",
						"e2b-envd-access-token": "envd-token-value",
					},
				},
			)
			.catch(() => undefined);
		const listed = (await createAdminClient(stack.controlPlaneUrl).calls()).find((call) => call.sandboxId === id);
		expect(listed?.headers).toMatchObject({
			"x-e2b-client-proxy-auth": "(present)",
			"e2b-traffic-access-token": "(present)",
			"e2b-envd-access-token": "(present)",
		});
		expect(JSON.stringify(listed)).not.toMatch(/traffic-token-value|envd-token-value|e2e-secret/);
	});
});
