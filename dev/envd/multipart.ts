// envd's POST /files reads multipart/form-data part by part (Go's
// multipart.Reader); busboy does the parsing here. Each part's body streams
// to its reader as it arrives, so an upload of any size is never held in memory.

import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { MIMEType } from "node:util";
import busboy from "busboy";

export interface FormPart {
	/** Content-Disposition's name parameter (Go's Part.FormName). */
	name: string | undefined;
	/** Content-Disposition's filename parameter, whole: envd takes the full path from it, not its base name. */
	filename: string | undefined;
	body: Readable;
}

export class MultipartError extends Error {
	constructor(message: string) {
		super(message);
		this.name = "MultipartError";
	}
}

// busboy's errors for a malformed body, in our words.
const BUSBOY_ERRORS = new Map([
	["Malformed part header", "malformed MIME header line"],
	["Unexpected end of form", "unexpected EOF in multipart body"],
	["Unexpected end of file", "unexpected EOF in multipart body"],
]);

/**
 * Reads a multipart body, calling `read` with each part in turn, once the
 * one before is done; a part it leaves unread is skipped. Rejects with
 * MultipartError on a malformed body, or with whatever `read` or the body
 * throws (the first of them), after `read` has settled.
 */
export async function readMultipart(
	body: Readable,
	boundary: string,
	read: (part: FormPart) => Promise<void>,
): Promise<void> {
	// The boundary as the caller parsed it from a multipart/form-data Content-Type (files.ts refuses other types, as envd does).
	const contentType = new MIMEType("multipart/form-data");
	contentType.params.set("boundary", boundary);
	const form = busboy({
		headers: { "content-type": contentType.toString() },
		preservePath: true,
		// Parameters in UTF-8, as Go reads them. busboy holds a part without a
		// filename (a field) whole, as a string: latin1 gives its bytes back
		// unchanged, unless its own Content-Type names another charset.
		defParamCharset: "utf8",
		defCharset: "latin1",
		limits: { fieldSize: Number.POSITIVE_INFINITY },
	});
	let parts = Promise.resolve();
	const take = (part: FormPart) => {
		parts = parts.then(async () => {
			try {
				await read(part);
			} finally {
				part.body.resume();
			}
		});
		// The first failure stops the form, and with it the body.
		parts.catch((error: Error) => form.destroy(error));
	};
	form.on("file", (name, body, info) => {
		// busboy fails a part cut short; its reader, if it has started, sees that, and the form says so anyway.
		body.on("error", () => {});
		take({ name, filename: info.filename as string | undefined, body });
	});
	form.on("field", (name, value) =>
		take({ name, filename: undefined, body: Readable.from([Buffer.from(value, "latin1")]) }),
	);

	let failure: unknown;
	await pipeline(body, form).catch((error: unknown) => {
		failure = error;
	});
	await parts.catch((error: unknown) => {
		failure = error;
	});
	if (failure === undefined) return;
	const message = failure instanceof Error ? BUSBOY_ERRORS.get(failure.message) : undefined;
	throw message === undefined ? failure : new MultipartError(message);
}
