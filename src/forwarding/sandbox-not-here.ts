import { type Head, readUpTo } from "../bytes.ts";

/**
 * Recognises a node's answer that the sandbox is not on it: E2B's
 * orchestrator proxy gives it, before it dials anything, for a sandbox it
 * does not hold (packages/shared/pkg/proxy/template/sandbox_not_found.go in
 * e2b-dev/infra). Such a request never reached a sandbox, so it may be sent
 * again once the sandbox is found.
 */

/** A header that a node may set on that answer instead; E2B's own nodes do not. */
const sandboxNotHereHeader = "x-e2b-sandbox-not-found";

// E2B's JSON answer is about 80 bytes and its HTML page under 3 KiB, sent
// at once; a 502 that takes longer than this to show its start is not it,
// and goes on to the client.
const maxInspectedBytes = 8 * 1024;
const maxInspectionMs = 1000;
const notFoundMessage = "The sandbox was not found";
const notFoundTitle = "<title>Sandbox Not Found</title>";

export type NodeAnswer = { notHere: true } | { notHere: false; response: Response };

/**
 * Whether `response` is the node's "not here" for `sandboxId`: a 502 with the
 * header, or with E2B's JSON body or HTML page naming that sandbox. Only
 * small, unencoded 502s are read, and only their first few KiB; anything
 * else, including every other 502, goes back to the client as the node sent it.
 */
export async function readNodeAnswer(response: Response, sandboxId: string, method: string): Promise<NodeAnswer> {
	if (response.status !== 502) return { notHere: false, response };
	if (response.headers.has(sandboxNotHereHeader)) {
		await response.body?.cancel();
		return { notHere: true };
	}
	if (method === "HEAD") {
		return isNotHereHead(response.headers, sandboxId) ? { notHere: true } : { notHere: false, response };
	}
	const format = pageFormat(response.headers);
	if (format === null || response.body === null) return { notHere: false, response };

	const reader = response.body.getReader();
	let timer: ReturnType<typeof setTimeout> | null = null;
	const deadline = new Promise((resolve) => {
		timer = setTimeout(resolve, maxInspectionMs);
	});
	const head = await readUpTo(reader, maxInspectedBytes, deadline).finally(() => {
		if (timer !== null) clearTimeout(timer);
	});
	if (head.complete && isNotHerePage(new TextDecoder().decode(head.bytes), format, sandboxId)) {
		return { notHere: true };
	}
	return { notHere: false, response: withBody(response, head, reader) };
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
 * An answer to HEAD has no body, but E2B's JSON answer has a length that
 * only its own bytes for this sandbox give. (Its HTML page, for a browser's
 * HEAD, is not told apart; that request reaches the client as the node's 502.)
 */
function isNotHereHead(headers: Headers, sandboxId: string): boolean {
	if (pageFormat(headers) !== "json") return false;
	const body = JSON.stringify({ sandboxId, message: notFoundMessage, code: 502 });
	return headers.get("content-length") === String(new TextEncoder().encode(body).byteLength);
}

function isNotHerePage(text: string, format: PageFormat, sandboxId: string): boolean {
	if (format === "html") {
		return text.includes(notFoundTitle) && text.includes(`id="sandbox-id">${sandboxId}</span>`);
	}
	let body: unknown;
	try {
		body = JSON.parse(text);
	} catch {
		return false;
	}
	if (typeof body !== "object" || body === null) return false;
	const fields = body as Record<string, unknown>;
	return fields.sandboxId === sandboxId && fields.message === notFoundMessage && fields.code === 502;
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
