/**
 * A reference model of how a request is routed, written from the contract
 * (docs/architecture.md, "Hosts") and not from src/routing.ts, for the
 * property tests to hold the Worker to:
 *
 *   <port>-<sandboxId>[-<anything>].<domain>   a sandbox's port
 *   edge.<domain>                              the catalog API
 *   sandbox.<domain>                           E2b-Sandbox-Id / E2b-Sandbox-Port headers
 *   localhost, IP literals (development only)  the same headers
 *
 * <domain> is one of SANDBOX_DOMAIN (the longest that fits), compared without
 * case; a ":port" and one trailing dot are not part of the host. The port is
 * decimal, 1 to 65535, leading zeros allowed, at most 5 digits; the ID is 1
 * to 63 of [a-z0-9], in the case it was sent. Anything else is a 400 saying
 * what is wrong; where more than one part is wrong, any of them may be named.
 */

export type RoutingRejection =
	| "invalid_host"
	| "host_not_served"
	| "invalid_port"
	| "invalid_sandbox_id"
	| "missing_routing_headers";

export type ExpectedRoute =
	| { kind: "rejected"; reasons: ReadonlySet<RoutingRejection> }
	| { kind: "catalog-api" }
	| { kind: "sandbox"; sandboxId: string; port: number; by: "host" | "headers" }
	/**
	 * Hosts the contract leaves open: an IP literal that is not quite one
	 * ("999.1.1.1", "[::1]junk"). In development the Worker may take them
	 * for IP literals (and route by the headers) or refuse them as not
	 * served; either is safe, as no sandbox host can look like them.
	 */
	| { kind: "either"; alternatives: readonly ExpectedRoute[] };

export interface RoutingInput {
	/** What the Worker routes on: the Host header, or the URL's host when there is none. */
	host: string;
	/** The request's E2b-Sandbox-Id and E2b-Sandbox-Port, as Headers#get gives them. */
	sandboxIdHeader: string | null;
	sandboxPortHeader: string | null;
	environment: "development" | "production";
	domains: readonly string[];
}

const rejected = (...reasons: RoutingRejection[]): ExpectedRoute => ({ kind: "rejected", reasons: new Set(reasons) });

export function expectedRoute(input: RoutingInput): ExpectedRoute {
	const hostname = withoutPortAndDot(input.host.trim());
	if (hostname === "") return rejected("invalid_host");
	const lower = hostname.toLowerCase();

	if (input.environment === "development") {
		if (lower === "localhost" || isIpv4Literal(lower) || isIpv6Literal(lower)) return byHeaders(input);
		if (looksLikeIpLiteral(input.host.trim().toLowerCase()) || looksLikeIpLiteral(lower)) {
			return { kind: "either", alternatives: [byHeaders(input), rejected("host_not_served")] };
		}
	}

	const domain = [...input.domains]
		.map((d) => d.toLowerCase())
		.filter((d) => lower.endsWith(`.${d}`))
		.sort((a, b) => b.length - a.length)[0];
	if (domain === undefined) return rejected("host_not_served");

	const label = hostname.slice(0, hostname.length - domain.length - 1);
	const lowerLabel = label.toLowerCase();
	if (lowerLabel === "edge") return { kind: "catalog-api" };
	if (lowerLabel === "sandbox") return byHeaders(input);
	if (label.includes(".")) return rejected("invalid_host");
	// An internationalized label arrives as punycode; it can be no sandbox's.
	if (lowerLabel.startsWith("xn--")) return rejected("invalid_sandbox_id", "invalid_host", "invalid_port");

	const dash = label.indexOf("-");
	if (dash === -1) return rejected("invalid_host");
	const portText = label.slice(0, dash);
	const rest = label.slice(dash + 1);
	const secondDash = rest.indexOf("-");
	const sandboxId = secondDash === -1 ? rest : rest.slice(0, secondDash);
	if (sandboxId === "") return rejected("invalid_host");
	return target(portText, sandboxId, "host");
}

function byHeaders(input: RoutingInput): ExpectedRoute {
	if (input.sandboxIdHeader === null || input.sandboxPortHeader === null) return rejected("missing_routing_headers");
	return target(input.sandboxPortHeader.trim(), input.sandboxIdHeader.trim(), "headers");
}

function target(portText: string, sandboxId: string, by: "host" | "headers"): ExpectedRoute {
	const port = decimalPort(portText);
	const idOk = /^[a-z0-9]{1,63}$/.test(sandboxId);
	if (port === undefined && !idOk) return rejected("invalid_port", "invalid_sandbox_id");
	if (port === undefined) return rejected("invalid_port");
	if (!idOk) return rejected("invalid_sandbox_id");
	return { kind: "sandbox", sandboxId, port, by };
}

function decimalPort(text: string): number | undefined {
	if (!/^[0-9]{1,5}$/.test(text)) return undefined;
	const port = Number.parseInt(text, 10);
	return port >= 1 && port <= 65535 ? port : undefined;
}

/** "host:8787" → "host", "[::1]:8787" → "[::1]", then one trailing dot off. */
function withoutPortAndDot(host: string): string {
	let name = host;
	const bracketed = /^(\[[^\]]*\])(?::\d*)?$/.exec(name);
	if (bracketed?.[1] !== undefined) name = bracketed[1];
	else {
		const withPort = /^([^:]*):\d*$/.exec(name);
		if (withPort?.[1] !== undefined) name = withPort[1];
	}
	return name.endsWith(".") ? name.slice(0, -1) : name;
}

/** Dotted digits, or brackets with an address-like start, whatever follows: almost an IP literal. */
function looksLikeIpLiteral(host: string): boolean {
	return /^\d{1,3}(\.\d{1,3}){3}(:.*)?$/.test(host) || /^\[[0-9a-f:.]*\]/.test(host);
}

function isIpv4Literal(host: string): boolean {
	const parts = host.split(".");
	return parts.length === 4 && parts.every((part) => /^\d{1,3}$/.test(part) && Number(part) <= 255);
}

function isIpv6Literal(host: string): boolean {
	if (!host.startsWith("[") || !host.endsWith("]")) return false;
	const inner = host.slice(1, -1);
	if (!/^[0-9a-f:.]+$/.test(inner) || !inner.includes(":")) return false;
	try {
		return new URL(`http://[${inner}]/`).hostname !== "";
	} catch {
		return false;
	}
}
