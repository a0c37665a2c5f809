import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from "node:http";
import type { Readable } from "node:stream";
import WebSocket from "ws";

/**
 * A client that can set the Host header, which fetch() in Node cannot: the
 * Worker routes on it, exactly as it would behind Cloudflare.
 */
export interface SendOptions {
	method?: string;
	headers?: Record<string, string>;
	body?: string | Buffer | Readable;
}

export interface Received {
	status: number;
	headers: IncomingHttpHeaders;
	body: Buffer;
	text: string;
	json<T = Record<string, unknown>>(): T;
}

export function send(baseUrl: URL, host: string, path: string, options: SendOptions = {}): Promise<IncomingMessage> {
	return new Promise((resolve, reject) => {
		const req = httpRequest(
			{
				host: baseUrl.hostname,
				port: baseUrl.port,
				path,
				method: options.method ?? "GET",
				headers: { host, ...lengthOf(options.body), ...options.headers },
				agent: false,
			},
			resolve,
		);
		req.on("error", reject);
		const body = options.body;
		if (body === undefined) req.end();
		else if (typeof body === "string" || Buffer.isBuffer(body)) req.end(body);
		else body.pipe(req);
	});
}

// Node sends a body without framing for DELETE and OPTIONS unless told its length.
function lengthOf(body: SendOptions["body"]): Record<string, string> {
	if (typeof body === "string") return { "content-length": String(Buffer.byteLength(body)) };
	if (Buffer.isBuffer(body)) return { "content-length": String(body.length) };
	return {};
}

export async function fetchVia(baseUrl: URL, host: string, path: string, options: SendOptions = {}): Promise<Received> {
	const response = await send(baseUrl, host, path, options);
	const chunks: Buffer[] = [];
	for await (const chunk of response) chunks.push(chunk as Buffer);
	const body = Buffer.concat(chunks);
	const text = body.toString("utf8");
	return {
		status: response.statusCode ?? 0,
		headers: response.headers,
		body,
		text,
		json: <T>() => JSON.parse(text) as T,
	};
}

export function openWebSocket(
	baseUrl: URL,
	host: string,
	path: string,
	headers: Record<string, string> = {},
): Promise<WebSocket> {
	return new Promise((resolve, reject) => {
		const socket = new WebSocket(`ws://${baseUrl.host}${path}`, { headers: { host, ...headers } });
		socket.once("open", () => resolve(socket));
		socket.once("unexpected-response", (_req, res) =>
			reject(new Error(`WebSocket upgrade refused: ${res.statusCode}`)),
		);
		socket.once("error", reject);
	});
}

export function echo(socket: WebSocket, message: string): Promise<string> {
	return new Promise((resolve, reject) => {
		socket.once("message", (data) => resolve(String(data)));
		socket.once("error", reject);
		socket.send(message);
	});
}
