// The development envd as each demo sandbox serves it on port 49983, reached
// through the development node (E2b-Sandbox-Id / E2b-Sandbox-Port): every
// sandbox has its own scratch root, kept across a pause and resume, removed
// when the sandbox is killed or the stack closes; a secure sandbox's envd
// checks its envd access token.

import { existsSync } from "node:fs";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type Stack, startStack } from "../../dev/stack.ts";
import { Process } from "../../src/gen/envd/process/process_pb.ts";
import { apiSecret, freshId } from "./fixture.ts";

let stack: Stack;
let node: string;

beforeAll(async () => {
	stack = await startStack({ apiSecret, controlPlanePort: 0, nodePort: 0, resumeDelayMs: 50, pauseDelayMs: 50 });
	node = stack.node.origin;
});
afterAll(async () => {
	await stack?.close();
});

function envdHeaders(sandboxId: string, token?: string): Record<string, string> {
	return {
		"e2b-sandbox-id": sandboxId,
		"e2b-sandbox-port": "49983",
		...(token === undefined ? {} : { "x-access-token": token }),
	};
}

function processClient(sandboxId: string, token?: string, origin = node) {
	const headers = envdHeaders(sandboxId, token);
	return createClient(
		Process,
		createConnectTransport({
			baseUrl: origin,
			httpVersion: "1.1",
			interceptors: [
				(next) => (req) => {
					for (const [name, value] of Object.entries(headers)) req.header.set(name, value);
					return next(req);
				},
			],
		}),
	);
}

/** Runs a command in the sandbox and answers its stdout. */
async function run(sandboxId: string, command: string, token?: string, origin = node): Promise<string> {
	let out = "";
	for await (const { event } of processClient(sandboxId, token, origin).start({
		process: { cmd: "/bin/bash", args: ["-l", "-c", command] },
		stdin: false,
	})) {
		if (event?.event.case === "data" && event.event.value.output.case === "stdout") {
			out += Buffer.from(event.event.value.output.value).toString("utf8");
		}
	}
	return out;
}

async function upload(sandboxId: string, path: string, text: string, token?: string): Promise<Response> {
	return fetch(`${node}/files?path=${encodeURIComponent(path)}`, {
		method: "POST",
		headers: { ...envdHeaders(sandboxId, token), "content-type": "application/octet-stream" },
		body: text,
	});
}

async function download(sandboxId: string, path: string, token?: string): Promise<Response> {
	return fetch(`${node}/files?path=${encodeURIComponent(path)}`, { headers: envdHeaders(sandboxId, token) });
}

it("serves envd on 49983, keeps the sandbox's files across a pause and resume, and removes them when it is killed", async () => {
	const id = freshId("envd");
	await stack.controlPlane.sandboxes.create({ id });
	expect((await fetch(`${node}/health`, { headers: envdHeaders(id) })).status).toBe(204);
	expect((await upload(id, "/home/user/kept.txt", "written before the pause")).status).toBe(200);
	const home = (await run(id, "pwd")).trim();
	expect(home).toMatch(/\/home\/user$/);
	expect(existsSync(home)).toBe(true);

	await stack.controlPlane.sandboxes.pause(id);
	expect((await fetch(`${node}/health`, { headers: envdHeaders(id) })).status).toBe(502);
	await stack.controlPlane.sandboxes.resume(id);
	expect(await (await download(id, "/home/user/kept.txt")).text()).toBe("written before the pause");
	expect(await run(id, "cat kept.txt")).toBe("written before the pause");

	// Each sandbox has its own root.
	const other = freshId("envd");
	await stack.controlPlane.sandboxes.create({ id: other });
	expect((await download(other, "/home/user/kept.txt")).status).toBe(404);

	await stack.controlPlane.sandboxes.kill(id);
	expect(existsSync(home)).toBe(false);
	expect(existsSync((await run(other, "pwd")).trim())).toBe(true);
});

it("checks a secure sandbox's envd access token", async () => {
	const id = freshId("envdsec");
	const view = await stack.controlPlane.sandboxes.create({ id, secure: true });
	const token = view.envdAccessToken;
	expect(token).toBeDefined();
	expect((await fetch(`${node}/health`, { headers: envdHeaders(id) })).status).toBe(204);
	const refused = await fetch(`${node}/process.Process/List`, {
		method: "POST",
		headers: { ...envdHeaders(id), "content-type": "application/json" },
		body: "{}",
	});
	expect(refused.status).toBe(401);
	expect(await refused.json()).toMatchObject({ code: 401 });
	expect((await upload(id, "s.txt", "x")).status).toBe(401);
	try {
		await run(id, "true", "not-the-token");
		throw new Error("expected a refusal");
	} catch (error) {
		expect(ConnectError.from(error).code).toBe(Code.Unauthenticated);
	}
	expect((await upload(id, "s.txt", "secret", token)).status).toBe(200);
	expect(await run(id, "cat s.txt", token)).toBe("secret");
});

it("removes every sandbox's root when the stack closes, a paused one's too", async () => {
	const own = await startStack({ apiSecret, controlPlanePort: 0, nodePort: 0, resumeDelayMs: 50, pauseDelayMs: 50 });
	const homes: string[] = [];
	try {
		const ids = [freshId("envdclose"), freshId("envdclose")];
		for (const id of ids) {
			await own.controlPlane.sandboxes.create({ id });
			homes.push((await run(id, "pwd", undefined, own.node.origin)).trim());
		}
		await own.controlPlane.sandboxes.pause(ids[0] ?? "");
		for (const home of homes) expect(existsSync(home)).toBe(true);
	} finally {
		await own.close();
	}
	expect(homes).toHaveLength(2);
	for (const home of homes) expect(existsSync(home)).toBe(false);
});
