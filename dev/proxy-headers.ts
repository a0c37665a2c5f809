// Header handling for the dev node's reverse proxy. Raw header arrays keep
// repeated headers (every Set-Cookie) exactly as they arrived.

import type { Socket } from "node:net";

const HOP_BY_HOP = new Set([
	"connection",
	"keep-alive",
	"proxy-connection",
	"proxy-authenticate",
	"proxy-authorization",
	"te",
	"trailer",
	"transfer-encoding",
	"upgrade",
	// Node's server has already answered any 100-continue itself.
	"expect",
]);

function connectionTokens(raw: readonly string[]): Set<string> {
	const tokens = new Set<string>();
	for (let i = 0; i < raw.length; i += 2) {
		if (raw[i]?.toLowerCase() !== "connection") continue;
		for (const token of (raw[i + 1] ?? "").split(",")) tokens.add(token.trim().toLowerCase());
	}
	return tokens;
}

/**
 * Drops hop-by-hop headers, including any the Connection header names, so
 * each hop frames its own message. For an upgrade, Connection and Upgrade are
 * what the next hop needs, so they are kept.
 */
export function endToEndHeaders(raw: readonly string[], options: { upgrade?: boolean } = {}): string[] {
	const named = connectionTokens(raw);
	const out: string[] = [];
	for (let i = 0; i + 1 < raw.length; i += 2) {
		const name = raw[i] ?? "";
		const lower = name.toLowerCase();
		const keep = options.upgrade === true && (lower === "connection" || lower === "upgrade");
		if (!keep && (HOP_BY_HOP.has(lower) || named.has(lower))) continue;
		out.push(name, raw[i + 1] ?? "");
	}
	return out;
}

// Go's ReverseProxy deletes these before a Rewrite hook runs, and E2B's hook
// does not call SetXForwarded: the app behind E2B's node never sees a
// client's (or an edge's) claims in them.
const DROPPED_FORWARDING = new Set(["forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto"]);

/**
 * The request's headers as E2B's node sends them to the sandbox (its
 * Rewrite, packages/shared/pkg/proxy/pool/client.go): end to end only, the
 * forwarding headers dropped, and `Host` the one the node received, or the
 * sandbox's mask with the received one in X-Forwarded-Host.
 */
export function headersToSandbox(
	raw: readonly string[],
	receivedHost: string,
	mask: string | undefined,
	options: { upgrade?: boolean } = {},
): string[] {
	const out = ["Host", mask ?? receivedHost];
	if (mask !== undefined) out.push("X-Forwarded-Host", receivedHost);
	const kept = endToEndHeaders(raw, options);
	for (let i = 0; i + 1 < kept.length; i += 2) {
		const lower = (kept[i] ?? "").toLowerCase();
		if (lower === "host" || DROPPED_FORWARDING.has(lower)) continue;
		out.push(kept[i] ?? "", kept[i + 1] ?? "");
	}
	return out;
}

/** Writes a status line and headers straight to a socket, for upgrade requests that have no ServerResponse. */
export function writeRawHead(socket: Socket, status: number, statusMessage: string, raw: readonly string[]): void {
	let head = `HTTP/1.1 ${status} ${statusMessage}\r\n`;
	for (let i = 0; i + 1 < raw.length; i += 2) head += `${raw[i]}: ${raw[i + 1]}\r\n`;
	socket.write(`${head}\r\n`);
}
