import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { unstable_readConfig } from "wrangler";
import { type E2eStack, freshId, sandboxHost, startE2eStack } from "./fixture.ts";
import { fetchVia } from "./http-client.ts";

// The edges of a request: what a client claims about itself, how long its
// body may take, and how the Worker is deployed.

let env: E2eStack;
const bodyIdleTimeoutMs = 1000;

beforeAll(async () => {
	env = await startE2eStack({ workerVars: { BODY_IDLE_TIMEOUT_MS: String(bodyIdleTimeoutMs) } });
});
afterAll(async () => {
	await env?.close();
});

async function runningSandbox(): Promise<string> {
	const id = freshId();
	await env.admin.create({ id });
	return id;
}

describe("the client's address", () => {
	it("reaches the node as CF-Connecting-IP gives it, whatever X-Forwarded-For and X-Real-IP the client sent", async () => {
		const id = await runningSandbox();
		const path = `/headers?case=${freshId("address")}`;
		const response = await fetchVia(env.worker.url, sandboxHost(id), path, {
			headers: { "x-forwarded-for": "10.9.8.7, 1.2.3.4", "x-real-ip": "10.9.8.7", "cf-connecting-ip": "203.0.113.8" },
		});
		expect(response.status).toBe(200);
		const atNode = env.stack.node.requests().filter((r) => r.url === path);
		expect(atNode).toHaveLength(1);
		expect(atNode[0]?.headers).toMatchObject({ "x-forwarded-for": "203.0.113.8", "x-real-ip": "203.0.113.8" });
		// E2B's node drops X-Forwarded-* on the way to the app, as Go's ReverseProxy does with a Rewrite hook.
		const atApp = response.json<Record<string, string>>();
		expect(atApp["x-real-ip"]).toBe("203.0.113.8");
		expect(atApp["x-forwarded-for"]).toBeUndefined();
		expect(atApp["x-forwarded-host"]).toBeUndefined();
		expect(atApp["x-forwarded-proto"]).toBeUndefined();
	});

	it("never passes on a client's own claims about its address, scheme, host, port or path", async () => {
		const id = await runningSandbox();
		const path = `/headers?case=${freshId("forged")}`;
		const forged = {
			forwarded: "for=10.9.8.7;proto=https;host=admin.example.com",
			"true-client-ip": "10.9.8.7",
			"x-client-ip": "10.9.8.7",
			"x-cluster-client-ip": "10.9.8.7",
			"x-forwarded-port": "443",
			"x-forwarded-server": "admin.example.com",
			"x-forwarded-scheme": "https",
			"x-forwarded-ssl": "on",
			"x-forwarded-prefix": "/admin",
			"x-original-url": "/admin",
			"x-rewrite-url": "/admin",
			"x-original-host": "admin.example.com",
			"x-forwarded-host": "admin.example.com",
			"x-forwarded-proto": "https",
		};
		const response = await fetchVia(env.worker.url, sandboxHost(id), path, {
			headers: { ...forged, "cf-connecting-ip": "203.0.113.8" },
		});
		expect(response.status).toBe(200);
		const atNode = env.stack.node.requests().find((r) => r.url === path)?.headers ?? {};
		const atApp = response.json<Record<string, string>>();
		for (const name of Object.keys(forged)) {
			expect(atApp[name], `${name} at the app`).not.toBe(forged[name as keyof typeof forged]);
			expect(atNode[name], `${name} at the node`).not.toBe(forged[name as keyof typeof forged]);
		}
		// What the edge does set, from what it knows.
		expect(atNode).toMatchObject({ "x-forwarded-host": sandboxHost(id), "x-forwarded-proto": "http" });
	});
});

describe("a body on GET or HEAD", () => {
	it.each(["GET", "HEAD"])(
		"is the client's error (400) on %s, never the node's: nothing is doubted or woken",
		async (method) => {
			const id = await runningSandbox();
			const path = `/headers?case=${freshId("getbody")}`;
			const response = await fetchVia(env.worker.url, sandboxHost(id), path, {
				method,
				headers: { accept: "application/json" },
				body: "x",
			});
			expect(response.status).toBe(400);
			if (method === "GET") expect(response.json()).toMatchObject({ reason: "request_body_not_allowed" });
			expect(env.stack.node.requests().filter((r) => r.url === path)).toHaveLength(0);
			expect(env.stack.controlPlane.calls().filter((c) => c.sandboxId === id)).toHaveLength(0);
			expect(env.worker.logText()).not.toMatch(new RegExp(`"stale_route"[^\\n]*${id}`));
		},
	);

	it("with Content-Length: 0 is no body, and passes", async () => {
		const id = await runningSandbox();
		const response = await fetchVia(env.worker.url, sandboxHost(id), "/headers", {
			headers: { "content-length": "0" },
		});
		expect(response.status).toBe(200);
	});

	it("leaves a bystander unaffected: GETs with 1 MiB bodies beside normal requests to the same sandbox", async () => {
		const id = await runningSandbox();
		const big = Buffer.alloc(1024 * 1024, 0x61);
		const hostile = Array.from({ length: 20 }, () =>
			fetchVia(env.worker.url, sandboxHost(id), "/", { headers: { accept: "application/json" }, body: big }).then(
				(r) => r.status,
				() => "reset",
			),
		);
		const bystander: number[] = [];
		for (let i = 0; i < 20; i++) {
			bystander.push((await fetchVia(env.worker.url, sandboxHost(id), `/headers?i=${i}`)).status);
		}
		const refused = await Promise.all(hostile);
		expect(bystander).toEqual(Array(20).fill(200));
		expect(refused.every((status) => status === 400 || status === "reset")).toBe(true);
		expect(refused.filter((status) => status === 400).length).toBeGreaterThan(0);
		expect(env.stack.controlPlane.calls().filter((c) => c.sandboxId === id)).toHaveLength(0);
	});
});

describe("native gRPC", () => {
	it("is answered UNIMPLEMENTED, as a gRPC client reads it, before any sandbox is woken or reached", async () => {
		const id = await runningSandbox();
		await env.admin.pause(id);
		await env.admin.resetCalls();
		const path = `/pkg.Service/Method?case=${freshId("grpc")}`;
		const response = await fetchVia(env.worker.url, sandboxHost(id, 50051), path, {
			method: "POST",
			headers: { "content-type": "application/grpc", te: "trailers" },
			body: Buffer.from([0, 0, 0, 0, 0]),
		});
		expect(response.status).toBe(200);
		expect(response.headers["grpc-status"]).toBe("12");
		expect(decodeURIComponent(String(response.headers["grpc-message"]))).toContain("use gRPC-web or Connect");
		expect(await env.admin.calls()).toHaveLength(0);
		expect(env.stack.node.requests().filter((r) => r.url === path)).toHaveLength(0);
	});
});

describe("access tokens", () => {
	it.each(["x-access-token", "e2b-traffic-access-token"])(
		"that are far too long are refused on the hot path too (%s), before the node sees them",
		async (header) => {
			const id = await runningSandbox();
			const key = freshId("key");
			// Warm: the route is cached, so no resume would read the tokens.
			expect((await fetchVia(env.worker.url, sandboxHost(id), "/headers")).status).toBe(200);
			const response = await fetchVia(env.worker.url, sandboxHost(id), `/deliveries?key=${key}`, {
				method: "POST",
				headers: { [header]: "t".repeat(5000), accept: "application/json" },
			});
			expect(response.status).toBe(400);
			expect(response.json()).toMatchObject({ reason: "invalid_access_token" });
			const deliveries = await fetchVia(env.worker.url, sandboxHost(id), `/deliveries?key=${key}`);
			expect(deliveries.json()).toMatchObject({ deliveries: 0 });
		},
	);
});

describe("a request body that stalls", () => {
	/** Sends the head and the first bytes of a body, then nothing more, and returns the answer. */
	function stall(host: string, path: string, headers: Record<string, string>, firstBytes: Buffer) {
		return new Promise<{ status: number; body: string; elapsedMs: number }>((resolve, reject) => {
			const started = Date.now();
			const req = request(
				{
					host: env.worker.url.hostname,
					port: env.worker.url.port,
					path,
					method: "POST",
					headers: { host, accept: "application/json", ...headers },
					agent: false,
				},
				(res) => {
					const chunks: Buffer[] = [];
					res.on("data", (chunk: Buffer) => chunks.push(chunk));
					res.on("end", () => {
						resolve({
							status: res.statusCode ?? 0,
							body: Buffer.concat(chunks).toString(),
							elapsedMs: Date.now() - started,
						});
						req.destroy();
					});
				},
			);
			req.on("error", reject);
			req.write(firstBytes);
		});
	}

	it.each([
		["a small body, read before it is sent", { "content-length": "1000" }, Buffer.alloc(10, 1)],
		["a large body, streamed", { "content-length": String(4 << 20) }, Buffer.alloc(256 * 1024, 1)],
		["a chunked body", { "transfer-encoding": "chunked" }, Buffer.from("0123456789")],
	])(
		"is given up after BODY_IDLE_TIMEOUT_MS: %s gets a 408, and the app never sees it whole",
		async (_, headers, firstBytes) => {
			const id = await runningSandbox();
			const key = freshId("key");
			const answer = await stall(sandboxHost(id), `/deliveries?key=${key}`, headers, firstBytes);
			expect(answer.status, answer.body).toBe(408);
			expect(JSON.parse(answer.body)).toMatchObject({ reason: "request_body_timeout", sandboxId: id });
			expect(answer.elapsedMs).toBeGreaterThanOrEqual(bodyIdleTimeoutMs - 50);
			// Given up by this setting, not the default's 30 s; the margin is for a loaded machine.
			expect(answer.elapsedMs).toBeLessThan(bodyIdleTimeoutMs + 15_000);
			// The app counts a delivery once a body ends: a cut body must not look whole.
			const deliveries = await fetchVia(env.worker.url, sandboxHost(id), `/deliveries?key=${key}`);
			expect(deliveries.json()).toMatchObject({ deliveries: 0 });
		},
	);
});

describe("deploys", () => {
	const root = new URL("../..", import.meta.url).pathname;
	const local = unstable_readConfig({ config: `${root}wrangler.toml` });
	const production = unstable_readConfig({ config: `${root}wrangler.toml`, env: "production" });

	it("keep the local Worker's name apart from production's, so a plain `wrangler deploy` cannot replace it", () => {
		expect(local.name).not.toBe(production.name);
		expect(production.name).toBe("sandbox-edge-proxy");
		expect(local.workers_dev).toBe(false);
	});

	it("give production an https control plane, no development mode, and every binding", () => {
		expect(String(production.vars.CONTROL_PLANE_URL)).toMatch(/^https:\/\//);
		expect(production.vars.ENVIRONMENT ?? "production").toBe("production");
		const names = (bindings: readonly { name: string }[]) => bindings.map((binding) => binding.name).sort();
		expect(names(production.durable_objects.bindings)).toEqual(names(local.durable_objects.bindings));
		expect(names(production.durable_objects.bindings)).toEqual(["CONTROL_PLANE_TOKEN", "SANDBOX_ROUTE"]);
		expect(names(production.ratelimits)).toEqual(names(local.ratelimits));
	});
});
