import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { freshId } from "./fixture.ts";
import {
	type NodeReach,
	nodeIp,
	type ProductionStack,
	sandboxDomain,
	startProductionStack,
} from "./production-stack.ts";

// Every way the runbook gives to reach the nodes, run through the model of a
// deployed Worker (production-edge.ts), against nodes of both E2B eras: the
// current ones, which route on the E2b-Sandbox-* headers when the Host is an
// IP, localhost or sandbox.<x>, and the seed's (e2b-dev/infra ed90bd31f),
// which route on the Host alone. A configuration that works only in
// Miniflare fails here.

type Era = "headers-or-host" | "host";

const stacks = new Map<string, ProductionStack>();

async function stackFor(reach: NodeReach, era: Era = "headers-or-host"): Promise<ProductionStack> {
	const key = `${reach} ${era}`;
	let stack = stacks.get(key);
	if (stack === undefined) {
		stack = await startProductionStack({ reach, nodeRouting: era });
		stacks.set(key, stack);
	}
	return stack;
}

afterAll(async () => {
	for (const stack of stacks.values()) await stack.close();
});

async function runningSandbox(stack: ProductionStack): Promise<string> {
	const id = freshId("pm");
	await stack.admin.create({ id });
	return id;
}

/** What the app saw, or why nothing reached it. */
async function appHeaders(stack: ProductionStack, id: string) {
	const response = await stack.request(stack.sandboxHost(id), "/headers", { headers: { accept: "application/json" } });
	return { status: response.status, text: response.text, headers: response.status === 200 ? response.json() : {} };
}

function nodeRequestsFor(stack: ProductionStack, id: string) {
	return stack.stack.node
		.requests()
		.filter((r) => r.url.startsWith("/headers") && JSON.stringify(r.headers).includes(id));
}

describe("the recommended option: Host-preserving forwarding (NODE_RESOLVE_OVERRIDE, a tunnel per node)", () => {
	let stack: ProductionStack;
	beforeAll(async () => {
		stack = await stackFor("D");
	});

	it("gives the app the client's host, and sends the subrequest to the client's URL with the node's name as resolveOverride", async () => {
		const id = await runningSandbox(stack);
		const seen = await appHeaders(stack, id);
		expect(seen.status).toBe(200);
		expect(seen.headers.host).toBe(stack.sandboxHost(id));
		const hop = stack.edge.hops.findLast((h) => h.url.includes(id));
		expect(hop).toMatchObject({
			url: `http://${stack.sandboxHost(id)}/headers`,
			resolveOverride: `n-${nodeIp.replaceAll(".", "-")}.nodes.example.test`,
			host: stack.sandboxHost(id),
		});
		expect(hop?.outcome).toMatch(/^origin 127\.0\.0\.1:/);
	});

	it.each(["headers-or-host", "host"] as const)(
		"on the shared host, gives a node (%s) <port>-<id>.<domain> and the original host in X-Forwarded-Host, as E2B's client-proxy does",
		async (era) => {
			const stack = await stackFor("D", era);
			const id = await runningSandbox(stack);
			const shared = `sandbox.${sandboxDomain}:${stack.worker.url.port}`;
			const response = await stack.request(shared, "/headers", {
				headers: { "e2b-sandbox-id": id, "e2b-sandbox-port": "3000", accept: "application/json" },
			});
			expect(response.status).toBe(200);
			expect(response.json().host).toBe(stack.sandboxHost(id));
			const atNode = nodeRequestsFor(stack, id).at(-1);
			expect(atNode?.headers.host).toBe(stack.sandboxHost(id));
			expect(atNode?.headers["x-forwarded-host"]).toBe(shared);
		},
	);

	it("wakes a paused sandbox with one resume, the control plane reached through the model too", async () => {
		const id = await runningSandbox(stack);
		await stack.admin.pause(id);
		const before = (await stack.admin.calls()).filter((c) => c.sandboxId === id).length;
		const seen = await appHeaders(stack, id);
		expect(seen.status).toBe(200);
		expect(seen.headers.host).toBe(stack.sandboxHost(id));
		const resumes = (await stack.admin.calls()).filter((c) => c.sandboxId === id).length - before;
		expect(resumes).toBe(1);
	});

	it("carries a WebSocket, and the app's handshake sees the client's host", async () => {
		const id = await runningSandbox(stack);
		const socket = new WebSocket(`ws://127.0.0.1:${stack.worker.url.port}/ws`, {
			headers: { host: stack.sandboxHost(id) },
		});
		const echoed = await new Promise<string>((resolve, reject) => {
			socket.once("open", () => socket.send("ping through the edge"));
			socket.once("message", (data) => resolve(data.toString()));
			socket.once("error", reject);
			socket.once("unexpected-response", (_req, res) => reject(new Error(`status ${res.statusCode}`)));
		});
		socket.close();
		expect(echoed).toContain("ping through the edge");
		const upgrade = stack.stack.node.requests().findLast((r) => r.upgrade && r.url === "/ws");
		expect(upgrade?.headers.host).toBe(stack.sandboxHost(id));
	});

	it("reaches a node of the seed's era, which routes on the Host alone", async () => {
		const seed = await stackFor("D", "host");
		const id = await runningSandbox(seed);
		const seen = await appHeaders(seed, id);
		expect(seen.status).toBe(200);
		expect(seen.headers.host).toBe(seed.sandboxHost(id));
	});
});

describe("the other options, as the runbook sets them up", () => {
	// What the app sees as Host through each; the client's host only through D.
	const expectations: { reach: NodeReach; appHost: (port: string) => string }[] = [
		{ reach: "A", appHost: () => `sandbox.n-10-0-0-5.nodes.example.test:5007` },
		{ reach: "B", appHost: () => "localhost" },
		{ reach: "C", appHost: () => `${nodeIp}:5007` },
	];

	it.each(expectations)(
		"option $reach reaches a current node, and the app sees the node's name as Host",
		async ({ reach, appHost }) => {
			const stack = await stackFor(reach);
			const id = await runningSandbox(stack);
			const seen = await appHeaders(stack, id);
			expect(seen.status).toBe(200);
			expect(seen.headers.host).toBe(appHost(stack.worker.url.port));
			expect(seen.headers.host).not.toBe(stack.sandboxHost(id));
		},
	);

	it.each(["A", "B", "C"] as const)(
		"option %s cannot reach a node of the seed's era: the node cannot route the host it gets",
		async (reach) => {
			const stack = await stackFor(reach, "host");
			const id = await runningSandbox(stack);
			const seen = await appHeaders(stack, id);
			expect(seen.status).toBe(400);
			expect(nodeRequestsFor(stack, id).length).toBeGreaterThan(0);
		},
	);
});

describe("configurations that work only in Miniflare", () => {
	it("an IP-literal origin (the local default http://{ip}:5007, no binding) is refused by the edge, and the node sees nothing", async () => {
		const stack = await stackFor("local");
		const id = await runningSandbox(stack);
		const seen = await appHeaders(stack, id);
		expect(seen.status).toBe(403);
		expect(seen.text).toContain("error code: 1003");
		expect(nodeRequestsFor(stack, id)).toHaveLength(0);
		expect(stack.edge.hops.findLast((h) => h.url.includes(nodeIp))?.outcome).toBe("error 1003");
	});

	it("a custom port on a proxied node name is dropped, so the request never reaches :5007", async () => {
		const stack = await stackFor("proxied-port");
		const id = await runningSandbox(stack);
		const seen = await appHeaders(stack, id);
		expect(seen.status).not.toBe(200);
		expect(nodeRequestsFor(stack, id)).toHaveLength(0);
		expect(stack.edge.hops.findLast((h) => h.url.includes(":5007"))?.outcome).toBe("error 522");
	});

	it("a resolveOverride outside the zone is ignored: the request goes to the sandbox host's own DNS, which has no origin", async () => {
		const stack = await stackFor("override-outside-zone");
		const id = await runningSandbox(stack);
		const seen = await appHeaders(stack, id);
		expect(seen.status).not.toBe(200);
		expect(nodeRequestsFor(stack, id)).toHaveLength(0);
		expect(stack.edge.hops.findLast((h) => h.url.includes(id))?.outcome).toBe("error 522");
	});

	it("Host-preserving forwarding refuses, in development, a request that is its own subrequest come back", async () => {
		const stack = await stackFor("D");
		const id = await runningSandbox(stack);
		const response = await stack.request(stack.sandboxHost(id), "/headers", {
			headers: { "cf-worker": "example.test", accept: "application/json" },
		});
		expect(response.status).toBe(508);
		expect(response.json()).toMatchObject({ reason: "forwarding_loop" });
	});
});
