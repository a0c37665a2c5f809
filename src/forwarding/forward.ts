import type { Route } from "../catalog/route.ts";
import { ProxyError } from "../errors/proxy-error.ts";
import type { SandboxTarget } from "../routing.ts";
import { sandboxIdHeader, sandboxPortHeader } from "../rules/sandbox-hosts.ts";

// RFC 9110 §7.6.1 connection-specific headers, plus the legacy ones proxies
// still meet, that workerd's fetch() would send on. It drops Connection,
// Keep-Alive, TE, Trailer, Transfer-Encoding and Upgrade (but for a
// WebSocket's) itself, so they are not deleted here: each call into the
// runtime's Headers costs the hot path more than its work would suggest
// (BENCHMARKS.md, "Issue 18"). test/e2e/forwarding.test.ts checks at the
// node that Keep-Alive, TE and a non-WebSocket Upgrade do not arrive, nor
// the names below; the WebSocket tests, that a WebSocket's Upgrade does.
const hopByHopHeaders = ["proxy-connection", "proxy-authenticate", "proxy-authorization"];

/** Set from CF-Connecting-IP, as E2B's proxy sets them from the connection. */
const clientAddressHeaders = ["x-forwarded-for", "x-real-ip"];

/** Headers a client must never be able to pass to a node. */
const internalHeaders = ["x-e2b-client-proxy-auth"];

/**
 * Headers through which a client could claim an address, scheme, host, port
 * or path that apps and frameworks trust as a proxy's word. The edge sets
 * none of them (E2B's edge sets none either), so a client's copy would reach
 * the app looking as if the edge had vouched for it: dropped.
 */
const forgeableHeaders = [
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
];

// Every header dropped by name. Deleting each by name is cheaper in workerd
// than one pass over the names present (BENCHMARKS.md, "Profiles of the hot path").
const neverForwarded = [...hopByHopHeaders, ...internalHeaders, ...forgeableHeaders];

export interface ForwardOptions {
	request: Request;
	url: URL;
	target: SandboxTarget;
	route: Route;
	nodeOriginTemplate: string;
	/**
	 * NODE_RESOLVE_OVERRIDE: when set, the request goes to the client's own
	 * URL (on the shared host, `<port>-<id>.<domain>`), so that the node and
	 * the app receive that Host, and Cloudflare resolves the node's name
	 * instead of the URL's. Undefined: to NODE_ORIGIN_TEMPLATE.
	 */
	nodeResolveOverride?: string | undefined;
	/** The domain of the shared host the request came by, when it was routed by its headers. */
	sharedHostDomain?: string | undefined;
	/** The body to send: the request's own is never read here, so that its owner decides whether it can go twice. */
	body: BodyInit | null;
	/** Aborts the request to the node, when the client's body fails. */
	signal?: AbortSignal | undefined;
	/**
	 * A Workers VPC Network binding (`NODES`) that reaches the nodes' private
	 * addresses; without it, the global fetch, which reaches public ones only.
	 * Unused with NODE_RESOLVE_OVERRIDE.
	 */
	nodes?: Fetcher | undefined;
}

export function nodeOrigin(template: string, nodeIp: string): string {
	return filled(template, nodeIp, nodeIp.includes(":") ? `[${nodeIp}]` : nodeIp);
}

/** The node's hostname for cf.resolveOverride: a DNS name, so an IPv6 address is never bracketed. */
export function nodeHostname(template: string, nodeIp: string): string {
	return filled(template, nodeIp, nodeIp);
}

function filled(template: string, nodeIp: string, ip: string): string {
	// Keyed on the address as filled in: an origin brackets an IPv6 address, a hostname does not.
	const key = `${template} ${ip}`;
	let origin = origins.get(key);
	if (origin === undefined) {
		origin = template.replaceAll("{ip}", ip).replaceAll("{ip_dashed}", nodeIp.replace(/[.:]/g, "-"));
		// Nodes are few; the bound only guards against a catalog full of addresses.
		if (origins.size >= maxRememberedOrigins) origins.clear();
		origins.set(key, origin);
	}
	return origin;
}

// Every request computes its node's origin or name; the answers repeat.
const origins = new Map<string, string>();
const maxRememberedOrigins = 1024;

/**
 * Sends the request to the node's orchestrator proxy and returns the node's
 * response untouched: rebuilding it would break WebSocket upgrades and
 * re-encode bodies. Bodies stream both ways; redirects come back to the
 * client instead of being followed with the client's cookies.
 */
export async function forwardToNode(options: ForwardOptions): Promise<Response> {
	const { request, url, target, route } = options;
	const override = options.nodeResolveOverride;
	const upstreamUrl =
		override === undefined
			? nodeOrigin(options.nodeOriginTemplate, route.nodeIp) + url.pathname + url.search
			: `${url.protocol}//${hostForNode(request.headers.get("host") ?? url.host, target, options.sharedHostDomain)}${url.pathname}${url.search}`;
	try {
		// resolveOverride is Cloudflare's edge's to honour: a VPC binding would take the client's URL for an address.
		const fetcher = override === undefined ? (options.nodes ?? globalThis) : globalThis;
		const init: RequestInit<RequestInitCfProperties> = {
			method: request.method,
			headers: upstreamHeaders(request.headers, url, target),
			body: options.body,
			redirect: "manual",
		};
		// Set only when there: spreading optional parts would copy the object on every request.
		if (options.signal !== undefined) init.signal = options.signal;
		if (override !== undefined) init.cf = { resolveOverride: nodeHostname(override, route.nodeIp) };
		return await fetcher.fetch(upstreamUrl, init);
	} catch (error) {
		throw new ProxyError("node_unreachable", { sandboxId: target.sandboxId, cause: error });
	}
}

/**
 * The Host a node receives in Host-preserving forwarding, as E2B's edge
 * gives it: the client's own host; on the shared host, the sandbox's host
 * `<port>-<id>.<domain>` (E2B's client-proxy rewrites it so, and the original
 * goes in X-Forwarded-Host). A port the client used stays on it either way.
 */
export function hostForNode(clientHost: string, target: SandboxTarget, sharedHostDomain: string | undefined): string {
	if (sharedHostDomain === undefined) return clientHost;
	const port = /:\d+$/.exec(clientHost)?.[0] ?? "";
	return `${target.port}-${target.sandboxId}.${sharedHostDomain}${port}`;
}

const noHeaders: readonly string[] = [];
const commonConnectionValues = new Set(["keep-alive", "Keep-Alive", "close", "Close", "upgrade", "Upgrade"]);

export function upstreamHeaders(inbound: Headers, url: URL, target: SandboxTarget): Headers {
	const headers = new Headers(inbound);
	// workerd's fetch() drops Connection itself, but sends on the names it lists.
	for (const name of connectionListedHeaders(inbound)) headers.delete(name);
	for (const name of neverForwarded) headers.delete(name);

	// The client's own claims about its address are not passed on: the node
	// and the app see the address Cloudflare saw, or none.
	const clientIp = inbound.get("cf-connecting-ip");
	for (const name of clientAddressHeaders) {
		if (clientIp === null) headers.delete(name);
		else headers.set(name, clientIp);
	}
	headers.set(sandboxIdHeader, target.sandboxId);
	headers.set(sandboxPortHeader, String(target.port));
	headers.set("x-forwarded-host", inbound.get("host") ?? url.host);
	headers.set("x-forwarded-proto", url.protocol.slice(0, -1));
	return headers;
}

function connectionListedHeaders(headers: Headers): readonly string[] {
	const connection = headers.get("connection");
	// What nearly every client sends names no header, or one dropped anyway.
	if (connection === null || commonConnectionValues.has(connection)) return noHeaders;
	// Upgrade is the runtime's to handle: a browser's WebSocket handshake
	// says "Connection: keep-alive, Upgrade", and its Upgrade must reach the node.
	return connection
		.split(",")
		.map((name) => name.trim().toLowerCase())
		.filter((name) => name !== "" && name !== "upgrade");
}
