// The two ID checks E2B's API runs on an RPC's fields before anything else:
// utils.ShortID for a sandbox ID and github.com/google/uuid's Parse for a team
// ID. Each accepts more than the canonical form, and so must we.

import { isE2bSandboxId } from "../src/rules/sandbox-hosts.ts";

/**
 * E2B's utils.ShortID: "<id>" or "<id>-<client ID>" (the legacy composite
 * form) gives "<id>"; anything with more dashes, or an ID outside [a-z0-9]+,
 * is undefined.
 */
export function shortId(compositeId: string): string | undefined {
	const parts = compositeId.split("-");
	if (parts.length > 2) return undefined;
	const id = parts[0] ?? "";
	return isE2bSandboxId(id) ? id : undefined;
}

const HEX32 = /^[0-9a-f]{32}$/i;
const CANONICAL = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Go's uuid.Parse: the 36-character form, `urn:uuid:` before it, braces
 * around it, or 32 bare hex digits, in either case. Returns the canonical
 * lowercase form, as uuid.UUID.String() would print it, or undefined.
 */
export function parseUuid(value: string): string | undefined {
	let text = value;
	if (text.length === 45) {
		if (text.slice(0, 9).toLowerCase() !== "urn:uuid:") return undefined;
		text = text.slice(9);
	} else if (text.length === 38) {
		if (!text.startsWith("{") || !text.endsWith("}")) return undefined;
		text = text.slice(1, -1);
	} else if (text.length === 32) {
		if (!HEX32.test(text)) return undefined;
		const h = text.toLowerCase();
		return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
	}
	return CANONICAL.test(text) ? text.toLowerCase() : undefined;
}
