import { Deadline } from "./deadline.ts";

/** The start of a stream, read no further than just past a limit. */
export interface Head {
	bytes: Uint8Array;
	/** Whether the stream ended within the limit; if not, `bytes` holds a little more than the limit. */
	complete: boolean;
	/** A read still in flight when the deadline came; its bytes follow `bytes`. */
	pending?: Promise<ReadableStreamReadResult<Uint8Array>>;
}

const timedOut: unique symbol = Symbol("timed out");

/**
 * Reads until the stream ends, or more than `limit` bytes have come, or
 * `deadline` settles (or, given in milliseconds, passes): a peer can make us
 * hold neither more than that nor for longer. The reader is left as it is:
 * the caller cancels it, or reads the rest.
 */
export async function readUpTo(
	reader: ReadableStreamDefaultReader<Uint8Array>,
	limit: number,
	deadline?: Promise<unknown> | number,
): Promise<Head> {
	if (typeof deadline !== "number") return read(reader, limit, deadline);
	const within = new Deadline(deadline);
	try {
		return await read(reader, limit, within.expired);
	} finally {
		within.clear();
	}
}

async function read(
	reader: ReadableStreamDefaultReader<Uint8Array>,
	limit: number,
	deadline: Promise<unknown> | undefined,
): Promise<Head> {
	const expired = deadline?.then((): typeof timedOut => timedOut);
	const chunks: Uint8Array[] = [];
	let total = 0;
	while (total <= limit) {
		const next = reader.read();
		const result = expired === undefined ? await next : await Promise.race([next, expired]);
		if (result === timedOut) return { bytes: concat(chunks, total), complete: false, pending: next };
		if (result.done) return { bytes: concat(chunks, total), complete: true };
		chunks.push(result.value);
		total += result.value.byteLength;
	}
	return { bytes: concat(chunks, total), complete: false };
}

function concat(chunks: readonly Uint8Array[], total: number): Uint8Array {
	const bytes = new Uint8Array(total);
	let offset = 0;
	for (const chunk of chunks) {
		bytes.set(chunk, offset);
		offset += chunk.byteLength;
	}
	return bytes;
}
