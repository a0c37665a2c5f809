import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { RouteStore } from "../../src/catalog/route-store.ts";
import { notHere, spyUpstream } from "./spied-upstream.ts";
import { grpcCode } from "./upstream-model.ts";

// Local wrangler.toml values: SANDBOX_DOMAIN "localhost", ENVIRONMENT
// "development", NODE_ORIGIN_TEMPLATE "http://{ip}:5007"; the unit project
// points CONTROL_PLANE_URL at http://127.0.0.1:9, where nothing listens.
const jsonHeaders = { accept: "application/json", "user-agent": "curl/8.5.0" };
const browserHeaders = {
	accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
	"user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0",
	"sec-fetch-mode": "navigate",
};
// No dev server binds 127.0.0.2: a route to it has no node behind it.
const deadNodeIp = "127.0.0.2";

let counter = 0;
function freshSandboxId(label: string): string {
	counter += 1;
	return `wk${label}${counter}${Date.now().toString(36)}`;
}

let clientCounter = 0;
/** JSON answers, from a client address of this test's own: the per-client resume budget is not shared. */
function clientHeaders(): Record<string, string> {
	clientCounter += 1;
	return { ...jsonHeaders, "cf-connecting-ip": `198.18.${Math.floor(clientCounter / 250)}.${clientCounter % 250}` };
}

function send(url: string, init: RequestInit = {}): Promise<Response> {
	return exports.default.fetch(new Request(url, { headers: jsonHeaders, ...init }));
}

interface ErrorJson {
	sandboxId: string;
	message: string;
	code: number;
	reason: string;
}

async function errorJson(response: Response): Promise<ErrorJson> {
	expect(response.headers.get("content-type")).toBe("application/json; charset=utf-8");
	const text = await response.text();
	// One newline at the end, so that a shell prompt after curl starts on its own line.
	expect(text).toMatch(/}\n$/);
	const body = JSON.parse(text) as ErrorJson;
	expect(Object.keys(body).sort()).toEqual(["code", "message", "reason", "sandboxId"]);
	expect(body.code).toBe(response.status);
	return body;
}

/** Stores a live route in the sandbox's catalog object, as a resume would have. */
async function seedRoute(sandboxId: string, nodeIp: string): Promise<void> {
	const stub = env.SANDBOX_ROUTE.getByName(sandboxId);
	const now = Date.now();
	await runInDurableObject(stub, (_instance, state) => {
		new RouteStore(state.storage.sql).save(sandboxId, {
			nodeIp,
			learnedAt: now,
			expiresAt: now + 3_600_000,
			source: "resume",
			details: {},
		});
	});
	// The next call wakes a new instance, which reads the route from storage.
	await evictDurableObject(stub);
}

describe("Worker: requests it refuses itself", () => {
	it.each(["e2b-traffic-access-token", "x-access-token"])("refuses an oversized %s with 400", async (header) => {
		const response = await send(`http://3000-${freshSandboxId("bigtoken")}.localhost/`, {
			headers: { ...jsonHeaders, [header]: "t".repeat(4097) },
		});
		expect(response.status).toBe(400);
		expect((await errorJson(response)).reason).toBe("invalid_access_token");
	});

	it.each([
		["http://0-abc123.localhost/", "invalid_port"],
		["http://99999-abc123.localhost/", "invalid_port"],
		["http://3000-abc_123.localhost/", "invalid_sandbox_id"],
		["http://3000.localhost/", "invalid_host"],
		["http://a.3000-abc123.localhost/", "invalid_host"],
	])("answers %s with 400 %s", async (url, reason) => {
		const response = await send(url);
		expect(response.status).toBe(400);
		expect(response.headers.has("retry-after")).toBe(false);
		const body = await errorJson(response);
		expect(body.reason).toBe(reason);
		expect(body.message).not.toBe("");
	});

	it.each([
		["http://0-abc123.localhost/", "abc123"],
		["http://99999-abc123.localhost/", "abc123"],
		["http://0-abc_123.localhost/", ""],
	])("names the sandbox of %s in its invalid_port answer when the ID is valid", async (url, sandboxId) => {
		const body = await errorJson(await send(url));
		expect(body.reason).toBe("invalid_port");
		expect(body.sandboxId).toBe(sandboxId);
		const html = await (await send(url, { headers: browserHeaders })).text();
		expect(html.endsWith("</html>\n")).toBe(true);
		if (sandboxId === "") expect(html).not.toContain("Sandbox <code>");
		else expect(html).toContain(`Sandbox <code>${sandboxId}</code>`);
	});

	it("ends the catalog API's JSON errors with a newline too", async () => {
		const response = await exports.default.fetch(new Request("http://edge.localhost/no-such-path"));
		expect(response.status).toBeGreaterThanOrEqual(400);
		await errorJson(response);
	});

	it.each(["http://3000-abc123.example.com/", "http://3000-abc123.localhost.evil.com/", "http://sandbox.example.com/"])(
		"does not route %s, outside the served domains",
		async (url) => {
			const response = await send(url, {
				headers: { ...jsonHeaders, "e2b-sandbox-id": "abc", "e2b-sandbox-port": "1" },
			});
			expect(response.status).toBe(400);
			expect((await errorJson(response)).reason).toBe("host_not_served");
		},
	);

	it("needs the routing headers on localhost itself", async () => {
		const response = await send("http://localhost/");
		expect(response.status).toBe(400);
		expect((await errorJson(response)).reason).toBe("missing_routing_headers");
	});

	it("gives a browser navigation an HTML page, with client input escaped", async () => {
		const response = await exports.default.fetch(
			new Request("http://localhost:8787/", {
				headers: { ...browserHeaders, "e2b-sandbox-id": "<script>alert(1)</script>", "e2b-sandbox-port": "3000" },
			}),
		);
		expect(response.status).toBe(400);
		expect(response.headers.get("content-type")).toBe("text/html; charset=utf-8");
		const html = await response.text();
		expect(html).toContain("<!doctype html>");
		expect(html).toContain("invalid_sandbox_id");
		expect(html).toContain("&lt;script&gt;");
		expect(html).not.toContain("<script>");
	});

	it("reads the Host header, where the sandbox label keeps its case", async () => {
		// The URL's host is lowercased by parsing; the Host header is not.
		const response = await send("http://3000-abc123.localhost/", {
			headers: { "user-agent": "python-requests/2.32", host: "3000-ABC123.localhost:8787" },
		});
		expect(response.status).toBe(400);
		expect((await errorJson(response)).reason).toBe("invalid_sandbox_id");
	});

	it("routes on the Host header rather than the URL", async () => {
		const response = await send("http://3000-abc123.localhost/", {
			headers: { ...jsonHeaders, host: "3000-abc123.example.com" },
		});
		expect(response.status).toBe(400);
		expect((await errorJson(response)).reason).toBe("host_not_served");
	});
});

describe("Worker: sandboxes it cannot reach", () => {
	afterEach(() => {
		vi.restoreAllMocks();
	});

	it("answers 503 with Retry-After when the control plane is down, without leaking the secret", async () => {
		const sandboxId = freshSandboxId("cpdown");
		const response = await send(`http://3000-${sandboxId}.localhost/some/path?q=1`, {
			headers: { ...jsonHeaders, "x-access-token": "envd-token", "e2b-traffic-access-token": "traffic-token" },
		});
		expect(response.status).toBe(503);
		expect(response.headers.get("retry-after")).toMatch(/^[1-9]\d*$/);
		const text = await response.clone().text();
		expect(text).not.toContain("unit-test-secret");
		expect(text).not.toContain(env.API_SECRET);
		expect(text).not.toContain("envd-token");
		expect(text).not.toContain("traffic-token");
		expect(await errorJson(response)).toEqual({
			sandboxId,
			message: "The sandbox service is temporarily unavailable",
			code: 503,
			reason: "control_plane_unavailable",
		});
		// Nothing was learned, so nothing was stored.
		expect(await env.SANDBOX_ROUTE.getByName(sandboxId).describe()).toBeNull();
	});

	it("routes by header on localhost in development", async () => {
		const sandboxId = freshSandboxId("hdr");
		const response = await send("http://localhost:8787/", {
			headers: { ...jsonHeaders, "e2b-sandbox-id": sandboxId, "e2b-sandbox-port": "8080" },
		});
		expect(response.status).toBe(503);
		expect((await errorJson(response)).sandboxId).toBe(sandboxId);
	});

	it("answers 502 node_unreachable when the stored route's node does not answer", async () => {
		const sandboxId = freshSandboxId("deadnode");
		await seedRoute(sandboxId, deadNodeIp);
		const response = await send(`http://3000-${sandboxId}.localhost/`);
		expect(response.status).toBe(502);
		expect(response.headers.has("retry-after")).toBe(false);
		expect(await errorJson(response)).toEqual({
			sandboxId,
			message: "The sandbox's node could not be reached",
			code: 502,
			reason: "node_unreachable",
		});
		// The route is dropped, so the next request asks the control plane
		// again instead of retrying a dead node until the route expires.
		expect(await env.SANDBOX_ROUTE.getByName(sandboxId).describe()).toBeNull();
	});
});

describe("Worker: forwarding to the node", () => {
	afterEach(() => {
		vi.restoreAllMocks();
	});

	interface SeenRequest {
		method: string;
		url: string;
		headers: Headers;
		body: string;
	}

	/**
	 * Replaces the node at `nodeIp` with `node`; every other fetch (the
	 * control-plane RPC among them) goes out as usual. What the node is sent
	 * is read inside the Worker's request, which owns the body stream.
	 */
	function fakeNode(nodeIp: string, node: () => Response): SeenRequest[] {
		const seen: SeenRequest[] = [];
		const realFetch = globalThis.fetch;
		vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
			const request = new Request(input, init);
			if (new URL(request.url).hostname !== nodeIp) return realFetch(input, init);
			seen.push({
				method: request.method,
				url: request.url,
				headers: new Headers(request.headers),
				body: await request.text(),
			});
			return node();
		});
		return seen;
	}

	it("forwards method, path, query and headers to the node, and its answer back unchanged", async () => {
		const sandboxId = freshSandboxId("fwd");
		const nodeIp = "127.0.0.3";
		await seedRoute(sandboxId, nodeIp);
		const seen = fakeNode(nodeIp, () => {
			const headers = new Headers({ "content-type": "text/plain", "x-from-node": "yes" });
			headers.append("set-cookie", "a=1; Path=/");
			headers.append("set-cookie", "b=2; Path=/");
			return new Response("hello from the sandbox", { status: 201, headers });
		});

		const response = await send(`http://3000-${sandboxId}.localhost/api/items?x=1&y=2`, {
			method: "PUT",
			headers: {
				...jsonHeaders,
				"content-type": "application/json",
				"x-e2b-client-proxy-auth": "forged",
				"e2b-sandbox-id": "victim",
				"e2b-sandbox-port": "22",
				"x-custom": "kept",
			},
			body: JSON.stringify({ a: 1 }),
		});

		expect(response.status).toBe(201);
		expect(await response.text()).toBe("hello from the sandbox");
		expect(response.headers.get("x-from-node")).toBe("yes");
		expect(response.headers.getSetCookie()).toEqual(["a=1; Path=/", "b=2; Path=/"]);

		expect(seen).toHaveLength(1);
		const upstream = seen[0] as SeenRequest;
		expect(upstream.method).toBe("PUT");
		expect(upstream.url).toBe(`http://${nodeIp}:5007/api/items?x=1&y=2`);
		expect(upstream.body).toBe('{"a":1}');
		expect(upstream.headers.get("e2b-sandbox-id")).toBe(sandboxId);
		expect(upstream.headers.get("e2b-sandbox-port")).toBe("3000");
		expect(upstream.headers.has("x-e2b-client-proxy-auth")).toBe(false);
		expect(upstream.headers.get("x-forwarded-host")).toBe(`3000-${sandboxId}.localhost`);
		expect(upstream.headers.get("x-custom")).toBe("kept");
	});

	it("serves a hot sandbox from the isolate cache without asking the catalog again", async () => {
		const sandboxId = freshSandboxId("hot");
		const cachedIp = "127.0.0.6";
		await seedRoute(sandboxId, cachedIp);
		const seen = fakeNode(cachedIp, () => new Response("from the cached node"));
		expect((await send(`http://3000-${sandboxId}.localhost/`)).status).toBe(200);

		// The catalog now says another node; within the cache TTL the isolate
		// does not ask it, so the request still goes to the cached node.
		await seedRoute(sandboxId, "127.0.0.7");
		const response = await send(`http://3000-${sandboxId}.localhost/`);
		expect(await response.text()).toBe("from the cached node");
		expect(seen).toHaveLength(2);
	});

	it.each([
		["E2B's JSON form", "application/json", '{"sandboxId":"'],
		["E2B's HTML form", "text/html; charset=utf-8", "<!doctype html><html><head><title>Sandbox"],
	])(
		"answers a 502 that the node cuts off mid-body (%s) as node_unreachable, never a 500, and keeps the route",
		async (_label, type, start) => {
			const sandboxId = freshSandboxId("cutoff");
			const nodeIp = "127.0.0.24";
			await seedRoute(sandboxId, nodeIp);
			const upstream = spyUpstream({
				resume: () => ({ kind: "ok", ip: nodeIp }),
				nodes: {
					[nodeIp]: () =>
						new Response(
							new ReadableStream({
								start(controller) {
									controller.enqueue(new TextEncoder().encode(start));
									controller.error(new Error("connection reset by the node"));
								},
							}),
							{ status: 502, headers: { "content-type": type } },
						),
				},
			});
			const response = await send(`http://3000-${sandboxId}.localhost/`, { headers: clientHeaders() });
			expect(response.status).toBe(502);
			expect((await errorJson(response)).reason).toBe("node_unreachable");
			expect(upstream.resumes).toHaveLength(0);
			expect(await env.SANDBOX_ROUTE.getByName(sandboxId).describe()).not.toBeNull();
		},
	);

	it("drops a stale route, and answers 503 once the resume fails, having sent the request once", async () => {
		const sandboxId = freshSandboxId("stale");
		const nodeIp = "127.0.0.4";
		await seedRoute(sandboxId, nodeIp);
		// The control plane is down: the wake fails, and there is nowhere to send the request again.
		const upstream = spyUpstream({
			resume: () => ({ kind: "status", code: grpcCode.unavailable, message: "unavailable" }),
			nodes: { [nodeIp]: notHere },
		});

		const response = await send(`http://3000-${sandboxId}.localhost/`, { headers: clientHeaders() });
		expect(response.status).toBe(503);
		expect((await errorJson(response)).reason).toBe("control_plane_unavailable");
		expect(upstream.nodes.get(nodeIp)).toHaveLength(1);
		expect(upstream.resumes.map((call) => call.sandboxId)).toEqual([sandboxId]);
		expect(await env.SANDBOX_ROUTE.getByName(sandboxId).describe()).toBeNull();
	});

	describe("sends the request again, exactly once, to the node that the wake found", () => {
		const oldNode = "127.0.0.4";
		const newNode = "127.0.0.14";

		async function movedSandbox(
			label: string,
			newNodeAnswers: (request: SeenRequest) => Response = () => new Response("from the new node"),
		) {
			const sandboxId = freshSandboxId(label);
			await seedRoute(sandboxId, oldNode);
			const upstream = spyUpstream({
				resume: () => ({ kind: "ok", ip: newNode }),
				nodes: { [oldNode]: notHere, [newNode]: newNodeAnswers },
			});
			return { sandboxId, upstream };
		}

		it("a request without a body", async () => {
			const { sandboxId, upstream } = await movedSandbox("replayget");
			const response = await send(`http://3000-${sandboxId}.localhost/page?q=1`, { headers: clientHeaders() });
			expect(response.status).toBe(200);
			expect(await response.text()).toBe("from the new node");
			expect(upstream.nodes.get(oldNode)?.map((request) => request.url)).toEqual([`http://${oldNode}:5007/page?q=1`]);
			expect(upstream.nodes.get(newNode)?.map((request) => request.url)).toEqual([`http://${newNode}:5007/page?q=1`]);
			expect(upstream.resumes).toHaveLength(1);
			expect(await env.SANDBOX_ROUTE.getByName(sandboxId).describe()).toMatchObject({
				nodeIp: newNode,
				source: "resume",
			});
		});

		it("a small body, byte for byte", async () => {
			const { sandboxId, upstream } = await movedSandbox("replaybody");
			const response = await send(`http://3000-${sandboxId}.localhost/upload`, {
				method: "POST",
				body: "data",
				headers: clientHeaders(),
			});
			expect(response.status).toBe(200);
			await response.arrayBuffer();
			expect(upstream.nodes.get(oldNode)?.map((request) => request.body)).toEqual(["data"]);
			expect(upstream.nodes.get(newNode)?.map((request) => [request.method, request.body])).toEqual([["POST", "data"]]);
			expect(upstream.resumes).toHaveLength(1);
		});

		it("but no more: when the new node says 'not here' too, the client gets a 502", async () => {
			const { sandboxId, upstream } = await movedSandbox("replaytwice", notHere);
			const response = await send(`http://3000-${sandboxId}.localhost/`, { headers: clientHeaders() });
			expect(response.status).toBe(502);
			expect((await errorJson(response)).reason).toBe("sandbox_not_found");
			expect(upstream.nodes.get(oldNode)).toHaveLength(1);
			expect(upstream.nodes.get(newNode)).toHaveLength(1);
			expect(upstream.resumes).toHaveLength(1);
		});

		it("never for a streamed body, which cannot go twice: 503 request_not_replayable, the sandbox woken", async () => {
			const { sandboxId, upstream } = await movedSandbox("replaystream");
			const chunks = ["first part, ", "second part"];
			const body = new ReadableStream({
				type: "bytes",
				pull(controller) {
					const chunk = chunks.shift();
					if (chunk === undefined) controller.close();
					else controller.enqueue(new TextEncoder().encode(chunk));
				},
			});
			const response = await send(`http://3000-${sandboxId}.localhost/upload`, {
				method: "POST",
				body,
				headers: clientHeaders(),
			});
			expect(response.status).toBe(503);
			expect(response.headers.get("retry-after")).toBe("1");
			expect((await errorJson(response)).reason).toBe("request_not_replayable");
			expect(upstream.nodes.get(oldNode)).toHaveLength(1);
			expect(upstream.nodes.get(newNode) ?? []).toHaveLength(0);
			// Woken for the client's own retry.
			expect(upstream.resumes).toHaveLength(1);
			expect(await env.SANDBOX_ROUTE.getByName(sandboxId).describe()).toMatchObject({ nodeIp: newNode });
		});
	});
});
