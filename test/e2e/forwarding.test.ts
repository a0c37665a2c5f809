import { createHash } from "node:crypto";
import { once } from "node:events";
import { PassThrough, Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type E2eStack, freshId, sandboxHost, startE2eStack, startWorker } from "./fixture.ts";
import { echo, fetchVia, openWebSocket, send } from "./http-client.ts";

const MiB = 1024 * 1024;

let env: E2eStack;

beforeAll(async () => {
	env = await startE2eStack();
});
afterAll(async () => {
	await env?.close();
});

async function sandbox(state: "running" | "paused" = "running"): Promise<string> {
	const id = freshId();
	await env.admin.create({ id });
	if (state === "paused") await env.admin.pause(id);
	return id;
}

/** A deterministic body of `size` bytes, produced in chunks as it is read. */
function generatedBody(size: number): { stream: Readable; sha256: string } {
	const chunk = Buffer.alloc(MiB);
	for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 31) & 0xff;
	const hash = createHash("sha256");
	for (let sent = 0; sent < size; sent += chunk.length)
		hash.update(chunk.subarray(0, Math.min(chunk.length, size - sent)));
	let sent = 0;
	const stream = new Readable({
		read() {
			if (sent >= size) return this.push(null);
			const piece = chunk.subarray(0, Math.min(chunk.length, size - sent));
			sent += piece.length;
			this.push(piece);
		},
	});
	return { stream, sha256: hash.digest("hex") };
}

describe("bodies stream through the proxy", () => {
	it("passes a 100 MiB upload", async () => {
		const id = await sandbox();
		const { stream, sha256 } = generatedBody(100 * MiB);
		const response = await fetchVia(env.worker.url, sandboxHost(id), "/upload", {
			method: "POST",
			headers: { "content-type": "application/octet-stream", "content-length": String(100 * MiB) },
			body: stream,
		});
		expect(response.status).toBe(200);
		expect(response.json()).toEqual({ bytes: 100 * MiB, sha256 });
	});

	it("passes a 100 MiB chunked upload to a paused sandbox, waking it", async () => {
		const id = await sandbox("paused");
		const { stream, sha256 } = generatedBody(100 * MiB);
		const response = await fetchVia(env.worker.url, sandboxHost(id), "/upload", { method: "PUT", body: stream });
		expect(response.status).toBe(200);
		expect(response.json()).toEqual({ bytes: 100 * MiB, sha256 });
	});

	it("streams both ways at once: each chunk is echoed before the next is sent", async () => {
		const id = await sandbox();
		const upload = new PassThrough();
		const responding = send(env.worker.url, sandboxHost(id), "/echo", {
			method: "POST",
			headers: { "content-type": "application/octet-stream" },
			body: upload,
		});
		upload.write("ping 1;");
		// The answer starts while the upload is still open: nothing buffered the body.
		const response = await responding;
		const echoed = async () => String((await once(response, "data"))[0]);
		expect(await echoed()).toBe("ping 1;");
		const second = echoed();
		upload.write("ping 2;");
		expect(await second).toBe("ping 2;");
		upload.end();
		response.resume();
		await once(response, "end");
	});

	it("passes a 100 MiB download", async () => {
		const id = await sandbox();
		const response = await send(env.worker.url, sandboxHost(id), `/download?bytes=${100 * MiB}`);
		expect(response.statusCode).toBe(200);
		let bytes = 0;
		for await (const chunk of response) bytes += (chunk as Buffer).length;
		expect(bytes).toBe(100 * MiB);
	});

	it("delivers server-sent events as they are produced, not at the end", async () => {
		const id = await sandbox("paused");
		const response = await send(env.worker.url, sandboxHost(id), "/events?interval=400&count=4");
		expect(response.statusCode).toBe(200);
		expect(response.headers["content-type"]).toContain("text/event-stream");
		const arrivals: number[] = [];
		let text = "";
		for await (const chunk of response) {
			const piece = String(chunk);
			text += piece;
			for (const _ of piece.matchAll(/^data: /gm)) arrivals.push(Date.now());
		}
		expect(arrivals).toHaveLength(4);
		expect(text).toMatch(/^data: \d{4}-\d\d-\d\dT/m);
		// Each event's data is when the app sent it (this process's clock). The
		// first arrived before the app had even sent the last, 1.2 s later:
		// buffered delivery would bring them all after it.
		const sentAt = [...text.matchAll(/^data: (\S+)$/gm)].map((match) => Date.parse(match[1] ?? ""));
		expect(sentAt).toHaveLength(4);
		expect(arrivals[0] ?? Number.POSITIVE_INFINITY).toBeLessThan(sentAt[3] ?? 0);
	});
});

describe("WebSockets", () => {
	it("upgrade through the proxy, including the request that wakes a paused sandbox", async () => {
		const id = await sandbox("paused");
		const socket = await openWebSocket(env.worker.url, sandboxHost(id), "/ws");
		try {
			expect(await echo(socket, "hello through the edge")).toBe("hello through the edge");
			expect(await echo(socket, "x".repeat(100_000))).toHaveLength(100_000);
		} finally {
			socket.close();
		}
		expect((await env.admin.calls()).filter((call) => call.sandboxId === id)).toHaveLength(1);
	});
});

describe("responses come back unchanged", () => {
	it("returns redirects to the client instead of following them, with every Set-Cookie", async () => {
		const id = await sandbox();
		const response = await fetchVia(env.worker.url, sandboxHost(id), "/redirect");
		expect(response.status).toBe(302);
		expect(response.headers.location).toBe("/");
		expect(response.headers["set-cookie"]).toEqual(["a=1; Path=/", "b=2; Path=/"]);
	});

	it("keeps every Set-Cookie header of a response", async () => {
		const id = await sandbox();
		const response = await fetchVia(env.worker.url, sandboxHost(id), "/cookies");
		expect(response.status).toBe(200);
		expect(response.headers["set-cookie"]).toHaveLength(3);
	});

	it("answers HEAD with the sandbox's headers and no body", async () => {
		const id = await sandbox("paused");
		const response = await fetchVia(env.worker.url, sandboxHost(id), "/download?bytes=12345", { method: "HEAD" });
		expect(response.status).toBe(200);
		expect(response.headers["content-length"]).toBe("12345");
		expect(response.body).toHaveLength(0);
		const seen = env.stack.node.requests().filter((r) => r.headers["e2b-sandbox-id"] === id);
		expect(seen.map((r) => r.method)).toEqual(["HEAD"]);
	});

	it("passes other methods and their bodies through", async () => {
		const id = await sandbox();
		const methods = ["PUT", "DELETE", "PATCH", "OPTIONS"];
		for (const method of methods) {
			const response = await fetchVia(env.worker.url, sandboxHost(id), "/upload", { method, body: "abc" });
			expect(response.status).toBe(200);
			expect(response.json()).toMatchObject({ bytes: 3 });
		}
		const seen = env.stack.node.requests().filter((r) => r.headers["e2b-sandbox-id"] === id);
		expect(seen.map((r) => r.method)).toEqual(methods);
	});

	it("passes the sandbox's own error statuses through", async () => {
		const id = await sandbox();
		const response = await fetchVia(env.worker.url, sandboxHost(id), "/status/418");
		expect(response.status).toBe(418);
	});
});

describe("headers the node receives", () => {
	it("sets the routing headers from the host, overwriting the client's, and X-Forwarded-Host", async () => {
		const id = await sandbox();
		const victim = await sandbox();
		const path = `/headers?case=${freshId("forwarded")}`;
		const response = await fetchVia(env.worker.url, sandboxHost(id), path, {
			headers: { "E2b-Sandbox-Id": victim, "E2b-Sandbox-Port": "8080", "x-custom": "kept" },
		});
		expect(response.status).toBe(200);
		const atNode = env.stack.node.requests().filter((r) => r.url === path);
		expect(atNode).toHaveLength(1);
		const sent = atNode[0]?.headers ?? {};
		expect(sent["e2b-sandbox-id"]).toBe(id);
		expect(sent["e2b-sandbox-port"]).toBe("3000");
		expect(sent["x-forwarded-host"]).toBe(sandboxHost(id));
		expect(sent["x-custom"]).toBe("kept");
		// The app gets what E2B's node passes on: the node's Host, and no X-Forwarded-*.
		const atApp = response.json<Record<string, string>>();
		expect(atApp.host).toBe(sent.host);
		expect(atApp["e2b-sandbox-id"]).toBe(id);
		expect(atApp["x-custom"]).toBe("kept");
		expect(atApp["x-forwarded-host"]).toBeUndefined();
		expect(atApp["x-forwarded-proto"]).toBeUndefined();
	});

	// Node's client sends its own Connection, so the names Connection lists are
	// checked in test/unit/forward.test.ts; here, what workerd's fetch() drops.
	it("passes no connection-specific header on", async () => {
		const id = await sandbox();
		const path = `/headers?case=${freshId("hop")}`;
		const response = await fetchVia(env.worker.url, sandboxHost(id), path, {
			headers: {
				"keep-alive": "timeout=5",
				"proxy-connection": "keep-alive",
				"proxy-authorization": "Basic Zm9vOmJhcg==",
				te: "trailers",
				upgrade: "h2c",
				"x-custom": "kept",
			},
		});
		expect(response.status).toBe(200);
		const sent = env.stack.node.requests().find((r) => r.url === path)?.headers ?? {};
		// Some the Worker drops; the others workerd's fetch() drops: either way, none arrives.
		for (const name of ["keep-alive", "proxy-connection", "proxy-authorization", "te", "upgrade"]) {
			expect(sent[name], name).toBeUndefined();
		}
		expect(sent.connection ?? "keep-alive").toMatch(/^(keep-alive|close)$/i);
		expect(sent["x-custom"]).toBe("kept");
	});

	it("routes by header on the development host localhost", async () => {
		const id = await sandbox();
		const response = await fetchVia(env.worker.url, "localhost", "/", {
			headers: { "E2b-Sandbox-Id": id, "E2b-Sandbox-Port": "8080" },
		});
		expect(response.status).toBe(200);
		expect(response.json()).toMatchObject({ sandboxId: id, port: 8080 });
	});
});

describe("private sandboxes", () => {
	it("reach the sandbox only with the traffic token, which the node checks on every request", async () => {
		const id = freshId();
		const created = await env.admin.create({ id, public: false });
		const without = await fetchVia(env.worker.url, sandboxHost(id), "/", { headers: { accept: "application/json" } });
		expect(without.status).toBe(403);
		const withToken = await fetchVia(env.worker.url, sandboxHost(id), "/", {
			headers: { "e2b-traffic-access-token": created.trafficAccessToken ?? "" },
		});
		expect(withToken.status).toBe(200);
		// The route is now cached: a stranger's request still stops at the node.
		const stranger = await fetchVia(env.worker.url, sandboxHost(id), "/", {
			headers: { "e2b-traffic-access-token": "guess" },
		});
		expect(stranger.status).toBe(403);
	});
});

describe("an unreachable node", () => {
	it("gives 502 with the contract's JSON body", async () => {
		const unreachable = await startWorker({ ...env.vars, NODE_ORIGIN_TEMPLATE: "http://{ip}:9" });
		try {
			// Paused: this Worker is not the one the control plane writes to, so it learns the route by resuming.
			const id = await sandbox("paused");
			const response = await fetchVia(unreachable.url, sandboxHost(id), "/", {
				headers: { accept: "application/json" },
			});
			expect(response.status).toBe(502);
			expect(response.json()).toMatchObject({ sandboxId: id, code: 502, reason: "node_unreachable" });
		} finally {
			await unreachable.close();
		}
	});
});

describe("hostile input", () => {
	it.each([
		["0-abc.localhost", "invalid_port"],
		["70000-abc.localhost", "invalid_port"],
		["http-abc.localhost", "invalid_port"],
		["3000-.localhost", "invalid_host"],
		["3000-abc.evil.example", "host_not_served"],
	])("%s gives a 400 (%s)", async (host, reason) => {
		const response = await fetchVia(env.worker.url, host, "/", { headers: { accept: "application/json" } });
		expect(response.status).toBe(400);
		expect(response.json().reason).toBe(reason);
	});
});
