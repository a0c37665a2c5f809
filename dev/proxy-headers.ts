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

/** Writes a status line and headers straight to a socket, for upgrade requests that have no ServerResponse. */
export function writeRawHead(socket: Socket, status: number, statusMessage: string, raw: readonly string[]): void {
	let head = `HTTP/1.1 ${status} ${statusMessage}\r\n`;
	for (let i = 0; i + 1 < raw.length; i += 2) head += `${raw[i]}: ${raw[i + 1]}\r\n`;
	socket.write(`${head}\r\n`);
}
