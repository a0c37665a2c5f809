import { type Head, readUpTo } from "../bytes.ts";

/**
 * Recognises a node's answer that the sandbox is not on it: E2B's
 * orchestrator proxy gives it, before it dials anything, for a sandbox it
 * does not hold (packages/shared/pkg/proxy/template/sandbox_not_found.go in
 * e2b-dev/infra). Such a request never reached a sandbox, so it may be sent
 * again once the sandbox is found.
 */

/** A header that a node may set on that answer instead; E2B's own nodes do not. */
export const sandboxNotHereHeader = "x-e2b-sandbox-not-found";

// E2B's JSON answer is about 80 bytes and its HTML page under 3 KiB.
const maxInspectedBytes = 8 * 1024;
const notFoundMessage = "The sandbox was not found";
const notFoundTitle = "<title>Sandbox Not Found</title>";

export type NodeAnswer = { notHere: true } | { notHere: false; response: Response };

/**
 * Whether `response` is the node's "not here" for `sandboxId`: a 502 with the
 * header, or with E2B's JSON body or HTML page naming that sandbox. Only
 * small, unencoded 502s are read, and only their first few KiB; anything
 * else, including every other 502, goes back to the client as the node sent it.
 */
export async function readNodeAnswer(response: Response, sandboxId: string): Promise<NodeAnswer> {
	if (response.status !== 502) return { notHere: false, response };
	if (response.headers.has(sandboxNotHereHeader)) {
		await response.body?.cancel();
		return { notHere: true };
	}
	const format = pageFormat(response.headers);
	if (format === null || response.body === null) return { notHere: false, response };

	const reader = response.body.getReader();
	const head = await readUpTo(reader, maxInspectedBytes);
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
	writer
		.write(head.bytes)
		.then(() => {
			writer.releaseLock();
			reader.releaseLock();
			return response.body?.pipeTo(writable);
		})
		.catch(() => {});
	return new Response(readable, init);
}
