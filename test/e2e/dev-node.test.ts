import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type DevNode, startNode } from "../../dev/node.ts";
import { fetchVia } from "./http-client.ts";
import { until } from "./until.ts";

// The dev node pools its connections to sandboxes. If it sends a request on
// one just as the sandbox's server closes it for idleness, the request fails
// and the node answers "port is not open" for a sandbox that is listening,
// which no test can tell from the real thing. So the node must be the one
// that closes an idle connection, well before the server would.
let sandbox: Server;
let node: DevNode;
const closes: { by: "node" | "server"; idleMs: number }[] = [];

beforeAll(async () => {
	sandbox = createServer((_req, res) => res.end("ok"));
	// Node's default, said to the client in its Keep-Alive header.
	sandbox.keepAliveTimeout = 5000;
	sandbox.on("connection", (socket: Socket) => {
		let lastAnswer = Date.now();
		let endedByPeer = false;
		socket.on("data", () => {
			lastAnswer = Date.now();
		});
		socket.on("end", () => {
			endedByPeer = true;
		});
		socket.on("close", () => closes.push({ by: endedByPeer ? "node" : "server", idleMs: Date.now() - lastAnswer }));
	});
	await new Promise<void>((resolve) => sandbox.listen(0, "127.0.0.1", resolve));
	const port = (sandbox.address() as AddressInfo).port;
	node = await startNode({
		port: 0,
		directory: {
			lookup: () => new Map([[3000, port]]),
			trafficAccessToken: () => undefined,
			maskRequestHost: () => undefined,
		},
	});
});
afterAll(async () => {
	await node?.close();
	sandbox?.closeAllConnections();
	await new Promise((resolve) => sandbox?.close(resolve));
});

it("closes a pooled connection to a sandbox before the sandbox's server would", async () => {
	const origin = new URL(node.origin);
	const headers = { "e2b-sandbox-id": "pooled", "e2b-sandbox-port": "3000" };
	expect((await fetchVia(origin, origin.host, "/", { headers })).status).toBe(200);
	// One side closes it: the server would after keepAliveTimeout (5 s) of idleness.
	await until("the pooled connection to close", () => closes.length > 0, 20_000);
	expect(closes).toHaveLength(1);
	expect(closes[0]?.by).toBe("node");
	expect(closes[0]?.idleMs).toBeLessThan(sandbox.keepAliveTimeout);
});
