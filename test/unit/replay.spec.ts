/**
 * The Worker's resend after a node's "sandbox not here", counted where it
 * lands: every request to a node reaches the fake upstream
 * (test/unit/fake-upstream.ts), which records it. So a test sees whether
 * a request was sent to the new node exactly once, never, or twice.
 */
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { freshSandboxId, nodeDeliveries, resumeCalls, scriptNode, scriptResume } from "./upstream.ts";
import type { NodeAnswer } from "./upstream-model.ts";

const jsonHeaders = { accept: "application/json", "user-agent": "curl/8.5.0" };

let nodeCounter = 0;
/**
 * Two node IPs that no other test scripts, where the route points and where
 * the wake puts the sandbox: from TEST-NET-1, which the fake control plane's
 * unscripted answers never give.
 */
function nodePair(): { oldNode: string; newNode: string } {
	nodeCounter += 1;
	return { oldNode: `192.0.2.${2 * nodeCounter}`, newNode: `192.0.2.${2 * nodeCounter + 1}` };
}

/** The control plane pushes the sandbox's route, as it does when a sandbox starts. */
async function pushRoute(sandboxId: string, nodeIp: string): Promise<void> {
	const response = await exports.default.fetch(
		new Request(`http://edge.localhost/v1/sandboxes/${sandboxId}`, {
			method: "PUT",
			headers: { authorization: `Bearer ${env.CATALOG_SECRET}`, "content-type": "application/json" },
			body: JSON.stringify({ orchestrator_ip: nodeIp, execution_id: "exec-1", ttl_seconds: 3600 }),
		}),
	);
	expect(response.status).toBe(204);
}

type RouteKind = "pushed" | "learned";

/**
 * A sandbox whose catalog route points at `oldNode`, which from now on
 * answers `oldNodeSays`; a resume puts it on `newNode`, which echoes.
 * A learned route comes from a first wake, whose request `oldNode` served.
 */
async function sandboxThatMoved(kind: RouteKind, oldNodeSays: NodeAnswer, newNodeSays: NodeAnswer = { kind: "echo" }) {
	const sandboxId = freshSandboxId(`replay${kind}`);
	const { oldNode, newNode } = nodePair();
	await scriptNode({ ip: newNode, answers: [newNodeSays] });
	if (kind === "pushed") {
		await pushRoute(sandboxId, oldNode);
		await scriptResume({ sandboxId, answers: [{ kind: "ok", ip: newNode }] });
		await scriptNode({ ip: oldNode, answers: [oldNodeSays] });
	} else {
		await scriptResume({
			sandboxId,
			answers: [
				{ kind: "ok", ip: oldNode },
				{ kind: "ok", ip: newNode },
			],
		});
		await scriptNode({ ip: oldNode, answers: [{ kind: "echo" }, oldNodeSays] });
		const first = await send(sandboxId, "/first");
		expect(first.status).toBe(200);
		await first.arrayBuffer();
	}
	const before = {
		resumes: (await resumeCalls(sandboxId)).length,
		oldNode: (await nodeDeliveries(oldNode)).length,
	};
	return { sandboxId, oldNode, newNode, before };
}

function send(sandboxId: string, path: string, init: RequestInit = {}): Promise<Response> {
	return exports.default.fetch(
		new Request(`http://3000-${sandboxId}.localhost${path}`, {
			...init,
			headers: { ...jsonHeaders, "cf-connecting-ip": "203.0.113.7", ...(init.headers as Record<string, string>) },
		}),
	);
}

/** Bytes whose every position is distinct enough that a truncated or shifted copy is seen. */
function pattern(length: number): string {
	let text = "";
	for (let i = 0; text.length < length; i++) text += `${i.toString(36)},`;
	return text.slice(0, length);
}

describe("a request the old node refused as 'not here' is sent to the new node exactly once", () => {
	it.each([
		["pushed", "header"],
		["pushed", "json"],
		["pushed", "html"],
		["learned", "header"],
		["learned", "json"],
	] as const)("GET, %s route, not-here as %s", async (kind, form) => {
		const moved = await sandboxThatMoved(kind, { kind: "notHere", form });

		const response = await send(moved.sandboxId, "/page?x=1");
		expect(response.status).toBe(200);
		expect(await response.json()).toMatchObject({ node: moved.newNode, path: "/page?x=1" });

		const old = (await nodeDeliveries(moved.oldNode)).slice(moved.before.oldNode);
		const fresh = await nodeDeliveries(moved.newNode);
		expect(old.map((record) => new URL(record.url).pathname)).toEqual(["/page"]);
		expect(fresh.map((record) => new URL(record.url).pathname)).toEqual(["/page"]);
		// Woken with one call.
		expect(await resumeCalls(moved.sandboxId)).toHaveLength(moved.before.resumes + 1);
	});

	it.each([
		["a small body", 1000],
		["a body of exactly 64 KiB, the most that is buffered", 64 * 1024],
	])("POST with %s: the same bytes, once more", async (_label, length) => {
		const moved = await sandboxThatMoved("pushed", { kind: "notHere", form: "json" });
		const body = pattern(length);

		const response = await send(moved.sandboxId, "/upload", { method: "POST", body });
		expect(response.status).toBe(200);
		await response.arrayBuffer();

		const old = await nodeDeliveries(moved.oldNode);
		const fresh = await nodeDeliveries(moved.newNode);
		expect(old).toHaveLength(1);
		expect(fresh).toHaveLength(1);
		expect(fresh[0]?.method).toBe("POST");
		expect(fresh[0]?.bodyBytes).toBe(length);
		expect(fresh[0]?.body).toBe(body);
		expect(old[0]?.body).toBe(body);
	});

	it("HEAD, whose not-here is known by its Content-Length alone", async () => {
		const moved = await sandboxThatMoved("pushed", { kind: "notHere", form: "json" });
		const response = await send(moved.sandboxId, "/", { method: "HEAD" });
		expect(response.status).toBe(200);
		expect(await nodeDeliveries(moved.oldNode)).toHaveLength(1);
		expect((await nodeDeliveries(moved.newNode)).map((record) => record.method)).toEqual(["HEAD"]);
	});

	it("DELETE, whatever its method: the node answered before it dialed anything", async () => {
		const moved = await sandboxThatMoved("learned", { kind: "notHere", form: "header" });
		const response = await send(moved.sandboxId, "/items/7", { method: "DELETE" });
		expect(response.status).toBe(200);
		expect((await nodeDeliveries(moved.newNode)).map((record) => record.method)).toEqual(["DELETE"]);
	});
});

describe("a request is never sent more than twice, nor again when it cannot be", () => {
	it("gives up after the new node also says 'not here': two deliveries in all, and a 502", async () => {
		const moved = await sandboxThatMoved(
			"pushed",
			{ kind: "notHere", form: "header" },
			{ kind: "notHere", form: "json" },
		);
		const response = await send(moved.sandboxId, "/", { method: "POST", body: "abc" });
		expect(response.status).toBe(502);
		expect(await response.json()).toMatchObject({ reason: "sandbox_not_found", sandboxId: moved.sandboxId });
		expect(await nodeDeliveries(moved.oldNode)).toHaveLength(1);
		expect(await nodeDeliveries(moved.newNode)).toHaveLength(1);
		expect(await resumeCalls(moved.sandboxId)).toHaveLength(1);
	});

	it.each([
		["a body one byte over 64 KiB", () => pattern(64 * 1024 + 1)],
		[
			"a streamed body without Content-Length",
			() => {
				const chunks = [pattern(1000), pattern(2000)];
				return new ReadableStream<Uint8Array>({
					pull(controller) {
						const chunk = chunks.shift();
						if (chunk === undefined) controller.close();
						else controller.enqueue(new TextEncoder().encode(chunk));
					},
				});
			},
		],
	] as const)(
		"does not send %s again: 503 request_not_replayable, and the sandbox is awake for the retry",
		async (_label, body) => {
			const moved = await sandboxThatMoved("pushed", { kind: "notHere", form: "header" });

			const response = await send(moved.sandboxId, "/upload", { method: "POST", body: body() });
			expect(response.status).toBe(503);
			expect(response.headers.get("retry-after")).toBe("1");
			expect(await response.json()).toMatchObject({ reason: "request_not_replayable" });
			expect(await nodeDeliveries(moved.oldNode)).toHaveLength(1);
			expect(await nodeDeliveries(moved.newNode)).toHaveLength(0);
			// The Worker woke the sandbox meanwhile: the retry goes straight to the new node.
			expect(await resumeCalls(moved.sandboxId)).toHaveLength(1);

			const retry = await send(moved.sandboxId, "/upload", { method: "POST", body: "again" });
			expect(retry.status).toBe(200);
			await retry.arrayBuffer();
			expect((await nodeDeliveries(moved.newNode)).map((record) => record.body)).toEqual(["again"]);
			expect(await resumeCalls(moved.sandboxId)).toHaveLength(1);
		},
	);

	it.each([
		["a plain 502", { kind: "raw", status: 502, contentType: "text/plain", body: "bad gateway" }],
		["E2B's port-closed answer", { kind: "portClosed" }],
		[
			"a not-here page naming another sandbox",
			{
				kind: "raw",
				status: 502,
				contentType: "application/json",
				body: JSON.stringify({ sandboxId: "someoneelse", message: "The sandbox was not found", code: 502 }),
			},
		],
	] as const)("passes %s on to the client, sent once, with no wake", async (_label, answer) => {
		const moved = await sandboxThatMoved("pushed", answer);
		const response = await send(moved.sandboxId, "/", { method: "POST", body: "once" });
		expect(response.status).toBe(502);
		expect(response.headers.get("x-fake-node")).toBe(moved.oldNode);
		await response.arrayBuffer();
		expect((await nodeDeliveries(moved.oldNode)).map((record) => record.body)).toEqual(["once"]);
		expect(await nodeDeliveries(moved.newNode)).toHaveLength(0);
		expect(await resumeCalls(moved.sandboxId)).toHaveLength(0);
	});
});
