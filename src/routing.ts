import type { Config } from "./config.ts";
import { excerpt } from "./errors/excerpt.ts";
import { ProxyError } from "./errors/proxy-error.ts";
import {
	isSandboxId,
	sandboxIdHeader,
	sandboxIdRule,
	sandboxPortHeader,
	sharedHostLabel,
} from "./rules/sandbox-hosts.ts";

/** Which sandbox and port a request is for. */
export interface SandboxTarget {
	sandboxId: string;
	port: number;
}

/**
 * What a host is served by: the catalog API, or a sandbox's port. A sandbox
 * routed by its headers (on the shared host, or in development on localhost
 * or an IP) names the domain its own host `<port>-<id>.<domain>` would have
 * had, which is the Host a node receives in Host-preserving forwarding.
 */
export type HostRoute = { kind: "catalog-api" } | { kind: "sandbox"; target: SandboxTarget; sharedHostDomain?: string };

// Decimal, as E2B parses it; leading zeros are allowed ("03000" is 3000).
const portPattern = /^[0-9]{1,5}$/;
// Has no "-", so no sandbox's host can be this one.
const catalogApiLabel = "edge";

/**
 * Finds what a request is for: the catalog API on `edge.<domain>`, or a
 * sandbox and port, from its host `<port>-<sandboxId>[-<anything>].<domain>`
 * or, on the shared host `sandbox.<domain>` (and in development on localhost
 * or an IP literal), from the E2b-Sandbox-Id and E2b-Sandbox-Port headers.
 * Throws a ProxyError (400) saying what is wrong.
 */
export function routeHost(
	host: string,
	headers: Headers,
	config: Pick<Config, "environment" | "sandboxDomains">,
): HostRoute {
	let memo = rememberedHosts;
	if (memo === undefined || memo.config !== config) {
		memo = { config, routes: new Map() };
		rememberedHosts = memo;
	}
	const known = memo.routes.get(host);
	if (known !== undefined) return known;
	const route = parseHost(host, headers, config);
	// A route read from the host alone holds for every request with that
	// host; one read from headers does not. Refusals are not kept, so bad
	// hosts cost no memory.
	if (route.kind === "catalog-api" || route.sharedHostDomain === undefined) {
		if (memo.routes.size >= maxRememberedHosts) memo.routes.clear();
		// Shared by every later request with this host: frozen, so that none can change it for the others.
		if (route.kind === "sandbox") Object.freeze(route.target);
		memo.routes.set(host, Object.freeze(route));
	}
	return route;
}

/**
 * What each host the isolate has routed named, for the settings it was read
 * with: hot traffic repeats a few hosts, and a lookup here costs less than
 * reading one again (BENCHMARKS.md, "Issue 18"). Shared by requests, so
 * never changed once stored.
 */
let rememberedHosts: { config: object; routes: Map<string, HostRoute> } | undefined;
// Sandboxes' hosts are many, but an isolate serves few at a time; the bound
// only stops a flood of distinct hosts from growing it.
const maxRememberedHosts = 4096;

function parseHost(host: string, headers: Headers, config: Pick<Config, "environment" | "sandboxDomains">): HostRoute {
	// A fully qualified host may end in a dot ("3000-abc.example.com.").
	const hostname = stripPort(host.trim()).replace(/\.$/, "");
	if (hostname === "") throw new ProxyError("invalid_host", { message: "The request has no Host" });

	const lowered = hostname.toLowerCase();
	if (config.environment === "development" && (lowered === "localhost" || isIpLiteral(lowered))) {
		return {
			kind: "sandbox",
			target: targetFromHeaders(headers),
			sharedHostDomain: config.sandboxDomains[0] ?? lowered,
		};
	}

	const domain = config.sandboxDomains.find((d) => lowered.endsWith(`.${d}`));
	if (domain === undefined) throw new ProxyError("host_not_served");

	// Sliced from the original so that uppercase in the label is seen, and refused.
	const label = hostname.slice(0, hostname.length - domain.length - 1);
	const loweredLabel = label.toLowerCase();
	if (loweredLabel === catalogApiLabel) return { kind: "catalog-api" };
	if (loweredLabel === sharedHostLabel) {
		return { kind: "sandbox", target: targetFromHeaders(headers), sharedHostDomain: domain };
	}
	return { kind: "sandbox", target: targetFromLabel(label) };
}

function targetFromLabel(label: string): SandboxTarget {
	if (label.includes(".")) {
		throw new ProxyError("invalid_host", {
			message: "The host must be <port>-<sandboxId>.<domain>, with one label before the domain",
		});
	}
	// A Unicode host reaches the Worker in its punycode form, "xn--...".
	if (label.startsWith("xn--")) {
		throw new ProxyError("invalid_sandbox_id", {
			message: "The sandbox ID must be lowercase ASCII letters and digits; the host is internationalized",
		});
	}
	const [portText = "", sandboxId = ""] = label.split("-", 2);
	if (sandboxId === "") {
		throw new ProxyError("invalid_host", {
			message: "The host must be <port>-<sandboxId>.<domain>; the sandbox ID is missing",
		});
	}
	return { port: parsePort(portText, sandboxId), sandboxId: checkSandboxId(sandboxId) };
}

function targetFromHeaders(headers: Headers): SandboxTarget {
	const sandboxId = headers.get(sandboxIdHeader);
	const port = headers.get(sandboxPortHeader);
	if (sandboxId === null || port === null) throw new ProxyError("missing_routing_headers");
	const id = sandboxId.trim();
	return { port: parsePort(port.trim(), id), sandboxId: checkSandboxId(id) };
}

/**
 * The port of `<port>-<sandboxId>`. A bad one is refused naming the sandbox
 * when `sandboxId` is a valid ID, so that the caller sees which sandbox the
 * request was for ("0-abc.example.com" is about "abc").
 */
export function parsePort(text: string, sandboxId?: string): number {
	const port = portPattern.test(text) ? Number(text) : Number.NaN;
	if (!(port >= 1 && port <= 65535)) {
		throw new ProxyError("invalid_port", {
			message: `The sandbox port must be a decimal number from 1 to 65535, got "${excerpt(text, 64)}"`,
			...(sandboxId !== undefined && isSandboxId(sandboxId) ? { sandboxId } : {}),
		});
	}
	return port;
}

export function checkSandboxId(sandboxId: string): string {
	if (!isSandboxId(sandboxId)) {
		throw new ProxyError("invalid_sandbox_id", {
			message: `The sandbox ID must be ${sandboxIdRule}, got "${excerpt(sandboxId, 64)}"`,
		});
	}
	return sandboxId;
}

function stripPort(host: string): string {
	if (host.startsWith("[")) {
		// Only a port may follow the bracket; anything else is left in, so the host matches nothing.
		const end = host.indexOf("]");
		return end !== -1 && /^(:\d*)?$/.test(host.slice(end + 1)) ? host.slice(0, end + 1) : host;
	}
	const colon = host.lastIndexOf(":");
	if (colon !== -1 && host.indexOf(":") === colon && /^\d*$/.test(host.slice(colon + 1))) {
		return host.slice(0, colon);
	}
	return host;
}

function isIpLiteral(hostname: string): boolean {
	// Most hosts end in a letter: decided without splitting or a pattern.
	const last = hostname.charCodeAt(hostname.length - 1);
	if (!((last >= 48 && last <= 57) || last === 93)) return false;
	const octets = hostname.split(".");
	const isIpv4 = octets.length === 4 && octets.every((octet) => /^\d{1,3}$/.test(octet) && Number(octet) <= 255);
	return isIpv4 || /^\[[0-9a-f:.]+\]$/.test(hostname);
}
