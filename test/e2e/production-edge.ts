// A model of what stands between a deployed Worker and the nodes: Cloudflare's
// edge, the zone's DNS, Origin Rules, Cloudflare Tunnel and Workers VPC.
// Miniflare lets a Worker fetch anything (IP literals, any port) and ignores
// cf.resolveOverride, so a configuration that works locally may fail in
// production. The Worker's outbound fetches go through this model instead
// (wrangler's `dev.outboundService`, a NODES binding for Workers VPC), and it
// applies production's rules, as Cloudflare documents them:
//
// - A fetch to an IP literal is answered "error code: 1003" (known issues,
//   "fetch to IP addresses"); it never reaches the address.
// - On a proxied name, a port outside Cloudflare's proxy ports is ignored and
//   the scheme's default is used (`allow_custom_ports`); a DNS-only name takes
//   any port.
// - `cf.resolveOverride` is honoured only when the URL's host and the override
//   are both in the zone and the override is proxied; otherwise it is ignored.
// - The Host the origin receives is the URL's host (workerd already sets it so:
//   a Worker cannot set Host).
// - A same-zone subrequest goes to the origin that DNS names, never to a Worker
//   route: a Worker-only name (`AAAA 100::`) has no origin.
// - cloudflared passes Host unchanged unless `httpHostHeader` is set, in which
//   case the original goes in X-Forwarded-Host (cloudflared's origin_proxy.go).
//
// What it cannot show: TLS between Cloudflare and an origin, the SNI sent with
// resolveOverride, whether Origin Rules run on a Worker's same-zone
// subrequests, and whether a resolveOverride may name a tunnel's CNAME. Those
// are the runbook's "verify on a real deploy" items.

import { request as httpRequest, type IncomingMessage } from "node:http";
import { isIP } from "node:net";
import { Readable } from "node:stream";
import { createBrotliDecompress, createGunzip, createInflate } from "node:zlib";
import { Response as MiniflareResponse, WebSocketPair } from "miniflare";
import WebSocket from "ws";

export interface DnsRecord {
	/** Lowercase; may start with "*." for a wildcard. */
	name: string;
	type: "A" | "AAAA" | "CNAME";
	content: string;
	proxied: boolean;
}

export interface TunnelIngressRule {
	/** Matched against the request's host without port; "*.x" matches any depth below x; absent matches all. */
	hostname?: string;
	/** e.g. http://127.0.0.1:5007, or http_status:404 */
	service: string;
	httpHostHeader?: string;
}

export interface OriginRule {
	/** Requests whose host ends with this go to this destination port. */
	hostSuffix: string;
	destinationPort: number;
}

export interface ProductionEdgeOptions {
	/** The Worker's zone, e.g. example.test. */
	zone: string;
	records: DnsRecord[];
	/** Each tunnel's cloudflared ingress rules, by tunnel ID (CNAME target `<id>.cfargotunnel.com`). */
	tunnels?: Record<string, TunnelIngressRule[]>;
	originRules?: OriginRule[];
	/**
	 * Where an address of the model's world listens on this machine:
	 * "203.0.113.5:5007" → "127.0.0.1:41234". An address absent here does not answer.
	 */
	listeners: Record<string, string>;
}

/** What the model did with one subrequest, for tests to read. */
export interface EdgeHop {
	url: string;
	resolveOverride: string | undefined;
	via: "internet" | "vpc";
	/** "origin 127.0.0.1:41234", or the error the edge answered, e.g. "error 1003". */
	outcome: string;
	/** The Host the origin received, when it received anything. */
	host?: string;
}

const proxyPorts: Record<string, ReadonlySet<string>> = {
	"http:": new Set(["80", "8080", "8880", "2052", "2082", "2086", "2095"]),
	"https:": new Set(["443", "2053", "2083", "2087", "2096", "8443"]),
};
const defaultPorts: Record<string, string> = { "http:": "80", "https:": "443" };
const tunnelSuffix = ".cfargotunnel.com";

type Destination =
	| { kind: "error"; status: number; code: string }
	| { kind: "origin"; address: string; host: string; extraHeaders: Record<string, string> };

export class ProductionEdge {
	readonly hops: EdgeHop[] = [];
	readonly #options: ProductionEdgeOptions;

	constructor(options: ProductionEdgeOptions) {
		this.#options = { ...options, zone: options.zone.toLowerCase() };
	}

	/** The Worker's global fetch, as it leaves a deployed Worker (wrangler's `dev.outboundService`). */
	readonly outbound = (request: Request): Promise<Response> => this.#handle(request, "internet");

	/** A Workers VPC Network binding's fetch: the URL names any address the tunnel reaches. */
	readonly vpcNetwork = (request: Request): Promise<Response> => this.#handle(request, "vpc");

	async #handle(request: Request, via: EdgeHop["via"]): Promise<Response> {
		const url = new URL(request.url);
		const resolveOverride = (request as Request & { cf?: { resolveOverride?: string } }).cf?.resolveOverride;
		const destination = via === "vpc" ? this.#throughVpc(url) : this.#throughEdge(url, resolveOverride);
		const hop: EdgeHop = { url: url.href, resolveOverride, via, outcome: "" };
		this.hops.push(hop);
		if (destination.kind === "error") {
			hop.outcome = `error ${destination.code}`;
			return new MiniflareResponse(`error code: ${destination.code}`, {
				status: destination.status,
				headers: { "content-type": "text/plain; charset=UTF-8", server: "cloudflare" },
			}) as unknown as Response;
		}
		hop.outcome = `origin ${destination.address}`;
		hop.host = destination.host;
		return send(request, url, destination);
	}

	#throughVpc(url: URL): Destination {
		const port = url.port || defaultPorts[url.protocol] || "80";
		const address = this.#options.listeners[`${bare(url.hostname)}:${port}`];
		if (address === undefined) return { kind: "error", status: 502, code: "vpc-unreachable" };
		return { kind: "origin", address, host: url.host, extraHeaders: {} };
	}

	#throughEdge(url: URL, resolveOverride: string | undefined): Destination {
		const hostname = bare(url.hostname).toLowerCase();
		if (isIP(hostname) !== 0) return { kind: "error", status: 403, code: "1003" };
		const override = resolveOverride?.toLowerCase();
		const overrideApplies =
			override !== undefined &&
			this.#inZone(hostname) &&
			this.#inZone(override) &&
			this.#record(override)?.proxied === true;
		const name = overrideApplies ? override : hostname;
		const asked = this.#record(name);
		if (asked === undefined) return { kind: "error", status: 530, code: "1016" };

		let record = asked;
		for (let hops = 0; record.type === "CNAME"; hops++) {
			if (record.content.endsWith(tunnelSuffix)) {
				if (!asked.proxied) return { kind: "error", status: 530, code: "1016" };
				return this.#throughTunnel(record.content.slice(0, -tunnelSuffix.length), url);
			}
			const next = this.#record(record.content);
			if (next === undefined || hops > 8) return { kind: "error", status: 530, code: "1016" };
			record = next;
		}
		let port = url.port || defaultPorts[url.protocol] || "80";
		if (asked.proxied) {
			if (!proxyPorts[url.protocol]?.has(port)) port = defaultPorts[url.protocol] ?? "80";
			const rule = this.#options.originRules?.find((r) => hostname.endsWith(r.hostSuffix));
			if (rule !== undefined) port = String(rule.destinationPort);
		}
		const address = this.#options.listeners[`${record.content}:${port}`];
		// Cloudflare could not connect to the origin (522); a DNS-only origin is dialed by the Worker itself.
		if (address === undefined) return { kind: "error", status: asked.proxied ? 522 : 502, code: "522" };
		return { kind: "origin", address, host: url.host, extraHeaders: {} };
	}

	#throughTunnel(tunnelId: string, url: URL): Destination {
		const rules = this.#options.tunnels?.[tunnelId];
		if (rules === undefined) return { kind: "error", status: 530, code: "1033" };
		const hostname = url.hostname.toLowerCase();
		const rule = rules.find((r) => r.hostname === undefined || matchesHost(r.hostname, hostname));
		if (rule === undefined || !rule.service.startsWith("http://"))
			return { kind: "error", status: 404, code: "tunnel-404" };
		const address = new URL(rule.service).host;
		if (rule.httpHostHeader === undefined) return { kind: "origin", address, host: url.host, extraHeaders: {} };
		return { kind: "origin", address, host: rule.httpHostHeader, extraHeaders: { "x-forwarded-host": url.host } };
	}

	#inZone(name: string): boolean {
		const zone = this.#options.zone;
		return name === zone || name.endsWith(`.${zone}`);
	}

	#record(name: string): DnsRecord | undefined {
		const lowered = name.toLowerCase();
		const exact = this.#options.records.find((r) => r.name === lowered);
		if (exact !== undefined) return exact;
		// The longest wildcard that covers the name.
		return this.#options.records
			.filter((r) => r.name.startsWith("*.") && lowered.endsWith(r.name.slice(1)))
			.sort((a, b) => b.name.length - a.name.length)[0];
	}
}

function matchesHost(pattern: string, hostname: string): boolean {
	return pattern.startsWith("*.") ? hostname.endsWith(pattern.slice(1)) : pattern === hostname;
}

function bare(hostname: string): string {
	return hostname.startsWith("[") ? hostname.slice(1, -1) : hostname;
}

function outgoingHeaders(request: Request, destination: Extract<Destination, { kind: "origin" }>): string[] {
	const raw: string[] = [];
	for (const [name, value] of request.headers) {
		if (name === "host") continue;
		raw.push(name, value);
	}
	for (const [name, value] of Object.entries(destination.extraHeaders)) raw.push(name, value);
	raw.push("host", destination.host);
	return raw;
}

async function send(request: Request, url: URL, destination: Extract<Destination, { kind: "origin" }>) {
	if (request.headers.get("upgrade")?.toLowerCase() === "websocket") return upgrade(request, url, destination);
	const [hostname, port] = splitAddress(destination.address);
	const upstream = httpRequest({
		host: hostname,
		port,
		method: request.method,
		path: url.pathname + url.search,
		headers: outgoingHeaders(request, destination),
		agent: false,
	});
	const answered = new Promise<IncomingMessage>((resolve, reject) => {
		upstream.once("response", resolve);
		upstream.once("error", reject);
	});
	if (request.body === null) upstream.end();
	else Readable.fromWeb(request.body as import("node:stream/web").ReadableStream).pipe(upstream);
	let response: IncomingMessage;
	try {
		response = await answered;
	} catch (error) {
		return new MiniflareResponse(`error code: 522 (${(error as Error).message})`, { status: 522 });
	}
	const headers: [string, string][] = [];
	for (let i = 0; i + 1 < response.rawHeaders.length; i += 2) {
		const name = response.rawHeaders[i] ?? "";
		// Miniflare hands this body to workerd as a fetch() body: decoded, its framing its own.
		if (/^(content-encoding|content-length|transfer-encoding|connection|keep-alive)$/i.test(name)) continue;
		headers.push([name, response.rawHeaders[i + 1] ?? ""]);
	}
	const status = response.statusCode ?? 502;
	const bodyless = status === 204 || status === 304 || request.method === "HEAD";
	const body = bodyless ? null : (Readable.toWeb(decoded(response)) as ReadableStream);
	if (bodyless) response.resume();
	return new MiniflareResponse(body as never, { status, statusText: response.statusMessage ?? "", headers });
}

function decoded(response: IncomingMessage): Readable {
	const encoding = (response.headers["content-encoding"] ?? "").toLowerCase();
	if (encoding === "gzip" || encoding === "x-gzip") return response.pipe(createGunzip());
	if (encoding === "deflate") return response.pipe(createInflate());
	if (encoding === "br") return response.pipe(createBrotliDecompress());
	return response;
}

function splitAddress(address: string): [string, number] {
	const colon = address.lastIndexOf(":");
	return [address.slice(0, colon).replace(/^\[|\]$/g, ""), Number(address.slice(colon + 1))];
}

/** A WebSocket through the model: a real handshake with the origin, relayed both ways. */
async function upgrade(request: Request, url: URL, destination: Extract<Destination, { kind: "origin" }>) {
	const protocols = (request.headers.get("sec-websocket-protocol") ?? "")
		.split(",")
		.map((p) => p.trim())
		.filter((p) => p !== "");
	const headers: Record<string, string> = { host: destination.host, ...destination.extraHeaders };
	for (const [name, value] of request.headers) {
		if (/^(host|upgrade|connection|sec-websocket-(key|version|extensions|protocol))$/.test(name)) continue;
		headers[name] = value;
	}
	const socket = new WebSocket(`ws://${destination.address}${url.pathname}${url.search}`, protocols, {
		headers,
		perMessageDeflate: false,
	});
	// Listened to from the start: a frame the origin sends with its 101 (Vite's
	// "connected") is emitted before the code after `await opened` runs, and
	// would be lost. Held until the client's side of the pair exists.
	let relayed: WebSocketPair[1] | undefined;
	const held: [WebSocket.RawData, boolean][] = [];
	let closedEarly: [number, Buffer] | undefined;
	const toClient = (to: WebSocketPair[1], data: WebSocket.RawData, isBinary: boolean) =>
		to.send(isBinary ? new Uint8Array(data as Buffer) : data.toString());
	socket.on("message", (data, isBinary) => {
		if (relayed === undefined) held.push([data, isBinary]);
		else toClient(relayed, data, isBinary);
	});
	socket.on("close", (code, reason) => {
		if (relayed === undefined) closedEarly = [code, reason];
		else relayed.close(closable(code), reason.toString());
	});
	const opened = await new Promise<{ ok: true } | { ok: false; response: Response }>((resolve) => {
		socket.once("open", () => resolve({ ok: true }));
		socket.once("unexpected-response", (_req, res) => {
			const chunks: Buffer[] = [];
			res.on("data", (chunk: Buffer) => chunks.push(chunk));
			res.on("end", () =>
				resolve({
					ok: false,
					response: new MiniflareResponse(Buffer.concat(chunks), {
						status: res.statusCode ?? 502,
						headers: Object.entries(res.headers).flatMap(([k, v]) =>
							v === undefined || /^(content-length|transfer-encoding|connection)$/i.test(k)
								? []
								: (Array.isArray(v) ? v : [v]).map((one) => [k, one] as [string, string]),
						),
					}) as unknown as Response,
				}),
			);
		});
		socket.once("error", (error) =>
			resolve({
				ok: false,
				response: new MiniflareResponse(`error code: 522 (${error.message})`, { status: 522 }) as never,
			}),
		);
	});
	if (!opened.ok) return opened.response;
	const pair = new WebSocketPair();
	const [client, server] = [pair[0], pair[1]];
	server.accept();
	server.addEventListener("message", (event) => socket.send(event.data as never));
	server.addEventListener("close", (event) => socket.close(closable(event.code), event.reason));
	relayed = server;
	for (const [data, isBinary] of held.splice(0)) toClient(server, data, isBinary);
	if (closedEarly !== undefined) server.close(closable(closedEarly[0]), closedEarly[1].toString());
	const responseHeaders: Record<string, string> = {};
	if (socket.protocol !== "") responseHeaders["sec-websocket-protocol"] = socket.protocol;
	return new MiniflareResponse(null, { status: 101, webSocket: client, headers: responseHeaders });
}

/** 1005 and 1006 are reported, never sent. */
function closable(code: number): number {
	return code === 1005 || code === 1006 ? 1000 : code;
}
