/**
 * Property-based tests of the whole Worker: generated requests go through
 * its real fetch handler inside workerd, and everything it fetches (the
 * control plane, nodes, anywhere else) reaches the fake upstream
 * (test/unit/fake-upstream.ts), which answers and records it. For every
 * generated request:
 *
 *   a. nothing is a 500, and nothing throws;
 *   b. every outbound fetch goes to the control plane (CONTROL_PLANE_URL),
 *      or to a node origin built from NODE_ORIGIN_TEMPLATE with an IP that
 *      the catalog holds for that very sandbox (the control plane answered
 *      it, or the catalog API was given it);
 *   c. neither secret (API_SECRET, CATALOG_SECRET) appears in a response
 *      (status line, headers, body), a log line, or a request to a node; the
 *      control plane gets API_SECRET in x-e2b-client-proxy-auth, nowhere else;
 *   d. routing agrees with the reference model in test/unit/host-model.ts.
 *
 * One run of 10,000 cases checks all four, so each property holds for
 * 10,000 requests; the run then checks that enough of them reached the
 * control plane and nodes for that to mean something.
 *
 * The world is stateful, as in production: sandbox IDs come mostly from a
 * pool used throughout the run (so that caches, remembered failures,
 * stored routes and catalog writes all meet later requests), some are new
 * for one case (a first contact, with a Durable Object of its own: about
 * 25 ms each, hence few), and some are invalid. The fake control plane's
 * answers change from call to call of a sandbox (test/unit/upstream-model.ts).
 * A failure prints fast-check's seed and the shrunk request; the state the
 * earlier cases left behind is not part of the seed, so a replay may need
 * the whole run.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import worker from "../../src/index.ts";
import { type ExpectedRoute, expectedRoute, type RoutingRejection } from "./host-model.ts";
import { headerOf, records } from "./upstream.ts";
import {
	caseHeader,
	fakeNodeHeader,
	nodePort,
	type OutboundRecord,
	type RecordsPage,
	resumePath,
	sentHeader,
	sinceHeader,
} from "./upstream-model.ts";

const numRuns = 10_000;

const apiSecret = env.API_SECRET;
const catalogSecret = env.CATALOG_SECRET;
const controlPlaneOrigin = new URL(env.CONTROL_PLANE_URL).origin;
const domains = env.SANDBOX_DOMAIN.split(",").map((domain) => domain.trim().toLowerCase());

// The same Worker, as production routes: no header routing on localhost or
// IP literals. (Its Durable Objects keep the project's own env.)
const productionEnv = {
	...env,
	ENVIRONMENT: "production",
	CONTROL_PLANE_URL: env.CONTROL_PLANE_URL.replace(/^http:/, "https:"),
} as Env;

// ---------------------------------------------------------------------------
// Sandbox IDs

const salt = Math.random()
	.toString(36)
	.slice(2, 7)
	.replace(/[^a-z0-9]/g, "a");
/** Used throughout the run, so that later requests meet what earlier ones left. */
const poolIds: readonly string[] = [
	...Array.from({ length: 36 }, (_, i) => `p${salt}${i}`),
	`l${salt}${"x".repeat(63 - 1 - salt.length)}`, // the longest an ID can be
	`9${salt}0123`, // starting with a digit
	"a",
	"z9",
];
let freshCounter = 0;

type IdChoice =
	| { kind: "pool"; id: string }
	/** A new ID, allocated when the case runs: a first contact, whatever ran before. */
	| { kind: "fresh" }
	| { kind: "literal"; id: string };

const validLiteralId = fc.stringMatching(/^[a-z0-9]{1,63}$/);
const invalidId = fc.oneof(
	fc.constantFrom("", "ABC123", "abcD", "a_b", "x".repeat(64), `${"1".repeat(70)}`, "ab~c", "a%20b", "a@b", "*"),
	fc.stringMatching(/^[a-zA-Z0-9_~%@!*+]{1,70}$/),
);
const idChoice: fc.Arbitrary<IdChoice> = fc.oneof(
	{ weight: 320, arbitrary: fc.constantFrom(...poolIds).map((id): IdChoice => ({ kind: "pool", id })) },
	{ weight: 1, arbitrary: fc.constant<IdChoice>({ kind: "fresh" }) },
	{ weight: 1, arbitrary: validLiteralId.map((id): IdChoice => ({ kind: "literal", id })) },
	{ weight: 40, arbitrary: invalidId.map((id): IdChoice => ({ kind: "literal", id })) },
);

function idText(choice: IdChoice): string {
	if (choice.kind !== "fresh") return choice.id;
	freshCounter += 1;
	return `f${salt}${freshCounter}`;
}

// ---------------------------------------------------------------------------
// Hosts

const portText = fc.oneof(
	{ weight: 50, arbitrary: fc.constantFrom("3000", "8080", "49983", "80", "1", "65535") },
	{ weight: 15, arbitrary: fc.integer({ min: 1, max: 65535 }).map(String) },
	{
		weight: 8,
		arbitrary: fc
			.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 0, max: 65535 }))
			.map(([zeros, port]) => `${"0".repeat(zeros)}${port}`),
	},
	{
		weight: 8,
		arbitrary: fc.constantFrom("0", "00000", "65536", "99999", "123456", "", "abc", "+1", "1e3", "0x10", "3000a", "٣"),
	},
);
const suffix = fc.oneof(
	{ weight: 80, arbitrary: fc.constant("") },
	{ weight: 15, arbitrary: fc.stringMatching(/^-[a-zA-Z0-9_-]{0,10}$/) },
	{ weight: 3, arbitrary: fc.constantFrom("-", "--", "-x.y", "-CLIENT") },
);
const servedDomain = fc
	.tuple(fc.constantFrom(...domains), fc.constantFrom("lower", "upper", "mixed"))
	.map(([domain, casing]) =>
		casing === "lower"
			? domain
			: casing === "upper"
				? domain.toUpperCase()
				: [...domain].map((c, i) => (i % 2 === 0 ? c.toUpperCase() : c)).join(""),
	);
const unservedDomain = fc.constantFrom(
	"example.com",
	"localhost.evil.com",
	"sbx.example.com.evil",
	"evillocalhost",
	"xsbx.example.com",
	"example.com.",
	"",
);
const hostPort = fc.oneof(
	{ weight: 60, arbitrary: fc.constant("") },
	{ weight: 30, arbitrary: fc.constantFrom(":8787", ":443", ":80", ":") },
	{ weight: 4, arbitrary: fc.constantFrom(":abc", ":8787:1", "::1") },
);
const trailingDot = fc.constantFrom("", "", "", ".");
const labelCase = (label: string) =>
	fc.constantFrom(label, label.toUpperCase(), `${label.slice(0, 1).toUpperCase()}${label.slice(1)}`);

type HostSpec =
	| { kind: "sandbox"; port: string; id: IdChoice; suffix: string; domain: string; dot: string; hostPort: string }
	| { kind: "literal"; text: string };

const sandboxHost = fc
	.record({
		port: portText,
		id: idChoice,
		suffix,
		domain: fc.oneof({ weight: 6, arbitrary: servedDomain }, { weight: 1, arbitrary: unservedDomain }),
		dot: trailingDot,
		hostPort,
	})
	.map((spec): HostSpec => ({ kind: "sandbox", ...spec }));
const literalHost = (text: fc.Arbitrary<string>) => text.map((t): HostSpec => ({ kind: "literal", text: t }));
const hostSpec: fc.Arbitrary<HostSpec> = fc.oneof(
	{ weight: 48, arbitrary: sandboxHost },
	{
		weight: 8,
		arbitrary: literalHost(
			fc
				.tuple(labelCase("edge"), servedDomain, trailingDot, hostPort)
				.map(([label, domain, dot, port]) => `${label}.${domain}${dot}${port}`),
		),
	},
	{
		weight: 8,
		arbitrary: literalHost(
			fc
				.tuple(labelCase("sandbox"), fc.oneof(servedDomain, unservedDomain), trailingDot, hostPort)
				.map(([label, domain, dot, port]) => `${label}.${domain}${dot}${port}`),
		),
	},
	{
		weight: 10,
		arbitrary: literalHost(
			fc
				.tuple(
					fc.oneof(
						fc.constantFrom("localhost", "LOCALHOST", "127.0.0.1", "[::1]", "[fd00::1]", "999.1.1.1", "[::g]", "1.2.3"),
						fc.ipV4(),
						fc.ipV6().map((ip) => `[${ip}]`),
					),
					hostPort,
				)
				.map(([host, port]) => `${host}${port}`),
		),
	},
	{
		weight: 6,
		arbitrary: literalHost(
			fc
				.tuple(
					fc.constantFrom("a.", "x.y.", "xn--", "XN--", "xn--3000-", "edge.", "sandbox."),
					fc.stringMatching(/^[a-z0-9-]{0,12}$/),
					servedDomain,
				)
				.map(([prefix, middle, domain]) => `${prefix}${middle}.${domain}`),
		),
	},
	{ weight: 3, arbitrary: literalHost(servedDomain) },
	{ weight: 5, arbitrary: literalHost(fc.string({ unit: "grapheme-ascii", maxLength: 40 })) },
);

// ---------------------------------------------------------------------------
// Headers, methods, bodies

const token = fc.stringMatching(/^[A-Za-z0-9._~-]{1,24}$/);
const hugeToken = fc.integer({ min: 4097, max: 6000 }).map((length) => "t".repeat(length));
const headerValue = fc.string({ unit: "grapheme-ascii", maxLength: 60 });
const clientHeaders = fc.record(
	{
		"e2b-sandbox-id": idChoice,
		"e2b-sandbox-port": portText,
		"e2b-traffic-access-token": fc.oneof(
			{ weight: 9, arbitrary: fc.constantFrom("tok-a", "tok-b", "tok-c") },
			{ weight: 1, arbitrary: hugeToken },
		),
		"x-access-token": fc.oneof({ weight: 9, arbitrary: token }, { weight: 1, arbitrary: hugeToken }),
		// Internal headers a client may try to spoof.
		"x-e2b-client-proxy-auth": token,
		"x-e2b-sandbox-not-found": fc.constantFrom("1", "true"),
		"x-forwarded-host": fc.constantFrom("evil.test", "edge.localhost"),
		"x-forwarded-proto": fc.constantFrom("https", "gopher"),
		accept: fc.constantFrom("application/json", "text/html,application/xhtml+xml", "*/*"),
		"user-agent": fc.constantFrom(
			"curl/8.5.0",
			"Mozilla/5.0 (X11; Linux x86_64) Firefox/131.0",
			"python-requests/2.32",
		),
		"sec-fetch-mode": fc.constantFrom("navigate", "cors", "websocket"),
		"x-requested-with": fc.constant("XMLHttpRequest"),
		connection: fc.constantFrom("close", "keep-alive, x-hop"),
		"x-hop": headerValue,
		te: fc.constant("trailers"),
		"proxy-authorization": fc.constant("Basic Zm9vOmJhcg=="),
		authorization: fc.constantFrom("Bearer not-the-secret", "Basic YTpi"),
		"cf-connecting-ip": fc.ipV4(),
		"x-custom": headerValue,
	},
	{ requiredKeys: [] },
);

const method = fc.oneof(
	{ weight: 50, arbitrary: fc.constant("GET") },
	{ weight: 10, arbitrary: fc.constant("HEAD") },
	{ weight: 20, arbitrary: fc.constant("POST") },
	{ weight: 20, arbitrary: fc.constantFrom("PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND") },
);

type BodySpec =
	| { kind: "none" }
	| { kind: "text"; text: string }
	| { kind: "bytes"; length: number }
	| { kind: "stream"; chunks: string[] };
const body: fc.Arbitrary<BodySpec> = fc.oneof(
	{ weight: 40, arbitrary: fc.constant<BodySpec>({ kind: "none" }) },
	{ weight: 50, arbitrary: fc.string({ maxLength: 300 }).map((text): BodySpec => ({ kind: "text", text })) },
	{
		weight: 2,
		arbitrary: fc.constantFrom(64 * 1024, 64 * 1024 + 1, 80_000).map((length): BodySpec => ({ kind: "bytes", length })),
	},
	{
		weight: 5,
		arbitrary: fc
			.array(fc.string({ minLength: 1, maxLength: 200 }), { minLength: 1, maxLength: 3 })
			.map((chunks): BodySpec => ({ kind: "stream", chunks })),
	},
);

// Paths and queries of URL characters, percent-escapes and dot segments
// (cheaper to generate than fc.webPath, which costs ~2 s a run).
const urlText = (maxLength: number) =>
	fc.string({ unit: fc.constantFrom(..."abcXYZ019-._~%20!$&'()*+,;=:@"), maxLength });
const path = fc
	.tuple(
		fc.array(fc.oneof(urlText(8), fc.constantFrom(".", "..", "%2F", "%00")), { maxLength: 4 }),
		fc.option(urlText(20), { freq: 3 }),
	)
	.map(([segments, query]) => `/${segments.join("/")}${query === null ? "" : `?${query}`}`);

// The catalog API, as the control plane calls it (with the secret, mostly
// writes) or as anyone else does (any path, any method, wrong credentials).
const anyAuthorization = fc.constantFrom<string | null>(
	null,
	"Bearer wrong-token-wrong-token",
	"Basic YTpi",
	"Bearer ",
	`Bearer ${catalogSecret}`,
);
const catalogCall = fc.oneof(
	fc.record({
		authorization: fc.constantFrom(`Bearer ${catalogSecret}`, `bearer ${catalogSecret}`),
		call: fc.constantFrom("put", "put", "batch", "delete", "describe"),
		target: fc.oneof({ weight: 9, arbitrary: fc.constantFrom(...poolIds) }, { weight: 1, arbitrary: invalidId }),
		method: fc.constant(""),
		ip: fc.oneof(fc.ipV4(), fc.ipV6(), fc.constantFrom("evil.test", "10.0.0.1:80", "")),
		executionId: fc.constantFrom("exec-1", "exec-2"),
	}),
	fc.record({
		authorization: anyAuthorization,
		call: fc.constant("other"),
		target: fc.oneof(
			fc.constantFrom("/healthz", "/v1/sandboxes/batch", "/v1/sandboxes", "/nothing", "/v1/sandboxes/a/b"),
			fc.oneof(fc.constantFrom(...poolIds), invalidId).map((id) => `/v1/sandboxes/${id}`),
		),
		method: fc.constantFrom("GET", "PUT", "DELETE", "POST", "PATCH", "OPTIONS"),
		ip: fc.ipV4(),
		executionId: fc.constant("exec-1"),
	}),
);

type CatalogCall = typeof catalogCall extends fc.Arbitrary<infer T> ? T : never;

interface Case {
	environment: "development" | "production";
	/**
	 * Through the runtime's dispatch (exports.default.fetch), or a call of
	 * the Worker's fetch handler with its env: the same handler, about 1.4 ms
	 * a request cheaper, which is what lets a run afford 10,000 of them.
	 */
	via: "runtime" | "handler";
	host: HostSpec;
	/** Whether the host goes in the Host header, or only in the URL. */
	hostInHeader: boolean;
	path: string;
	method: string;
	headers: Partial<Record<string, string | IdChoice>>;
	body: BodySpec;
	catalog: CatalogCall | null;
}

const caseArb: fc.Arbitrary<Case> = fc
	.record({
		environment: fc.constantFrom("development", "development", "development", "production"),
		via: fc.constantFrom("runtime", "handler", "handler", "handler", "handler", "handler", "handler", "handler"),
		host: hostSpec,
		hostInHeader: fc.constantFrom(true, true, true, true, true, true, true, true, true, false),
		path,
		method,
		headers: clientHeaders,
		body,
		catalog: fc.option(catalogCall, { freq: 4 }),
	})
	// The runtime's dispatch gives the Worker the project's env, which is development.
	.map((c): Case => (c.environment === "production" ? { ...c, via: "handler" } : c));

// ---------------------------------------------------------------------------
// Running a case

interface Materialized {
	request: Request;
	environment: "development" | "production";
	via: "runtime" | "handler";
	/** What the Worker routes on, as it will see it. */
	routing: ExpectedRoute;
	/** Set when this case is a catalog API write that, if accepted, routes `sandboxId` to `ip`. */
	push?: { sandboxId: string; ip: string; batch: boolean };
	url: URL;
}

function hostText(spec: HostSpec): string {
	if (spec.kind === "literal") return spec.text;
	return `${spec.port}-${idText(spec.id)}${spec.suffix}.${spec.domain}${spec.dot}${spec.hostPort}`;
}

function bodyInit(spec: BodySpec): BodyInit | null {
	switch (spec.kind) {
		case "none":
			return null;
		case "text":
			return spec.text;
		case "bytes":
			return new Uint8Array(spec.length).fill(0x61);
		case "stream": {
			const chunks = [...spec.chunks];
			// A byte stream, as the runtime gives a Worker its request's body.
			return new ReadableStream({
				type: "bytes",
				pull(controller) {
					const chunk = chunks.shift();
					if (chunk === undefined) controller.close();
					else controller.enqueue(new TextEncoder().encode(chunk));
				},
			});
		}
	}
}

function materialize(c: Case, caseId: string): Materialized {
	// Marks the request, and asks a node that answers it to say what was sent
	// since the last look; the Worker passes both on like any client header.
	const headers = new Headers({ [caseHeader]: caseId, [sinceHeader]: String(cursor) });
	for (const [name, value] of Object.entries(c.headers)) {
		if (value === undefined) continue;
		headers.set(name, typeof value === "string" ? value : idText(value));
	}
	let host = hostText(c.host);
	let method = c.method;
	let path = c.path;
	let bodySpec = c.body;
	let push: Materialized["push"];
	if (c.catalog !== null && c.host.kind === "literal" && /^edge\./i.test(c.host.text)) {
		// A catalog API call: its own paths, credentials and bodies.
		const call = c.catalog;
		headers.delete("authorization");
		if (call.authorization !== null) headers.set("authorization", call.authorization);
		const putBody = { orchestrator_ip: call.ip, execution_id: call.executionId, ttl_seconds: 600 };
		switch (call.call) {
			case "put":
				method = "PUT";
				path = `/v1/sandboxes/${call.target}`;
				bodySpec = { kind: "text", text: JSON.stringify(putBody) };
				// The ID as the catalog API reads it from the path: "%61" is "a".
				push = { sandboxId: decodedPathSegment(call.target), ip: call.ip, batch: false };
				break;
			case "batch":
				method = "POST";
				path = "/v1/sandboxes/batch";
				bodySpec = {
					kind: "text",
					text: JSON.stringify({
						put: [{ sandbox_id: call.target, ...putBody }],
						delete: [{ sandbox_id: poolIds[0], execution_id: call.executionId }],
					}),
				};
				push = { sandboxId: call.target, ip: call.ip, batch: true };
				break;
			case "delete":
				method = "DELETE";
				path = `/v1/sandboxes/${call.target}?execution_id=${call.executionId}`;
				break;
			case "describe":
				method = "GET";
				path = `/v1/sandboxes/${call.target}`;
				break;
			default:
				method = call.method;
				path = call.target;
				if (method === "DELETE") path = `${path}?execution_id=${call.executionId}`;
				if (method === "PUT") {
					bodySpec = { kind: "text", text: JSON.stringify(putBody) };
					const id = /^\/v1\/sandboxes\/([^/]+)$/.exec(path)?.[1];
					if (id !== undefined) push = { sandboxId: decodedPathSegment(id), ip: call.ip, batch: false };
				}
		}
	}
	if (method === "GET" || method === "HEAD") bodySpec = { kind: "none" };

	// The host goes in the Host header, or only in the URL (when it parses as one).
	// An empty Host does not survive the runtime's dispatch (exports.default):
	// the Worker sees the URL's host instead; only the direct call keeps it.
	let url = new URL(`http://proxy.test${path}`);
	let inUrl = false;
	// Only a plain host in the URL: the runtime's fetch refuses one like "3000-+.localhost".
	if (!c.hostInHeader && /^[A-Za-z0-9.-]+(:\d*)?$/.test(host)) {
		try {
			url = new URL(`http://${host}${path}`);
			inUrl = true;
		} catch {
			// Not a URL's host: it goes in the header after all.
		}
	}
	if (!inUrl && (host.trim() !== "" || c.via === "handler")) headers.set("host", host);
	let request: Request;
	try {
		request = new Request(url, { method, headers, body: bodyInit(bodySpec) });
	} catch (error) {
		throw new Error(`the test built a request the platform refuses (a bug in the test): ${String(error)}`);
	}
	host = request.headers.get("host") ?? url.host;
	return {
		request,
		environment: c.environment,
		via: c.via,
		url,
		routing: expectedRoute({
			host,
			sandboxIdHeader: request.headers.get("e2b-sandbox-id"),
			sandboxPortHeader: request.headers.get("e2b-sandbox-port"),
			environment: c.environment,
			domains,
		}),
		...(push === undefined ? {} : { push }),
	};
}

function decodedPathSegment(segment: string): string {
	try {
		return decodeURIComponent(segment);
	} catch {
		return segment;
	}
}

async function dispatch(m: Materialized): Promise<Response> {
	if (m.via === "runtime") {
		if (m.environment !== "development") throw new Error("the runtime's dispatch has the project's own env only");
		return exports.default.fetch(m.request);
	}
	const ctx = createExecutionContext();
	const response = await worker.fetch(m.request, m.environment === "production" ? productionEnv : env, ctx);
	await waitOnExecutionContext(ctx);
	return response;
}

// ---------------------------------------------------------------------------
// What the run has learned, and the checks

/** Node IPs the catalog has held, per sandbox: from the control plane's OK answers and accepted pushes. */
const catalogIps = new Map<string, Set<string>>();
const logLines: string[] = [];
let cursor = 0;
let caseCounter = 0;
/** The cases since the fake was last asked what went out: they sent nothing, or the next look says so. */
const unlooked: string[] = [];
/** Cases and milliseconds, by how the request went in and what it met. */
const timing: Record<string, { cases: number; ms: number }> = {};

const stats = {
	cases: 0,
	routedBy: { host: 0, headers: 0 },
	rejected: 0,
	catalogApi: 0,
	production: 0,
	reachedControlPlane: 0,
	reachedNode: 0,
	sentTwiceOrMore: 0,
	acceptedPushes: 0,
	/** 429s from the edge's own resume budgets: the project sets them far above a run's needs. */
	edgeBudgetSpent: 0,
	secretSentToControlPlane: 0,
	statuses: new Map<number, number>(),
};

const routingReasons: ReadonlySet<string> = new Set<RoutingRejection>([
	"invalid_host",
	"host_not_served",
	"invalid_port",
	"invalid_sandbox_id",
	"missing_routing_headers",
]);
const catalogReasons: ReadonlySet<string> = new Set([
	"invalid_request",
	"catalog_unauthenticated",
	"catalog_forbidden",
	"not_found",
	"route_not_found",
	"method_not_allowed",
	"request_body_incomplete",
	"catalog_unavailable",
]);

function isIp(text: string): boolean {
	if (/^\d{1,3}(\.\d{1,3}){3}$/.test(text)) return text.split(".").every((part) => Number(part) <= 255);
	if (!/^[0-9a-fA-F:.]+$/.test(text) || !text.includes(":")) return false;
	try {
		return new URL(`http://[${text}]/`).hostname !== "";
	} catch {
		return false;
	}
}

function nodeOrigin(ip: string): string {
	return new URL(`http://${ip.includes(":") ? `[${ip}]` : ip}:${nodePort}`).origin;
}

function learn(sandboxId: string, ip: string): void {
	let ips = catalogIps.get(sandboxId);
	if (ips === undefined) {
		ips = new Set();
		catalogIps.set(sandboxId, ips);
	}
	ips.add(nodeOrigin(ip));
}

/** What the Worker answered, as far as the checks need it. */
interface Answer {
	status: number;
	fromNode: string | null;
	/** For the Worker's own errors (JSON, or the HTML page's fields). */
	reason?: string;
	sandboxId?: string;
	json?: unknown;
}

function readAnswer(response: Response, text: string): Answer {
	const answer: Answer = { status: response.status, fromNode: response.headers.get(fakeNodeHeader) };
	if (answer.fromNode !== null) return answer;
	const type = response.headers.get("content-type") ?? "";
	if (type.startsWith("application/json")) {
		try {
			const json = JSON.parse(text) as Record<string, unknown>;
			answer.json = json;
			if (typeof json.reason === "string") answer.reason = json.reason;
			if (typeof json.sandboxId === "string") answer.sandboxId = json.sandboxId;
		} catch {
			// Not JSON after all; the checks below say what they need.
		}
	} else if (type.startsWith("text/html")) {
		const reason = /Reason: <code>([a-z_]+)<\/code>/.exec(text)?.[1];
		if (reason !== undefined) answer.reason = reason;
		answer.sandboxId = /Sandbox <code>([^<]*)<\/code>/.exec(text)?.[1] ?? "";
	}
	return answer;
}

function secretsIn(text: string): string[] {
	const found: string[] = [];
	if (text.includes(apiSecret)) found.push("API_SECRET");
	if (text.includes(catalogSecret)) found.push("CATALOG_SECRET");
	return found;
}

function describeRecord(record: OutboundRecord): string {
	return `${record.kind} ${record.method} ${record.url}`;
}

/** (b) and (c) for the requests the Worker sent out. */
function checkOutbound(sent: OutboundRecord[], unlookedCases: readonly string[]): void {
	for (const record of sent) {
		const where = `${describeRecord(record)} (case ${headerOf(record, caseHeader) ?? `of the ${unlookedCases.length} since the last look, or this one`})`;
		expect(record.leaks, `c: ${where}`).toEqual([]);
		if (record.kind === "control-plane") {
			const url = new URL(record.url);
			expect(url.origin, `b: ${where}`).toBe(controlPlaneOrigin);
			expect(url.pathname, `b: ${where}`).toBe(resumePath);
			expect(record.proxyAuth, `c: ${where} carries API_SECRET as its x-e2b-client-proxy-auth`).toBe("api-secret");
			stats.secretSentToControlPlane += 1;
			continue;
		}
		expect(record.kind, `b: ${where} goes to neither the control plane nor a node`).toBe("node");
		const sandboxId = headerOf(record, "e2b-sandbox-id") ?? "";
		const origin = new URL(record.url).origin;
		expect(
			catalogIps.get(sandboxId)?.has(origin) ?? false,
			`b: ${where} for sandbox ${sandboxId}, whose catalog held ${[...(catalogIps.get(sandboxId) ?? [])].join(", ") || "nothing"}`,
		).toBe(true);
	}
}

/**
 * (d): the Worker routed the request where the model says, and only there.
 * Returns what does not match, or null; counts what it matched.
 */
function routingMismatch(
	expected: ExpectedRoute,
	m: Materialized,
	answer: Answer,
	caseRecords: OutboundRecord[],
	bodyRead: boolean,
): string | null {
	const outbound = caseRecords.map(describeRecord);
	switch (expected.kind) {
		case "either": {
			const mismatches = expected.alternatives.map((alternative) =>
				routingMismatch(alternative, m, answer, caseRecords, bodyRead),
			);
			return mismatches.includes(null) ? null : mismatches.join("; or ");
		}
		case "rejected":
			if (answer.status !== 400) return `a 400, not ${answer.status}`;
			if (bodyRead && !expected.reasons.has(answer.reason as RoutingRejection)) {
				return `reason ${[...expected.reasons].join("|")}, not ${answer.reason}`;
			}
			if (outbound.length > 0) return `no fetch, not ${outbound.join(", ")}`;
			return null;
		case "catalog-api":
			if (answer.fromNode !== null) return `the catalog API, not node ${answer.fromNode}`;
			if (answer.reason !== undefined && !catalogReasons.has(answer.reason)) {
				return `a catalog API answer, not ${answer.reason}`;
			}
			if (outbound.length > 0) return `no fetch, not ${outbound.join(", ")}`;
			return null;
		case "sandbox": {
			const want = JSON.stringify([expected.sandboxId, String(expected.port)]);
			for (const record of caseRecords) {
				const got =
					record.kind === "control-plane"
						? [record.sandboxId, headerOf(record, "e2b-sandbox-request-port")]
						: [headerOf(record, "e2b-sandbox-id"), headerOf(record, "e2b-sandbox-port")];
				if (JSON.stringify(got) !== want) return `${describeRecord(record)} for ${want}, not ${JSON.stringify(got)}`;
				const sent = new URL(record.url);
				if (record.kind === "node" && sent.pathname + sent.search !== m.url.pathname + m.url.search) {
					return `${describeRecord(record)} with the path ${m.url.pathname}${m.url.search}`;
				}
			}
			if (answer.fromNode !== null) {
				if (!caseRecords.some((record) => record.kind === "node" && record.nodeIp === answer.fromNode)) {
					return `an answer from node ${answer.fromNode}, which was sent nothing`;
				}
			} else if (answer.reason !== undefined) {
				if (routingReasons.has(answer.reason)) return `routed to ${want}, not refused as ${answer.reason}`;
				if (answer.reason === "invalid_access_token") {
					if (!hasOversizedToken(m.request.headers)) return "no invalid_access_token for tokens of allowed length";
				} else if (answer.sandboxId !== expected.sandboxId) {
					return `an answer about ${expected.sandboxId}, not ${answer.sandboxId}`;
				}
			} else if (answer.status === 400 && !hasOversizedToken(m.request.headers)) {
				return `routed to ${want}, not a bare 400`;
			}
			return null;
		}
	}
}

/** A 400 answers an access token over 4096 characters (docs/operations.md, "Errors"), even before a route is found. */
function hasOversizedToken(headers: Headers): boolean {
	return ["e2b-traffic-access-token", "x-access-token"].some((name) => (headers.get(name)?.length ?? 0) > 4096);
}

function checkRouting(m: Materialized, answer: Answer, caseRecords: OutboundRecord[], bodyRead: boolean): void {
	const mismatch = routingMismatch(m.routing, m, answer, caseRecords, bodyRead);
	expect(
		mismatch,
		`d: the model expected ${JSON.stringify(m.routing, (_key, value) => (value instanceof Set ? [...value] : value))}`,
	).toBeNull();
}

/** The sandbox and port a request is routed to, if the model routes it (or may). */
function targetOf(expected: ExpectedRoute): { sandboxId: string; port: string } | undefined {
	if (expected.kind === "sandbox") return { sandboxId: expected.sandboxId, port: String(expected.port) };
	if (expected.kind === "either") {
		for (const alternative of expected.alternatives) {
			const target = targetOf(alternative);
			if (target !== undefined) return target;
		}
	}
	return undefined;
}

/**
 * The requests sent out since the last look, split into this case's and
 * any others. A node request is known by the case number the client sent
 * (the Worker passes client headers on); a control-plane call, which
 * carries no client header, by its sandbox and port.
 */
async function outboundSinceLastLook(
	caseId: string,
	target: { sandboxId: string; port: string } | undefined,
	response: Response | undefined,
) {
	// A node's answer says what was sent up to it; after it the Worker sends nothing more.
	const told = response?.headers.get(sentHeader) ?? null;
	const page =
		told !== null && response?.headers.has(fakeNodeHeader) === true
			? (JSON.parse(decodeURIComponent(told)) as RecordsPage)
			: await records({ since: cursor, compact: true });
	cursor = page.next;
	const mine: OutboundRecord[] = [];
	const others: OutboundRecord[] = [];
	for (const record of page.records) {
		const isMine =
			target !== undefined &&
			(record.kind === "node"
				? headerOf(record, caseHeader) === caseId
				: record.kind === "control-plane" &&
					record.sandboxId === target.sandboxId &&
					headerOf(record, "e2b-sandbox-request-port") === target.port);
		(isMine ? mine : others).push(record);
	}
	return { all: page.records, mine, others };
}

async function runCase(c: Case): Promise<void> {
	const started = performance.now();
	caseCounter += 1;
	const caseId = String(caseCounter);
	const m = materialize(c, caseId);
	logLines.length = 0;
	stats.cases += 1;
	if (m.environment === "production") stats.production += 1;

	// First everything is observed, and what the run keeps is brought up to
	// date; only then checked. So a failing case leaves the next one (such as
	// fast-check's shrunk retries) the same bookkeeping as a passing one.
	let response: Response | undefined;
	let text = "";
	let thrown: unknown;
	try {
		response = await dispatch(m);
		text = new TextDecoder().decode(await response.arrayBuffer());
	} catch (error) {
		thrown = error;
	}
	const status = response?.status ?? 0;
	stats.statuses.set(status, (stats.statuses.get(status) ?? 0) + 1);
	const summary = `#${caseId} ${m.environment} ${m.request.method} ${m.request.headers.get("host") ?? m.url.host} -> ${status}`;
	const logged = logLines.join("\n");

	// What went out. A request the model does not route must send nothing;
	// rather than ask the fake after each of those, the next routed case's
	// look covers them: anything there that is not its own is theirs.
	const target = targetOf(m.routing);
	const lookedAfter = [...unlooked];
	let outbound: Awaited<ReturnType<typeof outboundSinceLastLook>> | undefined;
	if (target !== undefined || thrown !== undefined) {
		outbound = await outboundSinceLastLook(caseId, target, response);
		unlooked.length = 0;
	} else {
		unlooked.push(summary);
		if (unlooked.length > 200) unlooked.shift();
	}
	const caseRecords = outbound?.mine ?? [];
	learnFromControlPlane(outbound?.all ?? []);
	const answer = response === undefined ? undefined : readAnswer(response, text);
	const acceptedNonIp = answer === undefined ? undefined : learnFromPush(m, answer);

	if (caseRecords.some((record) => record.kind === "control-plane")) stats.reachedControlPlane += 1;
	const nodeRecords = caseRecords.filter((record) => record.kind === "node");
	if (nodeRecords.length > 0) stats.reachedNode += 1;
	if (nodeRecords.length > 1) stats.sentTwiceOrMore += 1;
	const routedTo = m.routing.kind === "either" ? undefined : m.routing;
	if (routedTo?.kind === "rejected") stats.rejected += 1;
	else if (routedTo?.kind === "catalog-api") stats.catalogApi += 1;
	else if (routedTo?.kind === "sandbox") stats.routedBy[routedTo.by] += 1;
	if (answer?.reason === "resume_rate_limited" && /from this client|of this sandbox/.test(text)) {
		stats.edgeBudgetSpent += 1;
	}
	const kind = `${m.via} ${caseRecords.some((r) => r.kind === "control-plane") ? "resume" : (routedTo?.kind ?? "either")}`;
	const spent = timing[kind] ?? { cases: 0, ms: 0 };
	spent.cases += 1;
	spent.ms += performance.now() - started;
	timing[kind] = spent;

	// (a)
	if (thrown !== undefined || response === undefined || answer === undefined) {
		throw new Error(`a: ${summary}: the Worker threw`, { cause: thrown });
	}
	expect(status, `a: ${summary} ${text.slice(0, 300)}`).not.toBe(500);

	// (b) and (c) for what went out, and (d): nothing went out that no routed case sent.
	expect(acceptedNonIp, `b: ${summary}`).toBeUndefined();
	if (outbound !== undefined) {
		checkOutbound(outbound.all, lookedAfter);
		expect(
			outbound.others.map(describeRecord),
			`d: sent by none of the routed cases; the cases since the last look:\n${[...lookedAfter, summary].join("\n")}`,
		).toEqual([]);
	}

	// (c): the response and the logs.
	const responseText = [String(status), response.statusText, ...[...response.headers].flat(), text].join("\n");
	expect(secretsIn(responseText), `c: in the response to ${summary}`).toEqual([]);
	expect(secretsIn(logged), `c: in the logs of ${summary}:\n${logged}`).toEqual([]);

	// (d)
	checkRouting(m, answer, caseRecords, m.request.method !== "HEAD");
}

/** What the catalog holds after the control plane's answers, for (b) in this and later cases. */
function learnFromControlPlane(sent: readonly OutboundRecord[]): void {
	for (const record of sent) {
		const answer = record.resumeAnswer;
		if (record.kind === "control-plane" && answer?.kind === "ok" && isIp(answer.ip) && record.sandboxId !== undefined) {
			learn(record.sandboxId, answer.ip);
		}
	}
}

/**
 * What the catalog holds after a catalog API write that it accepted. Returns
 * what is wrong if it accepted a route to something that is not an IP: that
 * would let a later request go wherever the writer said.
 */
function learnFromPush(m: Materialized, answer: Answer): string | undefined {
	if (m.push === undefined || m.routing.kind !== "catalog-api") return undefined;
	const accepted = m.push.batch
		? answer.status === 200 &&
			(answer.json as { results?: { op: string; status: number }[] } | undefined)?.results?.some(
				(result) => result.op === "put" && result.status === 204,
			) === true
		: answer.status === 204;
	if (!accepted) return undefined;
	if (!isIp(m.push.ip)) return `the catalog API accepted orchestrator_ip "${m.push.ip}" for ${m.push.sandboxId}`;
	stats.acceptedPushes += 1;
	learn(m.push.sandboxId, m.push.ip);
	return undefined;
}

describe("the Worker, for generated requests", () => {
	beforeAll(async () => {
		// Start after whatever other files in this project sent.
		cursor = (await records({ since: Number.MAX_SAFE_INTEGER })).next;
		const capture = (...args: unknown[]) => {
			logLines.push(args.map((arg) => (typeof arg === "string" ? arg : JSON.stringify(arg))).join(" "));
		};
		for (const level of ["log", "info", "warn", "error", "debug"] as const) {
			vi.spyOn(console, level).mockImplementation(capture);
		}
	});

	afterAll(() => {
		vi.restoreAllMocks();
		const statuses = Object.fromEntries([...stats.statuses].sort(([a], [b]) => a - b));
		const perCase = Object.fromEntries(
			Object.entries(timing).map(([kind, { cases, ms }]) => [
				kind,
				`${cases} cases, ${(ms / cases).toFixed(1)} ms each`,
			]),
		);
		console.log(`properties: ${JSON.stringify({ ...stats, statuses })}\ntiming: ${JSON.stringify(perCase)}`);
	});

	it("runs with resume budgets far above what a run spends (the project's ratelimits)", async () => {
		// wrangler.toml allows 30 resumes a client and 5 a caller per 10 s; a run
		// must not meet those, or its resumes would be 429s, not RPCs.
		const budgets = env as unknown as Record<"RESUME_LIMIT_PER_CLIENT" | "RESUME_LIMIT_PER_CALLER", RateLimit>;
		for (let i = 0; i < 50; i++) {
			expect((await budgets.RESUME_LIMIT_PER_CLIENT.limit({ key: "budget-check" })).success).toBe(true);
			expect((await budgets.RESUME_LIMIT_PER_CALLER.limit({ key: "budget-check" })).success).toBe(true);
		}
	});

	it(`(a) no 500, (b) no stray origin, (c) no leaked secret, (d) routing as modelled: ${numRuns} requests`, async () => {
		await fc.assert(fc.asyncProperty(caseArb, runCase), { numRuns });
		// The last cases since a look sent nothing either.
		const trailing = await records({ since: cursor, compact: true });
		expect(trailing.records.map(describeRecord), `d: sent after the last look by:\n${unlooked.join("\n")}`).toEqual([]);

		// Not vacuous: the run reached what the properties are about.
		const at = (share: number) => Math.floor(numRuns * share);
		expect(stats.cases).toBeGreaterThanOrEqual(numRuns);
		expect(stats.rejected).toBeGreaterThan(at(0.15));
		expect(stats.catalogApi).toBeGreaterThan(at(0.03));
		expect(stats.routedBy.host).toBeGreaterThan(at(0.2));
		expect(stats.routedBy.headers).toBeGreaterThan(at(0.03));
		expect(stats.production).toBeGreaterThan(at(0.15));
		expect(stats.reachedNode).toBeGreaterThan(at(0.15));
		expect(stats.reachedControlPlane).toBeGreaterThan(at(0.01));
		expect(stats.secretSentToControlPlane).toBeGreaterThanOrEqual(stats.reachedControlPlane);
		expect(stats.sentTwiceOrMore).toBeGreaterThan(at(0.002));
		expect(stats.acceptedPushes).toBeGreaterThan(at(0.002));
		// The limits the project sets: had they not taken, resumes would be refused here and the
		// properties would hold of fewer of them than they seem to.
		expect(stats.edgeBudgetSpent).toBe(0);
		for (const status of [200, 204, 400, 401, 403, 404, 409, 429, 502, 503]) {
			expect(stats.statuses.get(status) ?? 0, `answers with status ${status}`).toBeGreaterThan(0);
		}
	});
});
