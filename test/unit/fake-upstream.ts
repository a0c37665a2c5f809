/**
 * Everything the Worker fetches, faked in Node: the control plane's
 * ResumeSandbox (gRPC-web or Connect, binary) and every node's orchestrator
 * proxy. vitest.config.ts gives `outbound` to miniflare as the "properties"
 * project's outboundService, so every fetch made by the Worker or by a
 * SandboxRoute object lands here, and `control` as the UPSTREAM service
 * binding, through which tests script answers and read what was sent.
 *
 * Every request is recorded: where it went (the control plane, a node, or
 * anywhere else: "stray"), its headers and body, where a secret appeared in
 * it, and the answer given. A node answering a property test's request also
 * says, in a header, what was sent since that test last looked (see
 * upstream-model.ts), which spares the test a call per case.
 *
 * Unscripted sandboxes and nodes answer as upstream-model.ts's defaults say.
 * No answer is a redirect: the Worker miniflare puts between workerd and
 * this handler follows redirects before the Worker under test would see them.
 *
 * Only web-standard APIs (and structural types for the Node handler) are
 * used, so that the file type-checks both as Node code, through
 * vitest.config.ts, and as test code for workerd.
 */
import { decodeSandboxId, protocolOf, resumeResponse } from "./resume-wire.ts";
import {
	caseHeader,
	compactRecord,
	defaultNodeAnswer,
	defaultResumeAnswer,
	fakeNodeHeader,
	type NodeAnswer,
	type NodeScript,
	nodePort,
	type OutboundRecord,
	type RecordsPage,
	type ResumeAnswer,
	type ResumeScript,
	resumePath,
	sentHeader,
	sinceHeader,
} from "./upstream-model.ts";

export interface FakeUpstreamOptions {
	/** The Worker's CONTROL_PLANE_URL. */
	controlPlaneUrl: string;
	/** The Worker's secrets, to find them wherever they should not be (OutboundRecord.leaks). */
	secrets: { API_SECRET: string; CATALOG_SECRET: string };
}

export interface FakeUpstream {
	/** miniflare's outboundService: answers, and records, every fetch the Worker makes. */
	outbound(request: Request): Promise<Response>;
	/**
	 * The tests' service binding, as a Node handler (about half the cost of a
	 * fetch handler, which matters at one call per property case): scripts
	 * answers, hands out records.
	 */
	control(request: NodeRequestLike, response: NodeResponseLike): Promise<void>;
}

/** What `control` uses of Node's IncomingMessage; structural, so that this file needs no Node types. */
export interface NodeRequestLike extends AsyncIterable<Uint8Array | string> {
	method?: string | undefined;
	url?: string | undefined;
}

/** What `control` uses of Node's ServerResponse. */
export interface NodeResponseLike {
	writeHead(status: number, headers?: Record<string, string>): unknown;
	end(body?: string): unknown;
}

// Far more than any test run makes; older records go first.
const maxRecords = 200_000;

export function createFakeUpstream(options: FakeUpstreamOptions): FakeUpstream {
	const controlPlaneOrigin = new URL(options.controlPlaneUrl).origin;
	const resumeScripts = new Map<string, { script: ResumeScript; used: number }>();
	const nodeScripts = new Map<string, { script: NodeScript; used: number }>();
	/** ResumeSandbox calls so far, per sandbox, for the unscripted answers that change from call to call. */
	const resumeCalls = new Map<string, number>();
	let records: OutboundRecord[] = [];
	let seq = 0;

	/** Where the secrets appear in a request that should not carry them (see OutboundRecord.leaks). */
	function leaksOf(
		record: Omit<OutboundRecord, "seq" | "leaks" | "proxyAuth">,
	): Pick<OutboundRecord, "leaks" | "proxyAuth"> {
		const leaks: string[] = [];
		let proxyAuth: OutboundRecord["proxyAuth"];
		const isControlPlane = record.kind === "control-plane";
		if (isControlPlane) proxyAuth = "absent";
		const places: [string, string][] = [
			["the URL", record.url],
			["the body", record.body],
		];
		for (const [name, value] of record.headers) {
			if (isControlPlane && name === "x-e2b-client-proxy-auth") {
				proxyAuth = value === options.secrets.API_SECRET ? "api-secret" : "other";
				if (proxyAuth === "api-secret") continue;
			}
			places.push([`header ${name}`, `${name}: ${value}`]);
		}
		for (const [where, text] of places) {
			for (const [secret, value] of Object.entries(options.secrets)) {
				if (text.includes(value)) leaks.push(`${secret} in ${where}`);
			}
		}
		return proxyAuth === undefined ? { leaks } : { leaks, proxyAuth };
	}

	function keep(record: Omit<OutboundRecord, "seq" | "leaks" | "proxyAuth">): OutboundRecord {
		seq += 1;
		const kept: OutboundRecord = { seq, ...record, ...leaksOf(record) };
		records.push(kept);
		if (records.length > maxRecords) records = records.slice(records.length - maxRecords / 2);
		return kept;
	}

	async function outbound(request: Request): Promise<Response> {
		const url = new URL(request.url);
		const bytes = new Uint8Array(await request.arrayBuffer());
		const seen = {
			method: request.method,
			url: request.url,
			headers: [...request.headers].map(([name, value]): [string, string] => [name.toLowerCase(), value]),
			body: new TextDecoder().decode(bytes),
			bodyBytes: bytes.byteLength,
		};
		if (url.origin === controlPlaneOrigin && url.pathname.endsWith(resumePath)) {
			return answerResume(request, bytes, seen);
		}
		const nodeIp = nodeIpOf(url);
		if (nodeIp !== undefined) {
			const scripted = nodeScripts.get(nodeIp);
			const answer = scripted === undefined ? defaultNodeAnswer(nodeIp) : next(scripted);
			keep({ ...seen, kind: "node", nodeIp, nodeAnswer: answer });
			const response = nodeResponse(answer, nodeIp, request);
			const since = request.headers.get(sinceHeader);
			if (since !== null && request.headers.has(caseHeader)) {
				// Everything sent since the test last looked, this request included.
				const sent: RecordsPage = {
					records: records.slice(firstAfter(records, Number(since))).map(compactRecord),
					next: seq,
				};
				response.headers.set(sentHeader, encodeURIComponent(JSON.stringify(sent)));
			}
			return response;
		}
		keep({ ...seen, kind: "stray" });
		// Not a 5xx: a stray request must be caught by its record, not by the Worker's status.
		return new Response("the fake upstream serves no such origin", { status: 421 });
	}

	async function answerResume(
		request: Request,
		bytes: Uint8Array,
		seen: Omit<OutboundRecord, "seq" | "kind" | "leaks" | "proxyAuth">,
	): Promise<Response> {
		const protocol = protocolOf(request.headers.get("content-type"));
		const sandboxId = decodeSandboxId(bytes, protocol);
		const scripted = resumeScripts.get(sandboxId);
		const call = resumeCalls.get(sandboxId) ?? 0;
		resumeCalls.set(sandboxId, call + 1);
		let answer: ResumeAnswer;
		if (scripted === undefined) answer = defaultResumeAnswer(sandboxId, call);
		else if (
			scripted.script.allowedTrafficToken !== undefined &&
			request.headers.get("e2b-traffic-access-token") !== scripted.script.allowedTrafficToken
		) {
			answer = { kind: "status", code: 7, message: "permission denied" };
		} else answer = next(scripted);
		keep({ ...seen, kind: "control-plane", sandboxId, protocol, resumeAnswer: answer });
		const delayMs = scripted?.script.delayMs ?? 0;
		if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
		return resumeResponse(answer, protocol === "connect" ? "connect" : "grpc-web");
	}

	async function control(request: NodeRequestLike, response: NodeResponseLike): Promise<void> {
		const url = new URL(request.url ?? "/", "http://upstream");
		const send = (status: number, body?: unknown) => {
			if (body === undefined) {
				response.writeHead(status);
				response.end();
				return;
			}
			response.writeHead(status, { "content-type": "application/json" });
			response.end(JSON.stringify(body));
		};
		if (request.method === "POST" && url.pathname === "/resume-scripts") {
			const script = JSON.parse(await readText(request)) as ResumeScript;
			resumeScripts.set(script.sandboxId, { script, used: 0 });
			return send(204);
		}
		if (request.method === "POST" && url.pathname === "/node-scripts") {
			const script = JSON.parse(await readText(request)) as NodeScript;
			nodeScripts.set(script.ip, { script, used: 0 });
			return send(204);
		}
		if (request.method === "GET" && url.pathname === "/records") {
			const since = Number(url.searchParams.get("since") ?? 0);
			const sandboxId = url.searchParams.get("sandboxId");
			const nodeIp = url.searchParams.get("nodeIp");
			const compact = url.searchParams.get("compact") === "1";
			const page: RecordsPage = {
				records: records
					.slice(firstAfter(records, since))
					.filter(
						(record) =>
							(sandboxId === null ||
								record.sandboxId === sandboxId ||
								headerOf(record, "e2b-sandbox-id") === sandboxId) &&
							(nodeIp === null || record.nodeIp === nodeIp),
					)
					.map((record) => (compact ? compactRecord(record) : record)),
				next: seq,
			};
			return send(200, page);
		}
		return send(404, { message: "no such control call" });
	}

	return { outbound, control };
}

/** The index of the first record after `seq`; records are kept in seq order. */
function firstAfter(kept: readonly OutboundRecord[], seq: number): number {
	let low = 0;
	let high = kept.length;
	while (low < high) {
		const middle = (low + high) >>> 1;
		if ((kept[middle]?.seq ?? 0) <= seq) low = middle + 1;
		else high = middle;
	}
	return low;
}

async function readText(request: NodeRequestLike): Promise<string> {
	let text = "";
	const decoder = new TextDecoder();
	for await (const chunk of request)
		text += typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true });
	return text + decoder.decode();
}

function next<T>(scripted: { script: { answers: T[] }; used: number }): T {
	const { answers } = scripted.script;
	const answer = answers[Math.min(scripted.used, answers.length - 1)];
	if (answer === undefined) throw new Error("a script needs at least one answer");
	scripted.used += 1;
	return answer;
}

function headerOf(record: OutboundRecord, name: string): string | undefined {
	return record.headers.find(([key]) => key === name)?.[1];
}

/** The node IP of a request to `http://{ip}:5007`, the fake nodes' origin; undefined for anything else. */
function nodeIpOf(url: URL): string | undefined {
	if (url.protocol !== "http:" || url.port !== String(nodePort)) return undefined;
	const host = url.hostname;
	if (host.startsWith("[") && host.endsWith("]")) return host.slice(1, -1);
	return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) ? host : undefined;
}

/** E2B's orchestrator proxy, as far as the Worker can tell it apart (see dev/node-answers.ts). */
function nodeResponse(answer: NodeAnswer, nodeIp: string, request: Request): Response {
	const sandboxId = request.headers.get("e2b-sandbox-id") ?? "";
	const headers = new Headers({ [fakeNodeHeader]: nodeIp });
	const text = (status: number, contentType: string, body: string) => {
		headers.set("content-type", contentType);
		headers.set("content-length", String(new TextEncoder().encode(body).byteLength));
		return new Response(request.method === "HEAD" ? null : body, { status, headers });
	};
	switch (answer.kind) {
		case "echo": {
			headers.append("set-cookie", "a=1; Path=/");
			headers.append("set-cookie", "b=2; Path=/");
			const url = new URL(request.url);
			return text(
				answer.status ?? 200,
				"application/json",
				JSON.stringify({
					node: nodeIp,
					method: request.method,
					path: url.pathname + url.search,
					sandboxId,
					port: request.headers.get("e2b-sandbox-port"),
				}),
			);
		}
		case "notHere":
			if (answer.form === "header") {
				headers.set("x-e2b-sandbox-not-found", "1");
				return text(502, "text/plain", "not here");
			}
			if (answer.form === "json") {
				return text(
					502,
					"application/json; charset=utf-8",
					JSON.stringify({ sandboxId, message: "The sandbox was not found", code: 502 }),
				);
			}
			return text(
				502,
				"text/html; charset=utf-8",
				`<html lang="en"><head><meta charset="UTF-8"><title>Sandbox Not Found</title></head><body><main class="error-card"><h1 class="error-title">Sandbox Not Found</h1><p class="error-message">The sandbox <span class="highlight" id="sandbox-id">${sandboxId}</span> wasn't found.</p></main></body></html>`,
			);
		case "portClosed":
			return text(
				502,
				"application/json; charset=utf-8",
				JSON.stringify({
					sandboxId,
					message: "The sandbox is running but port is not open",
					port: Number(request.headers.get("e2b-sandbox-port")),
					code: 502,
				}),
			);
		case "raw":
			return text(answer.status, answer.contentType ?? "text/plain", answer.body ?? "");
	}
}
