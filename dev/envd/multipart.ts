// A streaming multipart/form-data reader (RFC 7578 over RFC 2046), for envd's
// POST /files: each part's body goes to its sink as it arrives, so an upload
// of any size is never held in memory.

export interface PartHead {
	/** Lowercased header names. */
	headers: ReadonlyMap<string, string>;
	/** Content-Disposition's name parameter (Go's Part.FormName). */
	name: string | undefined;
	/** Content-Disposition's filename parameter, whole: envd takes the full path from it, not its base name. */
	filename: string | undefined;
}

export interface PartSink {
	write(chunk: Buffer): Promise<void>;
	end(): Promise<void>;
}

export class MultipartError extends Error {
	constructor(message: string) {
		super(message);
		this.name = "MultipartError";
	}
}

const CRLF = Buffer.from("\r\n");
const HEADERS_END = Buffer.from("\r\n\r\n");
const MAX_HEADER_BYTES = 16 * 1024;

/** The boundary parameter of a multipart Content-Type, or undefined. */
export function boundaryOf(contentType: string): string | undefined {
	const { params } = parseHeaderValue(contentType);
	const boundary = params.get("boundary");
	return boundary === undefined || boundary === "" || boundary.length > 70 ? undefined : boundary;
}

/**
 * A header value with parameters, as Go's mime.ParseMediaType reads it:
 * `type; a=b; c="quoted \"value\""; filename*=utf-8''%2Fpath`. Names are
 * lowercased; an RFC 2231 `name*` value is decoded and wins over `name`.
 */
export function parseHeaderValue(value: string): { type: string; params: Map<string, string> } {
	const params = new Map<string, string>();
	const extended = new Map<string, string>();
	const semicolon = value.indexOf(";");
	const type = (semicolon < 0 ? value : value.slice(0, semicolon)).trim().toLowerCase();
	let i = semicolon < 0 ? value.length : semicolon + 1;
	while (i < value.length) {
		while (i < value.length && (value[i] === " " || value[i] === "\t" || value[i] === ";")) i++;
		const eq = value.indexOf("=", i);
		if (eq < 0) break;
		const name = value.slice(i, eq).trim().toLowerCase();
		i = eq + 1;
		let paramValue = "";
		if (value[i] === '"') {
			i++;
			while (i < value.length && value[i] !== '"') {
				if (value[i] === "\\" && i + 1 < value.length) i++;
				paramValue += value[i];
				i++;
			}
			i++;
		} else {
			const end = value.indexOf(";", i);
			paramValue = value.slice(i, end < 0 ? value.length : end).trim();
			i = end < 0 ? value.length : end;
		}
		if (name.endsWith("*")) {
			// RFC 2231: charset'language'percent-encoded.
			const parts = paramValue.split("'");
			if (parts.length === 3) {
				try {
					extended.set(name.slice(0, -1), decodeURIComponent(parts[2] ?? ""));
				} catch {}
			}
		} else if (!params.has(name)) {
			params.set(name, paramValue);
		}
	}
	for (const [name, decoded] of extended) params.set(name, decoded);
	return { type, params };
}

function parseHead(raw: string): PartHead {
	const headers = new Map<string, string>();
	for (const line of raw.split("\r\n")) {
		const colon = line.indexOf(":");
		if (colon <= 0) throw new MultipartError(`malformed MIME header line: ${line}`);
		const name = line.slice(0, colon).trim().toLowerCase();
		if (!headers.has(name)) headers.set(name, line.slice(colon + 1).trim());
	}
	const disposition = headers.get("content-disposition");
	if (disposition === undefined) return { headers, name: undefined, filename: undefined };
	const { type, params } = parseHeaderValue(disposition);
	if (type !== "form-data") return { headers, name: undefined, filename: params.get("filename") };
	return { headers, name: params.get("name"), filename: params.get("filename") };
}

type State = "preamble" | "delimiter" | "headers" | "body" | "done";

/**
 * Reads a multipart body, calling `open` with each part's head; the part's
 * bytes go to the sink it returns (or are skipped when it returns undefined).
 * Throws MultipartError on a malformed body, or whatever a sink or `open` throws.
 */
export async function readMultipart(
	body: AsyncIterable<Buffer>,
	boundary: string,
	open: (head: PartHead) => Promise<PartSink | undefined>,
): Promise<void> {
	// The first delimiter has no CRLF before it; one is prepended so that every delimiter looks alike.
	const delimiter = Buffer.from(`\r\n--${boundary}`);
	let buffer: Buffer = Buffer.from(CRLF);
	let state = "preamble" as State;
	let sink: PartSink | undefined;

	const step = async (): Promise<boolean> => {
		switch (state) {
			case "preamble": {
				const at = buffer.indexOf(delimiter);
				if (at < 0) {
					buffer = buffer.subarray(Math.max(0, buffer.length - delimiter.length + 1));
					return false;
				}
				buffer = buffer.subarray(at + delimiter.length);
				state = "delimiter";
				return true;
			}
			case "delimiter": {
				if (buffer.length < 2) return false;
				if (buffer[0] === 0x2d && buffer[1] === 0x2d) {
					state = "done";
					return false;
				}
				// Transport padding (spaces, tabs) may follow a delimiter before its CRLF.
				const eol = buffer.indexOf(CRLF);
				if (eol < 0) {
					if (buffer.length > 1024) throw new MultipartError("malformed delimiter line");
					return false;
				}
				if (buffer.subarray(0, eol).toString("latin1").trim() !== "") {
					throw new MultipartError("malformed delimiter line");
				}
				buffer = buffer.subarray(eol + 2);
				state = "headers";
				return true;
			}
			case "headers": {
				// A part with no headers at all starts right away with its body.
				if (buffer.length >= 2 && buffer[0] === 0x0d && buffer[1] === 0x0a) {
					buffer = buffer.subarray(2);
					sink = await open({ headers: new Map(), name: undefined, filename: undefined });
					state = "body";
					return true;
				}
				const end = buffer.indexOf(HEADERS_END);
				if (end < 0) {
					if (buffer.length > MAX_HEADER_BYTES) throw new MultipartError("part headers too large");
					return false;
				}
				const head = parseHead(buffer.subarray(0, end).toString("utf8"));
				buffer = buffer.subarray(end + HEADERS_END.length);
				sink = await open(head);
				state = "body";
				return true;
			}
			case "body": {
				const at = buffer.indexOf(delimiter);
				if (at < 0) {
					// Keep what could be the start of a delimiter split across chunks.
					const keep = delimiter.length - 1;
					if (buffer.length > keep) {
						const chunk = buffer.subarray(0, buffer.length - keep);
						buffer = buffer.subarray(buffer.length - keep);
						await sink?.write(chunk);
					}
					return false;
				}
				if (at > 0) await sink?.write(buffer.subarray(0, at));
				await sink?.end();
				sink = undefined;
				buffer = buffer.subarray(at + delimiter.length);
				state = "delimiter";
				return true;
			}
			case "done":
				return false;
		}
	};

	for await (const chunk of body) {
		if (state === "done") continue; // the epilogue is ignored
		buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
		while (await step()) {}
	}
	if (state !== "done") throw new MultipartError("unexpected EOF in multipart body");
}
