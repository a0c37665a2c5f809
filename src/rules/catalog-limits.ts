// What the catalog API takes of a sandbox's catalog entry (E2B's SandboxInfo
// fields), and so what the Redis catalog bridge may send it: the catalog API
// (src/catalog-api/input.ts) refuses anything else, and the bridge
// (bridge/catalog-entry.ts) leaves out, or caps, what the API would refuse.
// See src/rules/sandbox-hosts.ts for why this is its own directory.

/**
 * The longest a pushed route may live: 366 days (31,622,400 s). E2B keeps a
 * sandbox's catalog entry for the sandbox's whole lifetime (the API's
 * addSandboxToRoutingTable stores it for `MaxLengthInHours` hours), and sets
 * no upper bound on that length: it is each team's limit (1 h and 24 h on
 * E2B's public plans, whatever a custom plan says). So this bound is not a
 * sandbox's length but a guard against a mistake, such as a day's TTL sent
 * in milliseconds (1,000 days): the API refuses only what no sandbox can
 * mean, and the bridge, which puts a route again before the edge drops it
 * while its key lives, caps its routes at the same.
 */
export const maxRouteTtlSeconds = 366 * 24 * 3600;

/** The largest `sandbox_max_length_in_hours` taken; it is kept for operators, never routed on. */
export const maxSandboxLengthHours = 100_000;

/** The longest `execution_id`, `orchestrator_id` or `team_id`. */
export const maxCatalogTextLength = 128;
// Printable ASCII without spaces: UUIDs, node IDs, team IDs.
const catalogTextPattern = /^[\x21-\x7e]+$/;

/** The rule as messages and logs state it. */
export const catalogTextRule = `1 to ${maxCatalogTextLength} printable ASCII characters without spaces`;

/** Whether `value` can be an `execution_id`, `orchestrator_id` or `team_id`. */
export function isCatalogText(value: string): boolean {
	return value.length <= maxCatalogTextLength && catalogTextPattern.test(value);
}

// RFC 3339's date-time (section 5.6, which allows a lowercase T and Z).
const rfc3339Pattern = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

/** Whether `value` is an RFC 3339 date-time that names a real time, as `sandbox_started_at` and `sandbox_end_time` must. */
export function isRfc3339DateTime(value: string): boolean {
	return rfc3339Pattern.test(value) && !Number.isNaN(Date.parse(value));
}
