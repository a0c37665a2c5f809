// How a sandbox is named, for every part of this repository: the Worker
// routes on it (src/routing.ts), the catalog API stores routes under it
// (src/catalog-api/), the Redis catalog bridge mirrors the keys it names
// (bridge/), and the development stack makes and parses it (dev/). The files
// in src/rules are erasable TypeScript that uses no runtime's own APIs: the
// Worker bundles them, and Node runs bridge/ and dev/ on them by type stripping.
//
// Only the names are shared, not the whole host grammar: the Worker's
// (src/routing.ts) is its own, while the development node reads hosts as
// E2B's node does (dev/node-routing.ts, Go's parseHost), which must stay so.

/** E2B's id.ValidateSandboxID (packages/shared/pkg/id in e2b-dev/infra): lowercase ASCII letters and digits. */
const e2bSandboxIdPattern = /^[a-z0-9]+$/;

/** The longest DNS label: a sandbox's host label, `<port>-<sandboxId>`, is one. */
export const maxDnsLabelLength = 63;

/** The longest ID the edge routes: one that fits a host's label (an ID routed by header may be as long). */
export const maxSandboxIdLength = maxDnsLabelLength;

/** The rule as messages and logs state it. */
export const sandboxIdRule = `1 to ${maxSandboxIdLength} lowercase letters and digits`;

/** Whether E2B takes `text` as a sandbox ID, of any length: what the development node and control plane accept, as E2B's do. */
export function isE2bSandboxId(text: string): boolean {
	return e2bSandboxIdPattern.test(text);
}

/** Whether the edge can route `text`: E2B's rule, within one DNS label. */
export function isSandboxId(text: string): boolean {
	return text.length <= maxSandboxIdLength && e2bSandboxIdPattern.test(text);
}

/** Where a host cannot name the sandbox, E2B's E2b-Sandbox-Id and E2b-Sandbox-Port headers do (lowercased). */
export const sandboxIdHeader = "e2b-sandbox-id";
export const sandboxPortHeader = "e2b-sandbox-port";

/** The shared host's label, `sandbox.<domain>`: it names no sandbox, so its requests are routed on those headers. */
export const sharedHostLabel = "sandbox";
