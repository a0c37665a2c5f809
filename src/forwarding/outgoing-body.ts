import { type Head, readUpTo } from "../bytes.ts";
import { Deadline } from "../deadline.ts";
import { ProxyError } from "../errors/proxy-error.ts";

/**
 * A request body as it will be sent to the node: none, small enough to have
 * been read (and so sendable twice), or a stream that can be sent only once.
 */
export type OutgoingBody =
	| { kind: "none"; init: null }
	| { kind: "buffered"; init: ArrayBuffer }
	| { kind: "stream"; upload: StreamedUpload };

/** No body: one value for every request without one, never changed. */
export const noBody: OutgoingBody = Object.freeze({ kind: "none", init: null });

// Bodies up to this size are read before they are sent, so that a request
// that meets a stale route can be sent again; larger ones stream, once.
const maxReplayableBodyBytes = 64 * 1024;

/**
 * Takes the request's body for sending. A small body must arrive whole
 * within `idleTimeoutMs`; a streamed one may not stall for that long while
 * JavaScript pumps it (see StreamedUpload).
 */
export async function outgoingBody(request: Request, sandboxId: string, idleTimeoutMs: number): Promise<OutgoingBody> {
	if (request.body === null) return noBody;
	const length = contentLength(request.headers);
	if (request.method === "GET" || request.method === "HEAD") {
		if (length === 0) return noBody;
		// workerd's fetch() refuses to send a body with GET or HEAD. Answered
		// here, before any lookup: the client's request is at fault, never the
		// node, so no route is doubted and nothing is woken. The body is read
		// and dropped first, as a refused upload's is, so that the client reads
		// the answer instead of meeting a connection that stopped taking its bytes.
		const refused = new StreamedUpload(request.body, length, idleTimeoutMs);
		refused.stopForwarding();
		await refused.settled;
		throw new ProxyError("request_body_not_allowed", { sandboxId });
	}
	if (length === null || length > maxReplayableBodyBytes) {
		return { kind: "stream", upload: new StreamedUpload(request.body, length, idleTimeoutMs) };
	}
	const reader = request.body.getReader();
	let head: Head;
	try {
		head = await readUpTo(reader, length, idleTimeoutMs);
	} catch (error) {
		// The client went away, or sent less than it announced.
		throw new ProxyError("request_body_incomplete", { sandboxId, cause: error });
	}
	if (head.pending !== undefined) {
		reader.cancel().catch(() => {});
		throw new ProxyError("request_body_timeout", { sandboxId });
	}
	if (!head.complete || head.bytes.byteLength !== length) {
		reader.cancel().catch(() => {});
		throw new ProxyError("request_body_incomplete", { sandboxId });
	}
	return { kind: "buffered", init: head.bytes.buffer as ArrayBuffer };
}

/** What `fetch` takes as the body: the bytes again, or the one stream. */
export function bodyInit(body: OutgoingBody): BodyInit | null {
	return body.kind === "stream" ? body.upload.readable : body.init;
}

function contentLength(headers: Headers): number | null {
	const text = headers.get("content-length");
	return text !== null && /^\d{1,15}$/.test(text) ? Number(text) : null;
}

// Read in large pieces: the runtime otherwise hands a JavaScript pump 4 KiB
// at a time, which costs about ten times the CPU of a native pipe. At
// 256 KiB a read the pump still costs about 1.5 times a native pipe, so it
// pumps only the start of a body (below). A read returns as soon as any
// bytes are there, so a full-duplex stream is not held back.
const readSize = 256 * 1024;
// A node that answers without reading the body ("not here", or a dead node)
// stops taking bytes once the buffers between us fill, a few MiB at most; so
// by the time this much has been taken, the node is reading it, and the rest
// goes through a native pipe at the runtime's own cost.
const pumpedBytes = 16 * 1024 * 1024;
// Once the node has refused the body, the rest of it is read and dropped so
// that the client can read the answer instead of meeting a reset connection;
// past this much, the client is cut off instead.
const maxDiscardedBytes = 128 * 1024 * 1024;

/** Which side of an upload failed first, as far as the Worker can tell. */
export type UploadFailure = "client" | "node" | "unknown";

/**
 * A streamed request body, sent to the node through a stream of our own.
 * Its start is pumped by JavaScript, because the runtime ends a native pipe
 * by cancelling the client's body, and while the node may still refuse the
 * request we need that body afterwards, for two things:
 * - when the node refuses the request (the sandbox is not there), to read
 *   the rest and drop it, so that the client sees our answer;
 * - when the node cannot be reached, to tell a dead node from a client that
 *   abandoned its own upload, which only the client's side of the pump knows.
 * Past `pumpedBytes` the node is taking the body, and a native pipe carries
 * the rest.
 */
export class StreamedUpload {
	/** The stream the node reads. */
	readonly readable: ReadableStream<Uint8Array>;
	/** Settles once the client's body has been read to its end, or failed, or been cut off. */
	readonly settled: Promise<void>;
	#failure: UploadFailure | undefined;
	/** Whether the client's failure was a stall past the idle timeout. */
	#stalled = false;
	readonly #idleTimeoutMs: number;
	#forwarding = true;
	#native = false;
	// Aborting the pipe alone can end a chunked body as if it were whole; the
	// node must see the request fail instead, so the fetch itself is aborted.
	readonly #abort = new AbortController();
	readonly #writable: WritableStream<Uint8Array>;
	#writer: WritableStreamDefaultWriter<Uint8Array> | undefined;

	constructor(source: ReadableStream<Uint8Array>, length: number | null, idleTimeoutMs: number) {
		this.#idleTimeoutMs = idleTimeoutMs;
		const pipe = length === null ? new IdentityTransformStream() : new FixedLengthStream(length);
		this.readable = pipe.readable;
		this.#writable = pipe.writable;
		this.#writer = pipe.writable.getWriter();
		this.settled = this.#pump(source);
	}

	/**
	 * Which side failed first: the client (it went away, or sent less than it
	 * announced), the node (it stopped taking the body), or, once the native
	 * pipe carries the body, unknown.
	 */
	get failure(): UploadFailure | undefined {
		return this.#native ? "unknown" : this.#failure;
	}

	/** Aborts the request to the node when the client's side of the body fails. */
	get signal(): AbortSignal {
		return this.#abort.signal;
	}

	/** Whether the client stopped sending for longer than the idle timeout. */
	get stalled(): boolean {
		return this.#stalled;
	}

	/** Stops sending to the node; what the client still sends is read and dropped. */
	stopForwarding(): void {
		if (!this.#forwarding) return;
		this.#forwarding = false;
		// Once the native pipe carries the body, the node's own closing ends it.
		this.#writer?.abort(new Error("the node refused the request")).catch(() => {});
	}

	async #pump(source: ReadableStream<Uint8Array>): Promise<void> {
		const reader = source.getReader({ mode: "byob" });
		let pumped = 0;
		let discarded = 0;
		for (;;) {
			if (this.#forwarding && pumped >= pumpedBytes) return this.#pipeTheRest(source, reader);
			let chunk: ReadableStreamReadResult<Uint8Array>;
			try {
				chunk = await this.#read(reader);
			} catch (error) {
				this.#failure ??= "client";
				this.#writer?.abort(error).catch(() => {});
				if (this.#forwarding) this.#abort.abort(error);
				reader.cancel(error).catch(() => {});
				return;
			}
			if (chunk.done) {
				if (this.#forwarding) await this.#writer?.close().catch(() => {});
				return;
			}
			if (!this.#forwarding) {
				discarded += chunk.value.byteLength;
				if (discarded > maxDiscardedBytes) {
					await reader.cancel().catch(() => {});
					return;
				}
				continue;
			}
			try {
				await this.#writer?.write(chunk.value);
				pumped += chunk.value.byteLength;
			} catch {
				// The node stopped reading (it answered, or the connection failed):
				// drain the rest so the client can read whatever answer it gets.
				this.#failure ??= "node";
				this.#forwarding = false;
			}
		}
	}

	/** One read, given up once the client has sent nothing for the idle timeout. */
	async #read(reader: ReadableStreamBYOBReader): Promise<ReadableStreamReadResult<Uint8Array>> {
		const idle = new Deadline(this.#idleTimeoutMs);
		try {
			const read = await Promise.race([reader.read(new Uint8Array(readSize)), idle.expired]);
			if (read !== undefined) return read;
		} finally {
			idle.clear();
		}
		this.#stalled = true;
		throw new Error("the request body stopped arriving");
	}

	async #pipeTheRest(source: ReadableStream<Uint8Array>, reader: ReadableStreamBYOBReader): Promise<void> {
		reader.releaseLock();
		this.#writer?.releaseLock();
		this.#writer = undefined;
		this.#native = true;
		// Whichever side fails, the runtime ends the pipe and cancels the other.
		await source.pipeTo(this.#writable).catch(() => {});
	}
}
