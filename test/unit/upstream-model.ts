/**
 * What the fake upstream (test/unit/fake-upstream.ts, in Node) and the tests
 * that drive it (inside workerd) both need to know: the answers it can give,
 * the records it keeps, and the answers it gives when no test scripted one.
 * Pure: no Node and no Workers API, so that both sides can import it.
 */

/** The control plane's answer to one ResumeSandbox call. */
export type ResumeAnswer =
	/** OK, with this orchestrator_ip (which may be empty or not an IP, to test the Worker's checks). */
	| { kind: "ok"; ip: string }
	/** A gRPC status other than OK, with its message. */
	| { kind: "status"; code: GrpcCode; message?: string }
	/** A raw HTTP answer that is not the protocol: a 5xx, a login page, a 404. (No redirects: see fake-upstream.ts.) */
	| { kind: "http"; status: number; contentType?: string; body?: string };

/** gRPC status codes the tests use (numbers as on the wire). */
export const grpcCode = {
	invalidArgument: 3,
	deadlineExceeded: 4,
	notFound: 5,
	permissionDenied: 7,
	resourceExhausted: 8,
	failedPrecondition: 9,
	unavailable: 14,
	unauthenticated: 16,
} as const;
export type GrpcCode = (typeof grpcCode)[keyof typeof grpcCode];

/**
 * How the control plane answers one sandbox. `answers` are used in order, and
 * the last one again for every later call. With `allowedTrafficToken`, a call
 * that does not carry that e2b-traffic-access-token is refused
 * (PermissionDenied) before `answers` is consulted, and uses none of them.
 */
export interface ResumeScript {
	sandboxId: string;
	answers: ResumeAnswer[];
	/** How long each call waits before it is answered. */
	delayMs?: number;
	allowedTrafficToken?: string;
}

/** What a fake node answers to one request. */
export type NodeAnswer =
	/** 200 (or `status`) with a JSON description of what the node was sent. */
	| { kind: "echo"; status?: number }
	/** E2B's "sandbox not found", in one of its forms: the header, the JSON body, the HTML page. */
	| { kind: "notHere"; form: "header" | "json" | "html" }
	/** E2B's "the sandbox is running but port is not open": the node reached the sandbox. */
	| { kind: "portClosed" }
	/** Anything else: a plain 502, a 401, a 404. (No redirects: see fake-upstream.ts.) */
	| { kind: "raw"; status: number; contentType?: string; body?: string };

/** How the node at `ip` answers: `answers` in order, then the last one again. */
export interface NodeScript {
	ip: string;
	answers: NodeAnswer[];
}

export type RecordKind = "control-plane" | "node" | "stray";

/** One request the Worker (or a Durable Object) sent out, as the fake saw it. */
export interface OutboundRecord {
	seq: number;
	kind: RecordKind;
	method: string;
	url: string;
	/** Lowercased names, in the order the runtime sent them. */
	headers: [string, string][];
	/** The body as text (UTF-8, lossy for binary bodies); for secrets checks and replay comparisons. */
	body: string;
	bodyBytes: number;
	/** Control plane: the sandbox_id the call carried, and the answer given. */
	sandboxId?: string;
	protocol?: "grpc-web" | "connect" | "unknown";
	resumeAnswer?: ResumeAnswer;
	/** Node: which node (its IP) was asked, and what it answered. */
	nodeIp?: string;
	nodeAnswer?: NodeAnswer;
	/**
	 * Where a secret (API_SECRET, CATALOG_SECRET) appeared in the request,
	 * found by the fake in the whole request: "API_SECRET in header x-foo".
	 * The control plane's x-e2b-client-proxy-auth holding API_SECRET is not
	 * a leak; whether it held it is `proxyAuth`.
	 */
	leaks: string[];
	/** Control plane: whether x-e2b-client-proxy-auth was API_SECRET exactly, something else, or absent. */
	proxyAuth?: "api-secret" | "other" | "absent";
}

/**
 * Requests the property tests send carry these. The fake node answers such a
 * request with every record since `since` (compact: see `compactRecord`) in
 * `sentHeader`, so that a case answered by a node needs no second call to
 * learn what it sent.
 */
export const caseHeader = "x-prop-case";
export const sinceHeader = "x-prop-since";
export const sentHeader = "x-fake-sent";

/** The request headers a compact record keeps: those the property checks read. */
const compactHeaders = new Set(["e2b-sandbox-id", "e2b-sandbox-port", "e2b-sandbox-request-port", caseHeader]);

/**
 * A record without its body or other headers: small enough for a response
 * header, and without the control plane's API_SECRET (a secret in its URL
 * would be there, but that is a leak the checks report anyway).
 */
export function compactRecord(record: OutboundRecord): OutboundRecord {
	return {
		...record,
		headers: record.headers.filter(([name]) => compactHeaders.has(name)),
		body: "",
	};
}

export interface RecordsPage {
	/** Compact (see compactRecord) when asked for so. */
	records: OutboundRecord[];
	/** The `since` to pass next time to get only newer records. */
	next: number;
}

export const resumePath = "/proxy.SandboxService/ResumeSandbox";
/** The port of every fake node's orchestrator proxy, as in NODE_ORIGIN_TEMPLATE. */
export const nodePort = 5007;
/** Marks every response a fake node gives, with the node's IP as its value. */
export const fakeNodeHeader = "x-fake-node";

/** FNV-1a, 32 bits: a stable spread of IDs over behaviours. */
export function hash32(text: string): number {
	let hash = 0x811c9dc5;
	for (let i = 0; i < text.length; i++) {
		hash ^= text.charCodeAt(i);
		hash = Math.imul(hash, 0x01000193) >>> 0;
	}
	return hash >>> 0;
}

/**
 * The node IP the control plane gives, on its `call`-th call (from 0), for a
 * sandbox nobody scripted: mostly IPv4, sometimes IPv6. A sandbox moves
 * between nodes from one resume to the next, as it may in E2B.
 */
export function defaultNodeIp(sandboxId: string, call = 0): string {
	const h = hash32(`ip:${sandboxId}#${call}`);
	if (h % 8 === 0) return `fd00::${((h >>> 8) & 0xffff).toString(16)}`;
	return `10.${(h >>> 8) & 255}.${(h >>> 16) & 255}.${(h >>> 24) & 255}`;
}

/**
 * How the control plane answers its `call`-th call (from 0) for a sandbox
 * nobody scripted. Mostly OK, so that requests reach nodes; otherwise every
 * other row of the contract's table, and a few answers that must not be
 * taken for a route (no redirects: see defaultNodeAnswer). The answer changes from call to call, so
 * that a sandbox asked about again meets something new.
 */
export function defaultResumeAnswer(sandboxId: string, call = 0): ResumeAnswer {
	const roll = hash32(`cp:${sandboxId}#${call}`) % 100;
	if (roll < 61) return { kind: "ok", ip: defaultNodeIp(sandboxId, call) };
	if (roll < 66) return { kind: "status", code: grpcCode.notFound, message: "sandbox not found" };
	if (roll < 70) return { kind: "status", code: grpcCode.permissionDenied, message: "permission denied" };
	if (roll < 72) return { kind: "status", code: grpcCode.unauthenticated, message: "unauthenticated" };
	if (roll < 75) return { kind: "status", code: grpcCode.unavailable, message: "unavailable" };
	if (roll < 80)
		return { kind: "status", code: grpcCode.failedPrecondition, message: "sandbox is still transitioning" };
	if (roll < 84) return { kind: "status", code: grpcCode.resourceExhausted, message: "slow down" };
	if (roll < 86) return { kind: "status", code: grpcCode.invalidArgument, message: "bad id" };
	if (roll < 88) return { kind: "http", status: 500, contentType: "text/plain", body: "upstream exploded" };
	if (roll < 90) return { kind: "http", status: 200, contentType: "text/html", body: "<html>login</html>" };
	if (roll < 92) return { kind: "http", status: 404, contentType: "text/html", body: "<html>no such route</html>" };
	if (roll < 94) return { kind: "ok", ip: "" };
	if (roll < 96) return { kind: "ok", ip: "evil.test" };
	if (roll < 98) return { kind: "ok", ip: "10.0.0.1:80/x" };
	return { kind: "ok", ip: `::ffff:${defaultNodeIp(sandboxId, call).replace(/^fd00::.*$/, "10.1.2.3")}` };
}

/**
 * How a node nobody scripted answers: mostly the request's echo, otherwise
 * E2B's "not here" in its three forms, its port-closed answer, other 502s
 * and other statuses that must be passed on.
 *
 * No redirects, here or from the control plane: miniflare hands an outbound
 * fetch to a Node outboundService through a Worker of its own, whose fetch
 * follows redirects before the Worker under test sees them (DEVELOPERS.md
 * says the same of this harness; test/e2e checks redirects on real sockets).
 */
export function defaultNodeAnswer(ip: string): NodeAnswer {
	const roll = hash32(`node:${ip}`) % 100;
	if (roll < 70) return { kind: "echo" };
	if (roll < 76) return { kind: "notHere", form: "header" };
	if (roll < 80) return { kind: "notHere", form: "json" };
	if (roll < 83) return { kind: "notHere", form: "html" };
	if (roll < 88) return { kind: "raw", status: 502, contentType: "text/plain", body: "bad gateway" };
	if (roll < 92) return { kind: "raw", status: 401, contentType: "text/plain", body: "who are you" };
	if (roll < 96) return { kind: "echo", status: 404 };
	return { kind: "portClosed" };
}
