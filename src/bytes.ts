/** The start of a stream, read no further than just past a limit. */
export interface Head {
	bytes: Uint8Array;
	/** Whether the stream ended within the limit; if not, `bytes` holds a little more than the limit. */
	complete: boolean;
}

/**
 * Reads until the stream ends or more than `limit` bytes have come, so that
 * a peer cannot make us hold more than that however much it sends. The
 * reader is left as it is: the caller cancels it, or reads the rest.
 */
export async function readUpTo(reader: ReadableStreamDefaultReader<Uint8Array>, limit: number): Promise<Head> {
	const chunks: Uint8Array[] = [];
	let total = 0;
	while (total <= limit) {
		const { done, value } = await reader.read();
		if (done) return { bytes: concat(chunks, total), complete: true };
		chunks.push(value);
		total += value.byteLength;
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
