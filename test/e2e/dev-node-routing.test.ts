import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { type AdminClient, createAdminClient } from "../../dev/admin-client.ts";
import { type DevNode, startNode } from "../../dev/node.ts";
import type { NodeRouting } from "../../dev/node-routing.ts";
import { type Stack, startStack } from "../../dev/stack.ts";
import { apiSecret, freshId } from "./fixture.ts";
import { fetchVia } from "./http-client.ts";

// The dev node reads a request's sandbox and hands the request on as E2B's
// orchestrator proxy does (e2b-dev/infra: packages/shared/pkg/proxy/host.go,
// pool/client.go, packages/orchestrator/pkg/proxy/proxy.go), so that the
// edge is tested against what it will meet: which Hosts route on headers,
// which on the Host, and what Host and forwarding headers the app sees.

const MASK = `app.internal:\${PORT}`;

/** One sandbox port's server: answers what it received, and says whose it is. */
interface App {
	name: string;
	port: number;
	server: Server;
	upgrades: IncomingHttpHeaders[];
}

async function startApp(name: string): Promise<App> {
	const server = createServer((req, res) => {
		res.writeHead(200, { "content-type": "application/json" });
		res.end(JSON.stringify({ app: name, headers: req.headers }));
	});
	const wss = new WebSocketServer({ noServer: true });
	const app: App = { name, port: 0, server, upgrades: [] };
	server.on("upgrade", (req, socket, head) => {
		app.upgrades.push(req.headers);
		wss.handleUpgrade(req, socket, head, (ws) => ws.on("message", (data) => ws.send(String(data))));
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	app.port = (server.address() as AddressInfo).port;
	return app;
}

// Each sandbox port its own server, so an answer says where the node sent the request.
const layout: Record<string, { ports: number[]; mask?: string }> = {
	alpha: { ports: [3000, 8080, 49983] },
	beta: { ports: [3000] },
	masked: { ports: [3000, 49983], mask: MASK },
};
const apps = new Map<string, App>();
const nodes = new Map<NodeRouting, DevNode>();

beforeAll(async () => {
	for (const [id, { ports }] of Object.entries(layout)) {
		for (const port of ports) apps.set(`${id}:${port}`, await startApp(`${id}:${port}`));
	}
	const directory = {
		lookup: (id: string) => {
			const ports = layout[id]?.ports;
			if (ports === undefined) return undefined;
			return new Map(ports.map((port) => [port, apps.get(`${id}:${port}`)?.port ?? 0]));
		},
		trafficAccessToken: () => undefined,
		maskRequestHost: (id: string) => layout[id]?.mask,
	};
	for (const routing of ["headers-or-host", "host"] as const) {
		nodes.set(routing, await startNode({ port: 0, directory, ...(routing === "host" ? { routing } : {}) }));
	}
});
afterAll(async () => {
	for (const node of nodes.values()) await node.close();
	for (const app of apps.values()) {
		app.server.closeAllConnections();
		await new Promise((resolve) => app.server.close(resolve));
	}
});

function nodeUrl(routing: NodeRouting = "headers-or-host"): URL {
	const node = nodes.get(routing);
	if (node === undefined) throw new Error(`no ${routing} node`);
	return new URL(node.origin);
}

/** A request to the node with this Host; the node's answer, or what the app received. */
async function ask(host: string, headers: Record<string, string> = {}, routing?: NodeRouting) {
	const answer = await fetchVia(nodeUrl(routing), host, "/", { headers });
	const routed = answer.status === 200 ? answer.json<{ app: string; headers: Record<string, string> }>() : undefined;
	return { status: answer.status, text: answer.text, app: routed?.app, seen: routed?.headers ?? {} };
}

const routingHeaders = (id: string, port: number | string) => ({
	"E2b-Sandbox-Id": id,
	"E2b-Sandbox-Port": String(port),
});

describe('routing "headers-or-host" (the default; E2B since May 2026)', () => {
	it.each([
		"localhost",
		"localhost:5007",
		"127.0.0.1",
		"10.0.0.7:5007",
		"[::1]:5007",
		"sandbox.example.test",
		"sandbox.example.test:443",
	])("routes on E2b-Sandbox-Id and E2b-Sandbox-Port on the host %s", async (host) => {
		expect((await ask(host, routingHeaders("alpha", 8080))).app).toBe("alpha:8080");
	});

	it.each([
		["3000-alpha.example.test", "alpha:3000"],
		["8080-alpha.example.test:8787", "alpha:8080"],
		// E2B's legacy <id>-<client ID> form: whatever follows the ID is ignored.
		["3000-beta-6532622b.e2b.app", "beta:3000"],
	])("routes on the Host %s", async (host, app) => {
		expect((await ask(host)).app).toBe(app);
	});

	it("ignores routing headers on a Host that names a sandbox", async () => {
		const answer = await ask("3000-alpha.example.test", routingHeaders("beta", 3000));
		expect(answer.app).toBe("alpha:3000");
	});

	it.each([
		["sandbox. with nothing after it", "sandbox.", routingHeaders("alpha", 3000), "Invalid host"],
		["a node name", "node", routingHeaders("alpha", 3000), "Invalid host"],
		["an IP without headers", "127.0.0.1:5007", {}, "Invalid host"],
		["localhost with one header", "localhost", { "E2b-Sandbox-Id": "alpha" }, "missing header"],
		["localhost with a bad port", "localhost", routingHeaders("alpha", "3000x"), "Invalid sandbox port"],
		["localhost with a bad ID", "localhost", routingHeaders("Alpha", 3000), "Invalid sandbox ID"],
		["a host without a port part", "alpha.example.test", {}, "Invalid host"],
		["a host with a bad port", "web-alpha.example.test", {}, "Invalid sandbox port"],
		["a host with a bad ID", "3000-Alpha.example.test", {}, "Invalid sandbox ID"],
	])("refuses %s with E2B's 400", async (_label, host, headers, message) => {
		const answer = await fetchVia(nodeUrl(), host, "/", { headers: { accept: "application/json", ...headers } });
		expect(answer.status).toBe(400);
		expect(answer.text).toBe(`${message}\n`);
		expect(answer.headers["content-type"]).toBe("text/plain; charset=utf-8");
	});

	it("takes any port E2B's ParseUint takes, and answers a port nothing listens on as closed", async () => {
		const answer = await fetchVia(nodeUrl(), "70000-alpha.example.test", "/", {
			headers: { accept: "application/json" },
		});
		expect(answer.status).toBe(502);
		expect(answer.json()).toMatchObject({ sandboxId: "alpha", port: 70000 });
	});
});

describe('routing "host" (E2B before May 2026)', () => {
	it.each(["127.0.0.1:5007", "localhost", "sandbox.example.test"])(
		"refuses routing headers on %s: the Host must name the sandbox",
		async (host) => {
			const answer = await ask(host, routingHeaders("alpha", 3000), "host");
			expect(answer.status).toBe(400);
			expect(answer.text).toBe("Invalid host\n");
		},
	);

	it("routes <port>-<id>.<domain>, whatever headers say", async () => {
		expect((await ask("3000-alpha.example.test", {}, "host")).app).toBe("alpha:3000");
		expect((await ask("3000-alpha.example.test", routingHeaders("beta", 3000), "host")).app).toBe("alpha:3000");
	});
});

describe("what the app receives", () => {
	it.each([
		["a per-sandbox Host with a port", "8080-alpha.example.test:8787", {}],
		["an IP Host, routed on headers", "127.0.0.1:5007", routingHeaders("alpha", 8080)],
	])("has the Host the node received: %s", async (_label, host, headers) => {
		const answer = await ask(host, headers);
		expect(answer.app).toBe("alpha:8080");
		expect(answer.seen.host).toBe(host);
	});

	it("has no Forwarded or X-Forwarded-* headers, as E2B's Rewrite drops them; the rest go through", async () => {
		const sent = {
			...routingHeaders("alpha", 3000),
			Forwarded: "for=10.9.8.7;proto=https",
			"X-Forwarded-For": "203.0.113.8",
			"X-Forwarded-Host": "3000-alpha.edge.test",
			"X-Forwarded-Proto": "https",
			"X-Real-IP": "203.0.113.8",
			"E2b-Traffic-Access-Token": "token-1",
			"X-Access-Token": "token-2",
			"X-Custom": "kept",
		};
		const answer = await ask("127.0.0.1:5007", sent);
		expect(answer.app).toBe("alpha:3000");
		for (const name of ["forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto"]) {
			expect(answer.seen[name], name).toBeUndefined();
		}
		expect(answer.seen).toMatchObject({
			"e2b-sandbox-id": "alpha",
			"e2b-sandbox-port": "3000",
			"x-real-ip": "203.0.113.8",
			"e2b-traffic-access-token": "token-1",
			"x-access-token": "token-2",
			"x-custom": "kept",
		});
	});

	it("has the sandbox's mask as Host, with its port filled in, and the Host the node received as X-Forwarded-Host", async () => {
		const answer = await ask("3000-masked.example.test:8787", { "X-Forwarded-Host": "spoofed.test" });
		expect(answer.app).toBe("masked:3000");
		expect(answer.seen.host).toBe("app.internal:3000");
		expect(answer.seen["x-forwarded-host"]).toBe("3000-masked.example.test:8787");
	});

	it("has no mask on envd's port", async () => {
		const answer = await ask("49983-masked.example.test");
		expect(answer.app).toBe("masked:49983");
		expect(answer.seen.host).toBe("49983-masked.example.test");
		expect(answer.seen["x-forwarded-host"]).toBeUndefined();
	});

	it("gets WebSocket upgrades the same way: masked Host, X-Forwarded-Host, no client forwarding headers", async () => {
		const app = apps.get("masked:3000");
		if (app === undefined) throw new Error("no app");
		const before = app.upgrades.length;
		const host = "3000-masked.example.test";
		const socket = new WebSocket(`ws://${nodeUrl().host}/ws`, {
			headers: { host, "X-Forwarded-For": "203.0.113.8", "X-Forwarded-Proto": "https" },
		});
		await new Promise((resolve, reject) => {
			socket.once("open", resolve);
			socket.once("error", reject);
		});
		const echoed = new Promise((resolve) => socket.once("message", (data) => resolve(String(data))));
		socket.send("ping");
		expect(await echoed).toBe("ping");
		socket.close();
		const upgrade = app.upgrades[before];
		expect(upgrade?.host).toBe("app.internal:3000");
		expect(upgrade?.["x-forwarded-host"]).toBe(host);
		expect(upgrade?.["x-forwarded-for"]).toBeUndefined();
		expect(upgrade?.["x-forwarded-proto"]).toBeUndefined();
	});
});

describe("the stack's node", () => {
	// Through the registry, the admin API and startStack's nodeRouting.
	let stack: Stack;
	let admin: AdminClient;

	beforeAll(async () => {
		stack = await startStack({ apiSecret, controlPlanePort: 0, nodePort: 0, nodeRouting: "host", restApiKey: false });
		admin = createAdminClient(stack.controlPlaneUrl);
	});
	afterAll(async () => {
		await stack?.close();
	});

	it("routes as startStack's nodeRouting says, and masks a sandbox the admin API created with maskRequestHost", async () => {
		const id = freshId();
		const created = await admin.create({ id, maskRequestHost: MASK });
		expect(created.maskRequestHost).toBe(MASK);
		const node = new URL(stack.node.origin);
		const byHeaders = await fetchVia(node, node.host, "/headers", { headers: routingHeaders(id, 3000) });
		expect(byHeaders.status).toBe(400);
		const host = `3000-${id}.localhost:8787`;
		const seen = (await fetchVia(node, host, "/headers")).json<Record<string, string>>();
		expect(seen.host).toBe("app.internal:3000");
		expect(seen["x-forwarded-host"]).toBe(host);
	});

	it("refuses a mask E2B's API refuses", async () => {
		await expect(admin.create({ id: freshId(), maskRequestHost: "bad host" })).rejects.toThrow(
			"mask request host is not valid: bad host",
		);
	});
});
