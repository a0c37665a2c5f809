import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import { sleep } from "../bridge/backoff.ts";

export function sendJson(
	res: ServerResponse,
	status: number,
	body: unknown,
	headers: Record<string, string> = {},
): void {
	const text = `${JSON.stringify(body, null, 2)}\n`;
	res.writeHead(status, {
		...headers,
		"content-type": "application/json; charset=utf-8",
		"content-length": Buffer.byteLength(text),
		"cache-control": "no-store",
	});
	res.end(text);
}

export function sendNoContent(res: ServerResponse): void {
	res.writeHead(204);
	res.end();
}

export class BodyTooLargeError extends Error {
	constructor(limit: number) {
		super(`request body exceeds ${limit} bytes`);
		this.name = "BodyTooLargeError";
	}
}

/** Buffers a request body that is known to be small (RPC messages, admin JSON). */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
	const chunks: Buffer[] = [];
	let size = 0;
	for await (const chunk of req) {
		const buf = chunk as Buffer;
		size += buf.byteLength;
		if (size > limit) throw new BodyTooLargeError(limit);
		chunks.push(buf);
	}
	return Buffer.concat(chunks);
}

/** Lowercased header names (Node already lowercases) with repeats joined, for recording. */
export function headerRecord(headers: IncomingHttpHeaders): Record<string, string> {
	const out: Record<string, string> = {};
	for (const [name, value] of Object.entries(headers)) {
		if (value === undefined) continue;
		out[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : value;
	}
	return out;
}

export function pathOf(req: IncomingMessage): string {
	return (req.url ?? "/").split("?", 1)[0] ?? "/";
}

export function queryOf(req: IncomingMessage): URLSearchParams {
	return new URL(req.url ?? "/", "http://localhost").searchParams;
}

/** Resolves true after `ms`, or false as soon as the response closes (the caller went away). */
export function delayUnlessClosed(ms: number, res: ServerResponse): Promise<boolean> {
	const closed = new AbortController();
	const onClose = () => closed.abort();
	res.once("close", onClose);
	return sleep(ms, closed.signal).finally(() => res.off("close", onClose));
}
