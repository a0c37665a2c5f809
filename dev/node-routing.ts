// Which sandbox and port a request to the dev node is for, read as E2B's
// orchestrator proxy reads it (packages/shared/pkg/proxy/host.go in
// e2b-dev/infra): from the Host, `<port>-<sandboxId>[-anything].<domain>`,
// or, on hosts that cannot name a sandbox, from E2b-Sandbox-Id and
// E2b-Sandbox-Port. The edge must send what one of these accepts.

import { isIP } from "node:net";
import { isE2bSandboxId, sandboxIdHeader, sandboxPortHeader, sharedHostLabel } from "../src/rules/sandbox-hosts.ts";

/**
 * - "headers-or-host": E2B's node since e2b-dev/infra #2540/#2581 (May 2026).
 *   On `localhost`, an IP literal or `sandbox.<domain>`, a request carrying a
 *   routing header is routed on the headers; everything else on the Host.
 * - "host": E2B's node before that (GetTargetFromRequest with IsLocal false):
 *   the Host only, so an IP or `localhost` Host is never routed.
 */
export type NodeRouting = "headers-or-host" | "host";

export const NODE_ROUTINGS: readonly NodeRouting[] = ["headers-or-host", "host"];

export interface RequestTarget {
	sandboxId: string;
	port: number;
}

/** E2B's http.Error texts for a request it cannot route; all 400. */
export type RoutingRefusal = "missing header" | "Invalid host" | "Invalid sandbox ID" | "Invalid sandbox port";

const SHARED_HOST_PREFIX = `${sharedHostLabel}.`;
const MAX_UINT64 = 2n ** 64n - 1n;
// biome-ignore lint/suspicious/noTemplateCurlyInString: E2B's placeholder (pool.MaskRequestHostPortPlaceholder), literally.
const PORT_PLACEHOLDER = "${PORT}";

/** Go's Header.Get: the first value, "" when absent. Node joins repeated custom headers, so raw headers are read. */
function firstHeader(rawHeaders: readonly string[], name: string): string {
	for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
		if (rawHeaders[i]?.toLowerCase() === name) return rawHeaders[i + 1] ?? "";
	}
	return "";
}

/** Go's url.URL{Host: host}.Hostname(): a trailing all-digit port and IPv6 brackets removed. */
function hostnameOf(host: string): string {
	let name = host;
	const colon = name.lastIndexOf(":");
	if (colon !== -1 && /^\d*$/.test(name.slice(colon + 1))) name = name.slice(0, colon);
	if (name.startsWith("[") && name.endsWith("]")) name = name.slice(1, -1);
	return name;
}

/** Go's net.ParseIP, which takes no IPv6 zone. */
function isIpLiteral(hostname: string): boolean {
	return !hostname.includes("%") && isIP(hostname) !== 0;
}

/** shouldParseHeaders: hosts that cannot carry `<port>-<id>`. Case-sensitive, as Go's comparisons are. */
function routesOnHeaders(host: string): boolean {
	const hostname = hostnameOf(host);
	if (hostname === "localhost" || isIpLiteral(hostname)) return true;
	return hostname.startsWith(SHARED_HOST_PREFIX) && hostname.length > SHARED_HOST_PREFIX.length;
}

/** strconv.ParseUint(text, 10, 64). */
function parsePort(text: string): number | undefined {
	if (!/^\d+$/.test(text) || BigInt(text) > MAX_UINT64) return undefined;
	// Past 65535 nothing listens; E2B dials and fails, and so does the node.
	return Number(text);
}

function withValidId(sandboxId: string, port: number): RequestTarget | RoutingRefusal {
	return isE2bSandboxId(sandboxId) ? { sandboxId, port } : "Invalid sandbox ID";
}

/** parseHost: the whole Host, its port included, as Go's r.Host is. */
function fromHost(host: string): RequestTarget | RoutingRefusal {
	const dot = host.indexOf(".");
	if (dot === -1) return "Invalid host";
	const parts = host.slice(0, dot).split("-");
	if (parts.length < 2) return "Invalid host";
	const port = parsePort(parts[0] ?? "");
	if (port === undefined) return "Invalid sandbox port";
	return withValidId(parts[1] ?? "", port);
}

/** parseHeaders, once a routing header is known to be present: both are needed. */
function fromHeaders(sandboxId: string, rawPort: string): RequestTarget | RoutingRefusal {
	if (sandboxId === "" || rawPort === "") return "missing header";
	const port = parsePort(rawPort);
	if (port === undefined) return "Invalid sandbox port";
	return withValidId(sandboxId, port);
}

export function targetOf(
	host: string,
	rawHeaders: readonly string[],
	routing: NodeRouting,
): RequestTarget | RoutingRefusal {
	if (routing === "headers-or-host" && routesOnHeaders(host)) {
		const sandboxId = firstHeader(rawHeaders, sandboxIdHeader);
		const rawPort = firstHeader(rawHeaders, sandboxPortHeader);
		if (sandboxId !== "" || rawPort !== "") return fromHeaders(sandboxId, rawPort);
	}
	return fromHost(host);
}

/** E2B's MaskRequestHost for one request: `${PORT}` is the sandbox port. */
export function maskedHost(mask: string, port: number): string {
	return mask.replaceAll(PORT_PLACEHOLDER, String(port));
}
