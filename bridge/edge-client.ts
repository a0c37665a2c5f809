// The edge's catalog API (docs/architecture.md, "Contract: the catalog API"): one batch call.
// node:http rather than fetch, for two reasons: `*.localhost` must resolve to
// loopback while the Host header keeps the name the Worker routes on (Node's
// resolver does not know RFC 6761), and redirects must never be followed,
// since they would carry the bearer token elsewhere.

import { lookup as dnsLookup } from "node:dns";
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import type { LookupFunction } from "node:net";
import type { PutItem } from "./catalog-entry.ts";
import { clip } from "./catalog-entry.ts";
import { isLocalHost } from "./config.ts";

export interface DeleteItem {
	sandbox_id: string;
	execution_id: string;
}

export interface ItemResult {
	sandbox_id: string;
	op: "put" | "delete";
	status: number;
	message?: string;
}

/** The batch as a whole failed; nothing in it is known to have landed. */
export class EdgeError extends Error {
	readonly status: number | undefined;
	constructor(message: string, status?: number, options?: ErrorOptions) {
		super(message, options);
		this.name = "EdgeError";
		this.status = status;
	}
}

export const MAX_BATCH_ITEMS = 1000;
export const MAX_BATCH_BYTES = 1024 * 1024;
const MAX_RESPONSE_BYTES = 8 * 1024 * 1024;

export interface EdgeClient {
	/** The answers, in the order sent: the puts, then the deletes. */
	batch(put: PutItem[], del: DeleteItem[], signal: AbortSignal): Promise<ItemResult[]>;
	close(): void;
}

export interface EdgeClientOptions {
	origin: URL;
	secret: string;
	timeoutMs?: number;
}

export function createEdgeClient(options: EdgeClientOptions): EdgeClient {
	const { origin, secret } = options;
	const timeoutMs = options.timeoutMs ?? 30_000;
	const https = origin.protocol === "https:";
	const agent = https ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true });
	const request = https ? httpsRequest : httpRequest;

	function post(path: string, body: string, signal: AbortSignal) {
		return new Promise<{ status: number; text: string; location: string | undefined }>((resolve, reject) => {
			const req = request(
				{
					protocol: origin.protocol,
					host: origin.hostname.replace(/^\[|\]$/g, ""),
					port: origin.port,
					path,
					method: "POST",
					headers: {
						authorization: `Bearer ${secret}`,
						accept: "application/json",
						"content-type": "application/json",
						"content-length": String(Buffer.byteLength(body)),
						"user-agent": "sandbox-edge-proxy-catalog-bridge",
					},
					agent,
					lookup: resolveLocalhost,
					signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
				},
				(res) => {
					readText(res).then(
						(text) => resolve({ status: res.statusCode ?? 0, text, location: res.headers.location }),
						reject,
					);
				},
			);
			req.on("error", (error) =>
				reject(new EdgeError(`cannot reach the edge: ${describe(error)}`, undefined, { cause: error })),
			);
			req.end(body);
		});
	}

	return {
		async batch(put, del, signal) {
			const answer = await post("/v1/sandboxes/batch", JSON.stringify({ put, delete: del }), signal);
			if (answer.status !== 200) throw statusError(answer.status, answer.text, answer.location);
			return parseResults(answer.text, put, del);
		},
		close() {
			agent.destroy();
		},
	};
}

/** RFC 6761: `localhost` and `*.localhost` are loopback, whatever DNS says. */
export const resolveLocalhost: LookupFunction = (hostname, options, callback) => {
	if (!isLocalHost(hostname)) {
		dnsLookup(hostname, options, callback);
		return;
	}
	if (options.all === true) {
		(callback as (error: null, addresses: { address: string; family: number }[]) => void)(null, [
			{ address: "127.0.0.1", family: 4 },
		]);
	} else {
		callback(null, "127.0.0.1", 4);
	}
};

function readText(res: IncomingMessage): Promise<string> {
	return new Promise((resolve, reject) => {
		const chunks: Buffer[] = [];
		let size = 0;
		res.on("data", (chunk: Buffer) => {
			size += chunk.length;
			if (size > MAX_RESPONSE_BYTES) {
				res.destroy(new EdgeError(`the edge's answer is over ${MAX_RESPONSE_BYTES} bytes`));
				return;
			}
			chunks.push(chunk);
		});
		res.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
		res.on("error", (error) =>
			reject(error instanceof EdgeError ? error : new EdgeError(`reading the edge's answer: ${describe(error)}`)),
		);
	});
}

function statusError(status: number, text: string, location: string | undefined): EdgeError {
	let message = "";
	try {
		const parsed = JSON.parse(text) as { message?: unknown };
		if (typeof parsed.message === "string") message = parsed.message;
	} catch {
		message = text.trim().split("\n", 1)[0] ?? "";
	}
	const detail = message === "" ? "" : `: ${clip(message, 200)}`;
	if (status >= 300 && status < 400) {
		return new EdgeError(
			`the edge redirected (${status}) to ${clip(location ?? "?")}; redirects are not followed, so pass the final origin as --edge`,
			status,
		);
	}
	if (status === 401 || status === 403) {
		return new EdgeError(
			`the edge refused the token (${status}${detail}); CATALOG_SECRET must equal the Worker's`,
			status,
		);
	}
	if (status === 404) {
		return new EdgeError(
			`the edge has no catalog API here (404${detail}); --edge must be edge.<domain>, and the Worker needs CATALOG_SECRET`,
			status,
		);
	}
	return new EdgeError(`the edge answered ${status}${detail}`, status);
}

function parseResults(text: string, put: PutItem[], del: DeleteItem[]): ItemResult[] {
	let results: unknown;
	try {
		results = (JSON.parse(text) as { results?: unknown }).results;
	} catch {
		throw new EdgeError("the edge answered 200 with a body that is not JSON");
	}
	const sent = [
		...put.map((p) => ({ id: p.sandbox_id, op: "put" })),
		...del.map((d) => ({ id: d.sandbox_id, op: "delete" })),
	];
	if (!Array.isArray(results) || results.length !== sent.length) {
		throw new EdgeError(
			`the edge answered ${Array.isArray(results) ? results.length : "no"} results for ${sent.length} items`,
		);
	}
	return results.map((raw, i) => {
		const result = raw as Partial<ItemResult> | null;
		const expected = sent[i];
		if (
			expected === undefined ||
			result === null ||
			typeof result !== "object" ||
			result.sandbox_id !== expected.id ||
			result.op !== expected.op ||
			typeof result.status !== "number"
		) {
			throw new EdgeError(`the edge's result ${i} does not match the item sent`);
		}
		const item: ItemResult = { sandbox_id: expected.id, op: result.op, status: result.status };
		if (typeof result.message === "string") item.message = result.message;
		return item;
	});
}

export function describe(error: unknown): string {
	if (!(error instanceof Error)) return String(error);
	// An aborted request reports the abort; its cause says whether our timeout did it.
	if (error.name === "AbortError")
		return (error.cause as Error | undefined)?.name === "TimeoutError" ? "timed out" : "aborted";
	if (error.name === "TimeoutError") return "timed out";
	return error.message || ((error as NodeJS.ErrnoException).code ?? error.name);
}
