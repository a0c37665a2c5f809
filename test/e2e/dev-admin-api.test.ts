import { execFile } from "node:child_process";
import { connect } from "node:net";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AdminClient, createAdminClient } from "../../dev/admin-client.ts";
import { type Stack, startStack } from "../../dev/stack.ts";
import { apiSecret, freshId } from "./fixture.ts";
import { fetchVia, type Received } from "./http-client.ts";

// The admin API drives every sandbox and has no credentials; a web page the
// developer visits must not be able to drive it, whether by a cross-site
// request or by rebinding a DNS name of its own to 127.0.0.1.
let stack: Stack;
let admin: AdminClient;
let base: URL;

beforeAll(async () => {
	stack = await startStack({ apiSecret, controlPlanePort: 0, nodePort: 0, resumeDelayMs: 50, pauseDelayMs: 50 });
	admin = createAdminClient(stack.controlPlaneUrl);
	base = new URL(stack.controlPlaneUrl);
});
afterAll(async () => {
	await stack?.close();
});

const loopback = () => `127.0.0.1:${base.port}`;

function request(method: string, path: string, host: string, headers: Record<string, string> = {}, body?: string) {
	return fetchVia(base, host, path, { method, headers, ...(body === undefined ? {} : { body }) });
}

/** A request exactly as written, for what Node's client will not send: no Host, or two. */
function raw(head: string): Promise<string> {
	return new Promise((resolve, reject) => {
		const socket = connect(Number(base.port), "127.0.0.1", () => socket.end(`${head}\r\n\r\n`));
		let answer = "";
		socket.on("data", (chunk) => {
			answer += String(chunk);
		});
		socket.on("end", () => resolve(answer));
		socket.on("error", reject);
	});
}

function expectRefusal(answer: Received, status: number, reason: string, what?: string): void {
	expect(answer.status, what).toBe(status);
	expect(answer.headers["content-type"]).toMatch(/^application\/json/);
	expect(answer.json()).toMatchObject({ code: status, reason });
	expect(answer.json().message).toEqual(expect.any(String));
}

describe("the admin API's Host check, against DNS rebinding", () => {
	it("answers loopback hosts, with or without a port", async () => {
		for (const host of ["localhost", `localhost:${base.port}`, "LocalHost", loopback(), "127.0.0.1", "127.8.9.10:1"]) {
			expect((await request("GET", "/admin/sandboxes", host)).status, host).toBe(200);
		}
		for (const host of ["[::1]", `[::1]:${base.port}`]) {
			expect((await request("GET", "/admin/fault", host)).status, host).toBe(200);
		}
	});

	it("refuses any other Host with 403 host_not_loopback, on every route and method", async () => {
		const hosts = [
			"evil.example",
			`evil.example:${base.port}`,
			"localhost.evil.example",
			"127.0.0.1.evil.example",
			"128.0.0.1",
			"127.0.0.256",
			"[::2]",
			"0.0.0.0",
		];
		for (const host of hosts) {
			expectRefusal(await request("GET", "/admin/sandboxes", host), 403, "host_not_loopback", host);
		}
		const id = freshId();
		const create = await request(
			"POST",
			"/admin/sandboxes",
			"rebound.evil.example",
			{ "content-type": "application/json" },
			JSON.stringify({ id }),
		);
		expectRefusal(create, 403, "host_not_loopback");
		expect(create.json().message).toContain("rebound.evil.example");
		expect(stack.controlPlane.sandboxes.get(id)).toBeUndefined();
		for (const path of ["/admin", "/admin/calls", "/admin/fault", "/admin/no-such-route"]) {
			expectRefusal(await request("GET", path, "evil.example"), 403, "host_not_loopback");
		}
	});

	it("refuses a request with no Host, an empty one, or two", async () => {
		const none = await raw("GET /admin/sandboxes HTTP/1.0");
		expect(none).toMatch(/^HTTP\/1\.1 403 /);
		expect(none).toContain('"reason": "host_not_loopback"');
		const empty = await raw("GET /admin/sandboxes HTTP/1.1\r\nHost: \r\nConnection: close");
		expect(empty).toMatch(/^HTTP\/1\.1 403 /);
		const two = await raw(
			`GET /admin/sandboxes HTTP/1.1\r\nHost: ${loopback()}\r\nHost: evil.example\r\nConnection: close`,
		);
		expect(two).toMatch(/^HTTP\/1\.1 403 /);
		expect(two).toContain('"reason": "host_not_loopback"');
	});
});

describe("the admin API's content-type check, against cross-site requests", () => {
	it("refuses a state change without Content-Type: application/json with 415, and changes nothing", async () => {
		const id = freshId();
		for (const type of [undefined, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]) {
			const headers: Record<string, string> = type === undefined ? {} : { "content-type": type };
			const answer = await request("POST", "/admin/sandboxes", loopback(), headers, JSON.stringify({ id }));
			expectRefusal(answer, 415, "json_content_type_required");
		}
		expect(stack.controlPlane.sandboxes.get(id)).toBeUndefined();

		// Bodiless actions too: a form or an <img> could otherwise pause a sandbox.
		await stack.controlPlane.sandboxes.create({ id });
		expectRefusal(await request("POST", `/admin/sandboxes/${id}/pause`, loopback()), 415, "json_content_type_required");
		expectRefusal(await request("POST", `/admin/sandboxes/${id}/kill`, loopback()), 415, "json_content_type_required");
		expectRefusal(await request("DELETE", `/admin/sandboxes/${id}`, loopback()), 415, "json_content_type_required");
		expect(stack.controlPlane.sandboxes.get(id)?.state).toBe("running");

		const fault = JSON.stringify({ code: "Unavailable" });
		expectRefusal(
			await request("PUT", "/admin/fault", loopback(), { "content-type": "text/plain" }, fault),
			415,
			"json_content_type_required",
		);
		expect(stack.controlPlane.fault()).toBeUndefined();
		expectRefusal(await request("DELETE", "/admin/calls", loopback()), 415, "json_content_type_required");
	});

	it("takes application/json with parameters and in any case, with or without a body", async () => {
		const id = freshId();
		const created = await request(
			"POST",
			"/admin/sandboxes",
			loopback(),
			{ "content-type": "Application/JSON; charset=utf-8" },
			JSON.stringify({ id }),
		);
		expect(created.status).toBe(201);
		const paused = await request("POST", `/admin/sandboxes/${id}/pause`, loopback(), {
			"content-type": "application/json",
		});
		expect(paused.status).toBe(200);
		expect(paused.json().state).toBe("paused");
	});

	it("is what the admin client sends, body or not", async () => {
		const id = freshId();
		await admin.create({ id });
		await admin.pause(id);
		await admin.resume(id);
		await admin.kill(id);
		await admin.remove(id);
		await admin.setFault({ code: "Unavailable", sandboxId: id });
		await admin.clearFault();
		await admin.resetCalls();
		expect(stack.controlPlane.sandboxes.get(id)).toBeUndefined();
	});
});

describe("access tokens in the sandbox list", () => {
	it("are left out of the list unless asked for; one sandbox's answer still has them", async () => {
		const id = freshId();
		const created = await admin.create({ id, public: false, secure: true });
		expect(created.trafficAccessToken).toEqual(expect.any(String));
		expect(created.envdAccessToken).toEqual(expect.any(String));

		const listed = (await admin.list()).find((s) => s.id === id);
		expect(listed).toMatchObject({ id, public: false, secure: true });
		expect(listed).not.toHaveProperty("trafficAccessToken");
		expect(listed).not.toHaveProperty("envdAccessToken");
		const plain = await request("GET", "/admin/sandboxes", loopback());
		expect(plain.text).not.toContain(created.trafficAccessToken);
		expect(plain.text).not.toContain(created.envdAccessToken);

		const withTokens = (await admin.list({ tokens: true })).find((s) => s.id === id);
		expect(withTokens?.trafficAccessToken).toBe(created.trafficAccessToken);
		expect(withTokens?.envdAccessToken).toBe(created.envdAccessToken);
		expect((await request("GET", "/admin/sandboxes?tokens=1", loopback())).text).toContain(created.envdAccessToken);

		const one = await admin.get(id);
		expect(one.trafficAccessToken).toBe(created.trafficAccessToken);
		expect(one.envdAccessToken).toBe(created.envdAccessToken);
	});

	it("are printed by `list` only with --tokens", async () => {
		const id = freshId();
		const created = await admin.create({ id, public: false, secure: true });
		const plain = await cli("list");
		expect(plain).toContain(id);
		expect(plain).not.toContain(created.trafficAccessToken);
		expect(plain).not.toContain(created.envdAccessToken);
		expect(plain).toMatch(new RegExp(`${id}\\s+running\\s+yes\\s+private\\s+yes`));

		const withTokens = await cli("list", "--tokens");
		expect(withTokens).toContain(created.trafficAccessToken);
		expect(withTokens).toContain(created.envdAccessToken);
	});
});

describe("creating a sandbox whose ports open late", () => {
	it("takes portOpenDelayMs on the API and --port-open-delay-ms in the CLI", async () => {
		const viaApi = freshId();
		expect((await admin.create({ id: viaApi, portOpenDelayMs: 300 })).portOpenDelayMs).toBe(300);
		const bad = await request(
			"POST",
			"/admin/sandboxes",
			loopback(),
			{ "content-type": "application/json" },
			JSON.stringify({ portOpenDelayMs: -1 }),
		);
		expect(bad.status).toBe(400);
		expect(bad.json().message).toContain("portOpenDelayMs");

		const viaCli = freshId();
		expect(await cli("create", viaCli, "--port-open-delay-ms", "700")).toContain("open 700ms after each start");
		expect(stack.controlPlane.sandboxes.get(viaCli)?.portOpenDelayMs).toBe(700);
		await expect(cli("create", freshId(), "--port-open-delay-ms", "soon")).rejects.toMatchObject({ code: 2 });
	});
});

const cliPath = fileURLToPath(new URL("../../dev/cli.ts", import.meta.url));

/** `npm run sandbox -- <args>`, against this stack. */
async function cli(...args: string[]): Promise<string> {
	const { stdout } = await promisify(execFile)(process.execPath, [cliPath, ...args], {
		env: { ...process.env, CONTROL_PLANE_ADMIN_URL: stack.controlPlaneUrl },
	});
	return stdout;
}
