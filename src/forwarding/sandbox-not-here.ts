import { type Head, readUpTo } from "../bytes.ts";
import { ProxyError } from "../errors/proxy-error.ts";
import type { SandboxTarget } from "../routing.ts";

/**
 * Recognises a node's answer that the sandbox is not on it: E2B's
 * orchestrator proxy gives it, before it dials anything, for a sandbox it
 * does not hold (packages/shared/pkg/proxy/template/sandbox_not_found.go in
 * e2b-dev/infra). Such a request never reached a sandbox, so it may be sent
 * again once the sandbox is found.
 */

/**
 * A header that a development node may set on that answer instead. E2B's own
 * nodes never send it, and they pass an app's headers through, so an app
 * could send it to make the edge doubt its sandbox's route: it is believed
 * only where TRUST_NOT_HERE_HEADER says so.
 */
const sandboxNotHereHeader = "x-e2b-sandbox-not-found";

// E2B's JSON answer is about 80 bytes and its HTML page under 3 KiB, sent
// at once; a 502 that takes longer than this to show its start is not it,
// and goes on to the client.
const maxInspectedBytes = 8 * 1024;
const maxInspectionMs = 1000;
const notFoundMessage = "The sandbox was not found";
const notFoundTitle = "<title>Sandbox Not Found</title>";

const portClosedMessage = "The sandbox is running but port is not open";
const portClosedTitle = "<title>Closed Port Error</title>";

/**
 * The node's answer: "not here" (the response is spent), or a response for
 * the client; `portClosed` when it is the node's answer that nothing
 * listens on the sandbox's port (port_closed.go), which its proxy gives
 * when it cannot connect to the app.
 */
export type NodeAnswer = { notHere: true } | { notHere: false; response: Response; portClosed: boolean };

/**
 * Whether `response` is the node's "not here" for `sandboxId`: a 502 with
 * E2B's JSON body or HTML page naming that sandbox (or, where trusted, with
 * the header). Only
 * small, unencoded 502s are read, and only their first few KiB; anything
 * else, including every other 502, goes back to the client as the node sent it.
 */
export function readNodeAnswer(
	response: Response,
	target: SandboxTarget,
	method: string,
	trustNotHereHeader: boolean,
): NodeAnswer | Promise<NodeAnswer> {
	// Every answer but a 502 goes on as it is, without a promise: the hot path.
	if (response.status !== 502) return passOn(response);
	return inspect502(response, target, method, trustNotHereHeader);
}

async function inspect502(
	response: Response,
	target: SandboxTarget,
	method: string,
	trustNotHereHeader: boolean,
): Promise<NodeAnswer> {
	const { sandboxId, port } = target;
	if (trustNotHereHeader && response.headers.has(sandboxNotHereHeader)) {
		await response.body?.cancel();
		return { notHere: true };
	}
	if (method === "HEAD") {
		if (headLength(response.headers) === jsonLength(notHereJson(sandboxId))) return { notHere: true };
		return passOn(response, headLength(response.headers) === jsonLength(portClosedJson(sandboxId, port)));
	}
	const format = pageFormat(response.headers);
	if (format === null || response.body === null) return passOn(response);

	const reader = response.body.getReader();
	let head: Head;
	try {
		head = await readUpTo(reader, maxInspectedBytes, maxInspectionMs);
	} catch (error) {
		// The node cut its own 502 off: whatever it was, it failed, and the
		// request may have reached a sandbox, so nothing is sent again.
		throw new ProxyError("node_unreachable", { sandboxId, cause: error });
	}
	const text = head.complete ? new TextDecoder().decode(head.bytes) : "";
	if (head.complete && isNotHerePage(text, format, sandboxId)) return { notHere: true };
	return passOn(withBody(response, head, reader), head.complete && isPortClosedPage(text, format, target));
}

function passOn(response: Response, portClosed = false): NodeAnswer {
	return { notHere: false, response, portClosed };
}

type PageFormat = "json" | "html";

function pageFormat(headers: Headers): PageFormat | null {
	const encoding = headers.get("content-encoding");
	if (encoding !== null && encoding.toLowerCase() !== "identity") return null;
	const length = headers.get("content-length");
	if (length !== null && !(Number(length) <= maxInspectedBytes)) return null;
	const type = headers.get("content-type")?.toLowerCase() ?? "";
	if (type.startsWith("application/json")) return "json";
	if (type.startsWith("text/html")) return "html";
	return null;
}

/**
 * An answer to HEAD has no body, but each of E2B's JSON answers has a length
 * that only its own bytes for this sandbox give. (Its HTML pages, for a
 * browser's HEAD, are not told apart; that request reaches the client as
 * the node's 502.)
 */
function headLength(headers: Headers): number | undefined {
	if (pageFormat(headers) !== "json") return undefined;
	const length = headers.get("content-length");
	return length === null ? undefined : Number(length);
}

function jsonLength(body: object): number {
	return new TextEncoder().encode(JSON.stringify(body)).byteLength;
}

// The fields in E2B's order, which its Go structs give.
function notHereJson(sandboxId: string): object {
	return { sandboxId, message: notFoundMessage, code: 502 };
}

function portClosedJson(sandboxId: string, port: number): object {
	return { sandboxId, message: portClosedMessage, port, code: 502 };
}

function isNotHerePage(text: string, format: PageFormat, sandboxId: string): boolean {
	if (format === "html") {
		return text.includes(notFoundTitle) && text.includes(`id="sandbox-id">${sandboxId}</span>`);
	}
	const fields = jsonFields(text);
	return fields?.sandboxId === sandboxId && fields.message === notFoundMessage && fields.code === 502;
}

function isPortClosedPage(text: string, format: PageFormat, target: SandboxTarget): boolean {
	if (format === "html") {
		return (
			text.includes(portClosedTitle) &&
			text.includes(`id="sandbox-id">${target.sandboxId}</span>`) &&
			text.includes(`id="port-number">${target.port}</span>`)
		);
	}
	const fields = jsonFields(text);
	return (
		fields?.sandboxId === target.sandboxId &&
		fields.message === portClosedMessage &&
		fields.port === target.port &&
		fields.code === 502
	);
}

function jsonFields(text: string): Record<string, unknown> | undefined {
	let body: unknown;
	try {
		body = JSON.parse(text);
	} catch {
		return undefined;
	}
	return typeof body === "object" && body !== null ? (body as Record<string, unknown>) : undefined;
}

/** The node's response again, with the bytes already read put back in front of the rest. */
function withBody(response: Response, head: Head, reader: ReadableStreamDefaultReader<Uint8Array>): Response {
	const init = { status: response.status, statusText: response.statusText, headers: response.headers };
	if (head.complete) return new Response(head.bytes, init);
	const { readable, writable } = new IdentityTransformStream();
	const writer = writable.getWriter();
	const passOn = async () => {
		if (head.bytes.byteLength > 0) await writer.write(head.bytes);
		if (head.pending !== undefined) {
			const next = await head.pending;
			if (next.done) return writer.close();
			await writer.write(next.value);
		}
		writer.releaseLock();
		reader.releaseLock();
		await response.body?.pipeTo(writable);
	};
	passOn().catch(() => {});
	return new Response(readable, init);
}
