import { afterEach, describe, expect, it, vi } from "vitest";
import { forwardToNode, hostForNode, nodeHostname, nodeOrigin, upstreamHeaders } from "../../src/forwarding/forward.ts";
import { isNativeGrpc, nativeGrpcRefusal } from "../../src/forwarding/native-grpc.ts";

const target = { sandboxId: "abc123", port: 3000 };
const url = new URL("https://3000-abc123.e2b.example.com/path?q=1");

function upstream(headers: HeadersInit, requestUrl = url) {
	return upstreamHeaders(new Headers(headers), requestUrl, target);
}

describe("upstreamHeaders", () => {
	// Connection, Keep-Alive, TE, Trailer, Transfer-Encoding and Upgrade are
	// dropped by workerd's fetch() itself: checked at the node in
	// test/e2e/forwarding.test.ts, not here.
	it("strips the hop-by-hop headers that workerd's fetch would send on", () => {
		const headers = upstream({
			"proxy-connection": "keep-alive",
			"proxy-authenticate": "Basic",
			"proxy-authorization": "Basic Zm9vOmJhcg==",
			accept: "text/plain",
		});
		for (const name of ["proxy-connection", "proxy-authenticate", "proxy-authorization"]) {
			expect(headers.has(name), name).toBe(false);
		}
		expect(headers.get("accept")).toBe("text/plain");
	});

	it("keeps a WebSocket handshake's Upgrade, whatever Connection lists", () => {
		for (const connection of ["Upgrade", "keep-alive, Upgrade", "upgrade,x-hop"]) {
			const headers = upstream({ connection, upgrade: "websocket", "x-hop": "1" });
			expect(headers.get("upgrade"), connection).toBe("websocket");
			expect(headers.has("x-hop"), connection).toBe(!connection.includes("x-hop"));
		}
	});

	it("strips the headers that Connection names", () => {
		const headers = upstream({
			connection: "close, X-Hop-One ,x-hop-two,, ",
			"x-hop-one": "1",
			"X-Hop-Two": "2",
			"x-keep": "3",
		});
		expect(headers.has("x-hop-one")).toBe(false);
		expect(headers.has("x-hop-two")).toBe(false);
		expect(headers.get("x-keep")).toBe("3");
	});

	it.each(["x-e2b-client-proxy-auth", "X-E2B-Client-Proxy-Auth", "X-E2b-CLIENT-PROXY-AUTH"])(
		"strips %s, the edge's secret header",
		(name) => {
			expect(upstream({ [name]: "forged" }).has("x-e2b-client-proxy-auth")).toBe(false);
		},
	);

	it("does not let Connection re-admit the secret header", () => {
		// Listing it in Connection must not matter either way: it is gone.
		const headers = upstream({ connection: "x-e2b-client-proxy-auth", "x-e2b-client-proxy-auth": "forged" });
		expect(headers.has("x-e2b-client-proxy-auth")).toBe(false);
	});

	it("overwrites the client's routing headers with the parsed target", () => {
		const headers = upstream({ "E2b-Sandbox-Id": "victim", "E2B-SANDBOX-PORT": "22" });
		expect(headers.get("e2b-sandbox-id")).toBe("abc123");
		expect(headers.get("e2b-sandbox-port")).toBe("3000");
	});

	it("sets the routing headers when the client sent none", () => {
		const headers = upstream({});
		expect(headers.get("e2b-sandbox-id")).toBe("abc123");
		expect(headers.get("e2b-sandbox-port")).toBe("3000");
	});

	it("sets X-Forwarded-Host to the original Host, overwriting the client's", () => {
		const headers = upstream({ host: "3000-abc123.e2b.example.com:8443", "x-forwarded-host": "evil.com" });
		expect(headers.get("x-forwarded-host")).toBe("3000-abc123.e2b.example.com:8443");
	});

	it("falls back to the URL's host for X-Forwarded-Host", () => {
		const headers = upstream({}, new URL("http://3000-abc123.localhost:8787/"));
		expect(headers.get("x-forwarded-host")).toBe("3000-abc123.localhost:8787");
	});

	it("keeps Upgrade: websocket for a WebSocket handshake", () => {
		const headers = upstream({
			connection: "Upgrade",
			upgrade: "WebSocket",
			"sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
			"sec-websocket-version": "13",
			"sec-websocket-protocol": "chat",
		});
		expect(headers.get("upgrade")?.toLowerCase()).toBe("websocket");
		expect(headers.get("sec-websocket-key")).toBe("dGhlIHNhbXBsZSBub25jZQ==");
		expect(headers.get("sec-websocket-version")).toBe("13");
		expect(headers.get("sec-websocket-protocol")).toBe("chat");
	});

	it.each([
		"forwarded",
		"true-client-ip",
		"x-client-ip",
		"x-cluster-client-ip",
		"x-forwarded-port",
		"x-forwarded-server",
		"x-forwarded-scheme",
		"x-forwarded-ssl",
		"x-forwarded-prefix",
		"x-original-url",
		"x-rewrite-url",
		"x-original-host",
	])("drops the client's %s, which an app could take for the edge's word", (name) => {
		const headers = upstream({ [name]: "for=10.9.8.7;proto=http", "cf-connecting-ip": "203.0.113.8" });
		expect(headers.has(name)).toBe(false);
	});

	it("sets X-Forwarded-Proto from the URL the edge served, over the client's", () => {
		expect(upstream({ "x-forwarded-proto": "http" }).get("x-forwarded-proto")).toBe("https");
	});

	it("keeps every other header, with all of its values", () => {
		const inbound = new Headers([
			["accept", "application/json"],
			["authorization", "Bearer user-token"],
			["cookie", "a=1; b=2"],
			["x-access-token", "envd"],
			["e2b-traffic-access-token", "traffic"],
			["content-type", "application/octet-stream"],
			["content-length", "42"],
			["x-custom", "one"],
			["x-custom", "two"],
			["user-agent", "curl/8.5.0"],
		]);
		const headers = upstreamHeaders(inbound, url, target);
		for (const [name, value] of inbound) expect(headers.get(name), name).toBe(value);
		expect(headers.get("x-custom")).toBe("one, two");
	});

	it("does not modify the inbound headers", () => {
		const inbound = new Headers({ connection: "x-a", "x-a": "1", "x-e2b-client-proxy-auth": "s" });
		upstreamHeaders(inbound, url, target);
		expect(inbound.get("x-a")).toBe("1");
		expect(inbound.get("x-e2b-client-proxy-auth")).toBe("s");
		expect(inbound.has("e2b-sandbox-id")).toBe(false);
	});
});

describe("nodeOrigin", () => {
	it.each([
		["http://{ip}:5007", "10.1.2.3", "http://10.1.2.3:5007"],
		["http://n-{ip_dashed}.nodes.example.com:5007", "10.1.2.3", "http://n-10-1-2-3.nodes.example.com:5007"],
		["http://{ip}:5007", "fd00::1", "http://[fd00::1]:5007"],
		["http://{ip}:5007", "2001:db8::8a2e:370:7334", "http://[2001:db8::8a2e:370:7334]:5007"],
		["https://n-{ip_dashed}.nodes.example.com", "fd00::1", "https://n-fd00--1.nodes.example.com"],
		["https://n-{ip_dashed}.nodes.example.com", "::ffff:10.0.0.1", "https://n---ffff-10-0-0-1.nodes.example.com"],
		["http://{ip}.{ip_dashed}.example.com", "10.0.0.1", "http://10.0.0.1.10-0-0-1.example.com"],
	])("fills %s with %s", (template, ip, origin) => {
		expect(nodeOrigin(template, ip)).toBe(origin);
	});

	it("keeps an origin and a hostname filled from one template apart (IPv6 is bracketed in the one only)", () => {
		expect(nodeOrigin("{ip}.nodes.example.com", "fd00::7")).toBe("[fd00::7].nodes.example.com");
		expect(nodeHostname("{ip}.nodes.example.com", "fd00::7")).toBe("fd00::7.nodes.example.com");
	});

	it("gives an origin that parses to the node's address", () => {
		expect(new URL(nodeOrigin("http://{ip}:5007", "fd00::1")).hostname).toBe("[fd00::1]");
		expect(new URL(nodeOrigin("http://{ip}:5007", "10.1.2.3")).host).toBe("10.1.2.3:5007");
	});
});

describe("hostForNode", () => {
	const target = { sandboxId: "abc123", port: 3000 };

	it("is the client's own host on a sandbox's host, port and all", () => {
		expect(hostForNode("3000-abc123.e2b.example.com", target, undefined)).toBe("3000-abc123.e2b.example.com");
		expect(hostForNode("3000-abc123-x.e2b.example.com:8443", target, undefined)).toBe(
			"3000-abc123-x.e2b.example.com:8443",
		);
	});

	it("is <port>-<id>.<domain> on the shared host, as E2B's client-proxy rewrites it", () => {
		expect(hostForNode("sandbox.e2b.example.com", target, "e2b.example.com")).toBe("3000-abc123.e2b.example.com");
		expect(hostForNode("sandbox.e2b.example.com:8443", target, "e2b.example.com")).toBe(
			"3000-abc123.e2b.example.com:8443",
		);
	});
});

describe("forwardToNode with NODE_RESOLVE_OVERRIDE", () => {
	const route = { nodeIp: "10.0.0.5", expiresAt: Date.now() + 60_000, learnedAt: Date.now() };
	const target = { sandboxId: "abc", port: 3000 };
	afterEach(() => {
		vi.restoreAllMocks();
	});

	/** What the global fetch was asked; a NODES binding is given too, and must go unused. */
	async function sent(
		requestUrl: string,
		options: { sharedHostDomain?: string; headers?: HeadersInit; nodeIp?: string } = {},
	) {
		const seen: { url: string; cf: unknown; forwardedHost: string | null }[] = [];
		vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
			const cf = (init as (RequestInit & { cf?: unknown }) | undefined)?.cf;
			seen.push({ url: String(input), cf, forwardedHost: new Headers(init?.headers).get("x-forwarded-host") });
			return new Response("ok");
		});
		const nodes = {
			fetch: async () => {
				throw new Error("the VPC binding is not for resolveOverride");
			},
		} as unknown as Fetcher;
		const url = new URL(requestUrl);
		await forwardToNode({
			request: new Request(url, { headers: options.headers ?? {} }),
			url,
			target,
			route: { ...route, nodeIp: options.nodeIp ?? route.nodeIp },
			nodeOriginTemplate: "http://{ip}:5007",
			nodeResolveOverride: "n-{ip_dashed}.nodes.example.com",
			sharedHostDomain: options.sharedHostDomain,
			body: null,
			nodes,
		});
		return seen;
	}

	it("sends the client's own URL, with the node's name as cf.resolveOverride, by the global fetch", async () => {
		expect(await sent("https://3000-abc.e2b.example.com/path?q=1")).toEqual([
			{
				url: "https://3000-abc.e2b.example.com/path?q=1",
				cf: { resolveOverride: "n-10-0-0-5.nodes.example.com" },
				forwardedHost: "3000-abc.e2b.example.com",
			},
		]);
	});

	it("on the shared host, sends to <port>-<id>.<domain>, the original host in X-Forwarded-Host", async () => {
		const seen = await sent("https://sandbox.e2b.example.com/path", {
			sharedHostDomain: "e2b.example.com",
			headers: { host: "sandbox.e2b.example.com" },
		});
		expect(seen[0]?.url).toBe("https://3000-abc.e2b.example.com/path");
		expect(seen[0]?.forwardedHost).toBe("sandbox.e2b.example.com");
	});

	it("names an IPv6 node with dashes, never brackets", async () => {
		const seen = await sent("https://3000-abc.e2b.example.com/", { nodeIp: "fd00::5" });
		expect(seen[0]?.cf).toEqual({ resolveOverride: "n-fd00--5.nodes.example.com" });
	});
});

describe("forwardToNode through a Workers VPC binding", () => {
	const route = { nodeIp: "10.0.0.5", learnedAt: 1, expiresAt: Number.MAX_SAFE_INTEGER };
	const target = { sandboxId: "abc", port: 3000 };

	it("sends through the NODES binding when there is one, to the node's private address", async () => {
		const seen: Request[] = [];
		const nodes = {
			fetch: async (input: RequestInfo | URL, init?: RequestInit) => {
				seen.push(new Request(input, init));
				return new Response("from the VPC");
			},
			connect: () => {
				throw new Error("not used");
			},
		} as unknown as Fetcher;
		const url = new URL("https://3000-abc.example.com/path?q=1");
		const response = await forwardToNode({
			request: new Request(url),
			url,
			target,
			route,
			nodeOriginTemplate: "http://{ip}:5007",
			body: null,
			nodes,
		});
		expect(await response.text()).toBe("from the VPC");
		expect(seen.map((request) => request.url)).toEqual(["http://10.0.0.5:5007/path?q=1"]);
		expect(seen[0]?.headers.get("e2b-sandbox-id")).toBe("abc");
		expect(seen[0]?.redirect).toBe("manual");
	});
});

describe("native gRPC", () => {
	it.each(["application/grpc", "application/grpc+proto", "application/grpc+json", "application/grpc; charset=utf-8"])(
		"is recognised by %j",
		(type) => {
			expect(isNativeGrpc(new Headers({ "content-type": type }))).toBe(true);
		},
	);

	it.each([
		"application/grpc-web",
		"application/grpc-web+proto",
		"application/grpc-web-text",
		"application/proto",
		"application/connect+proto",
		"application/grpcx",
	])("is not %j, which passes through", (type) => {
		expect(isNativeGrpc(new Headers({ "content-type": type }))).toBe(false);
	});

	it("is refused as a gRPC client reads it: trailers-only, UNIMPLEMENTED, with a percent-encoded message", () => {
		const response = nativeGrpcRefusal();
		expect(response.status).toBe(200);
		expect(response.headers.get("grpc-status")).toBe("12");
		expect(decodeURIComponent(response.headers.get("grpc-message") ?? "")).toMatch(/use gRPC-web or Connect/);
	});
});
