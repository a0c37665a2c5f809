// envd's /files (packages/envd/internal/api/download.go and upload.go):
// GET downloads a file, gzip-encoded when the client prefers it; POST uploads
// multipart/form-data parts named "file" (the path from ?path=, else from each
// part's filename) or an application/octet-stream body (?path= required),
// either possibly gzip-encoded, and answers the EntryInfo list. Both take
// ?username= and, in a secure sandbox, the access token header or a signature
// (?signature=, ?signature_expiration=) as envd's validateSigning checks it.

import { createHash, timingSafeEqual } from "node:crypto";
import { createReadStream } from "node:fs";
import { type FileHandle, open, stat } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { dirname, posix } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { MIMEType } from "node:util";
import { createGunzip, createGzip } from "node:zlib";
import { ensureDirs } from "./filesystem-service.ts";
import { MultipartError, readMultipart } from "./multipart.ts";
import { DEFAULT_USER, hostPath, PathError, sandboxPath, USERS } from "./paths.ts";

export interface FilesContext {
	root: string;
	accessToken: string | undefined;
}

/** An answer in envd's error shape (jsonError): `{"code","message"}` and a newline. */
export class HttpError extends Error {
	readonly status: number;
	constructor(status: number, message: string) {
		super(message);
		this.name = "HttpError";
		this.status = status;
	}
}

export function sendEnvdError(res: ServerResponse, status: number, message: string): void {
	const body = `${JSON.stringify({ code: status, message })}\n`;
	res.writeHead(status, {
		"content-type": "application/json; charset=utf-8",
		"x-content-type-options": "nosniff",
		"content-length": Buffer.byteLength(body),
	});
	res.end(body);
}

/** Constant-time string comparison. */
export function tokenEquals(expected: string, given: string): boolean {
	const a = createHash("sha256").update(expected).digest();
	const b = createHash("sha256").update(given).digest();
	return timingSafeEqual(a, b);
}

/** The signature the SDK puts on a signed URL: v1_ + unpadded base64 of SHA-256 over path:operation:user:token[:expiration]. */
export function fileSignature(
	path: string,
	operation: "read" | "write",
	username: string,
	token: string,
	expiration?: number,
): string {
	const parts = [path, operation, username, token];
	if (expiration !== undefined) parts.push(String(expiration));
	return `v1_${createHash("sha256").update(parts.join(":")).digest("base64").replace(/=+$/, "")}`;
}

/** envd's validateSigning: nothing to check without a token; else the header token, or a valid signature. */
function validateSigning(
	ctx: FilesContext,
	req: IncomingMessage,
	query: URLSearchParams,
	operation: "read" | "write",
): void {
	const token = ctx.accessToken;
	if (token === undefined) return;
	const fromHeader = req.headers["x-access-token"];
	if (typeof fromHeader === "string" && fromHeader !== "") {
		if (!tokenEquals(token, fromHeader)) {
			throw new HttpError(401, "access token present in header but does not match");
		}
		return;
	}
	const signature = query.get("signature");
	if (signature === null) throw new HttpError(401, "missing signature query parameter");
	const rawExpiration = query.get("signature_expiration");
	let expiration: number | undefined;
	if (rawExpiration !== null) {
		expiration = Number(rawExpiration);
		if (!Number.isSafeInteger(expiration)) {
			throw new HttpError(400, `Invalid format for parameter signature_expiration: ${rawExpiration}`);
		}
	}
	const expected = fileSignature(query.get("path") ?? "", operation, query.get("username") ?? "", token, expiration);
	if (!tokenEquals(expected, signature)) throw new HttpError(401, "invalid signature");
	if (expiration !== undefined && expiration < Math.floor(Date.now() / 1000)) {
		throw new HttpError(401, "signature is already expired");
	}
}

function userHome(query: URLSearchParams): string {
	const username = query.get("username") ?? DEFAULT_USER;
	const home = USERS.get(username);
	if (home === undefined) {
		throw new HttpError(401, `error looking up user '${username}': user: unknown user ${username}`);
	}
	return home;
}

function errnoOf(error: unknown): string | undefined {
	return (error as NodeJS.ErrnoException | undefined)?.code;
}

async function resolveFile(root: string, raw: string, home: string): Promise<{ path: string; host: string }> {
	try {
		const path = sandboxPath(raw, home);
		return { path, host: await hostPath(root, path, true) };
	} catch (error) {
		if (error instanceof PathError) {
			throw new HttpError(400, `error expanding and resolving path '${raw}': ${error.message}`);
		}
		throw error;
	}
}

// Go's mime.TypeByExtension for common names; Go sniffs the rest (DetectContentType).
const CONTENT_TYPES: ReadonlyMap<string, string> = new Map([
	[".txt", "text/plain; charset=utf-8"],
	[".html", "text/html; charset=utf-8"],
	[".htm", "text/html; charset=utf-8"],
	[".css", "text/css; charset=utf-8"],
	[".js", "text/javascript; charset=utf-8"],
	[".mjs", "text/javascript; charset=utf-8"],
	[".json", "application/json"],
	[".xml", "text/xml; charset=utf-8"],
	[".svg", "image/svg+xml"],
	[".png", "image/png"],
	[".jpg", "image/jpeg"],
	[".jpeg", "image/jpeg"],
	[".gif", "image/gif"],
	[".webp", "image/webp"],
	[".pdf", "application/pdf"],
	[".wasm", "application/wasm"],
	[".zip", "application/zip"],
	[".gz", "application/gzip"],
]);

function contentTypeOf(path: string): string | undefined {
	return CONTENT_TYPES.get(posix.extname(path).toLowerCase());
}

/** Go's DetectContentType, roughly: UTF-8 text without control bytes is text/plain, the rest octet-stream. */
async function sniff(host: string): Promise<string> {
	const handle = await open(host, "r");
	try {
		const { buffer, bytesRead } = await handle.read(Buffer.alloc(512), 0, 512, 0);
		const head = buffer.subarray(0, bytesRead);
		const binary = head.some((b) => b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0c && b !== 0x0d && b !== 0x1b);
		return binary ? "application/octet-stream" : "text/plain; charset=utf-8";
	} finally {
		await handle.close();
	}
}

/** Go's mime.FormatMediaType("inline", {filename}). */
function contentDisposition(name: string): string {
	if (/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) return `inline; filename=${name}`;
	if (/^[\x20-\x7e]*$/.test(name)) return `inline; filename="${name.replace(/(["\\])/g, "\\$1")}"`;
	return `inline; filename*=utf-8''${encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}`;
}

interface Coding {
	name: string;
	q: number;
}

/** envd's parseAcceptEncoding: "gzip" or "identity", or undefined when neither is acceptable (406). */
export function chooseEncoding(header: string | undefined): "gzip" | "identity" | undefined {
	if (header === undefined || header.trim() === "") return "identity";
	const codings: Coding[] = header.split(",").map((part) => {
		const [name = "", ...params] = part.split(";");
		let q = 1;
		for (const param of params) {
			const [key, value] = param.trim().split("=");
			if (key?.toLowerCase() === "q" && value !== undefined && !Number.isNaN(Number.parseFloat(value))) {
				q = Number.parseFloat(value);
			}
		}
		return { name: name.trim().toLowerCase(), q };
	});
	let identityRejected = false;
	let identityAccepted = false;
	let wildcardRejected = false;
	for (const c of codings) {
		if (c.name === "identity") {
			if (c.q === 0) identityRejected = true;
			else identityAccepted = true;
		} else if (c.name === "*" && c.q === 0) {
			wildcardRejected = true;
		}
	}
	if (wildcardRejected && !identityAccepted) identityRejected = true;
	const sorted = [...codings].sort((a, b) => b.q - a.q);
	for (const c of sorted) {
		if (c.q === 0) continue;
		if (c.name === "identity") return "identity";
		if (c.name === "*") return identityRejected ? "gzip" : "identity";
		if (c.name === "gzip") return "gzip";
	}
	return identityRejected ? undefined : "identity";
}

export async function getFile(ctx: FilesContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
	const query = new URL(req.url ?? "/", "http://envd").searchParams;
	validateSigning(ctx, req, query, "read");
	const home = userHome(query);
	const { path, host } = await resolveFile(ctx.root, query.get("path") ?? "", home);
	let stats: Awaited<ReturnType<typeof stat>>;
	try {
		stats = await stat(host);
	} catch (error) {
		if (errnoOf(error) === "ENOENT" || errnoOf(error) === "ENOTDIR") {
			throw new HttpError(404, `path '${path}' does not exist`);
		}
		throw new HttpError(500, `error checking if path exists '${path}': ${String(error)}`);
	}
	if (stats.isDirectory()) throw new HttpError(400, `path '${path}' is a directory`);
	let encoding = chooseEncoding(req.headers["accept-encoding"]);
	if (encoding === undefined)
		throw new HttpError(406, "error parsing Accept-Encoding: no acceptable encoding found, supported: [gzip]");
	// envd falls back to identity (http.ServeContent) for Range and conditional requests.
	const h = req.headers;
	if (
		h.range !== undefined ||
		h["if-modified-since"] !== undefined ||
		h["if-none-match"] !== undefined ||
		h["if-range"] !== undefined
	) {
		encoding = "identity";
	}
	const headers: Record<string, string> = {
		vary: "Accept-Encoding",
		"content-disposition": contentDisposition(posix.basename(path)),
	};
	if (encoding === "gzip") {
		res.writeHead(200, {
			...headers,
			"content-encoding": "gzip",
			"content-type": contentTypeOf(path) ?? "application/octet-stream",
		});
		await pipeline(createReadStream(host), createGzip(), res);
		return;
	}
	res.writeHead(200, {
		...headers,
		"content-type": contentTypeOf(path) ?? (await sniff(host)),
		"content-length": String(stats.size),
		"last-modified": stats.mtime.toUTCString(),
	});
	await pipeline(createReadStream(host), res);
}

interface UploadedEntry {
	name: string;
	path: string;
	type: "file";
}

/** envd's processFile: parent directories made, an existing directory refused, the file truncated and written. */
async function openForUpload(root: string, raw: string, home: string): Promise<{ path: string; handle: FileHandle }> {
	const { path, host } = await resolveFile(root, raw, home);
	try {
		await ensureDirs(dirname(host), posix.dirname(path));
	} catch (error) {
		throw new HttpError(500, `error ensuring directories: ${error instanceof Error ? error.message : String(error)}`);
	}
	try {
		if ((await stat(host)).isDirectory()) throw new HttpError(400, `path is a directory: ${path}`);
	} catch (error) {
		if (error instanceof HttpError) throw error;
		if (errnoOf(error) !== "ENOENT") throw new HttpError(500, `error getting file info: ${String(error)}`);
	}
	try {
		return { path, handle: await open(host, "w", 0o666) };
	} catch (error) {
		throw new HttpError(500, `error opening file: ${String(error)}`);
	}
}

async function writeAll(handle: FileHandle, chunk: Buffer): Promise<void> {
	let offset = 0;
	while (offset < chunk.length) {
		const { bytesWritten } = await handle.write(chunk, offset, chunk.length - offset);
		offset += bytesWritten;
	}
}

export async function postFiles(ctx: FilesContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
	const query = new URL(req.url ?? "/", "http://envd").searchParams;
	validateSigning(ctx, req, query, "write");
	const home = userHome(query);
	// envd keeps X-Metadata-* headers as xattrs (envd 0.6.2); this one cannot, and says so rather than drop them.
	if (Object.keys(req.headers).some((name) => name.startsWith("x-metadata-"))) {
		throw new HttpError(400, "invalid metadata: file metadata (X-Metadata-*) is not supported by the development envd");
	}
	const contentEncoding = (req.headers["content-encoding"] ?? "").trim().toLowerCase();
	let body: Readable = req;
	if (contentEncoding === "gzip") {
		const gunzip = createGunzip();
		req.pipe(gunzip);
		req.once("error", (error) => gunzip.destroy(error));
		body = gunzip;
	} else if (contentEncoding !== "" && contentEncoding !== "identity") {
		throw new HttpError(
			400,
			`error decompressing request body: unsupported Content-Encoding: ${req.headers["content-encoding"]}, supported: [gzip]`,
		);
	}
	const contentType = req.headers["content-type"] ?? "";
	const media = mediaTypeOf(contentType);
	const type = media?.essence ?? "";
	const queryPath = query.get("path");
	const uploaded: UploadedEntry[] = [];
	const handles: FileHandle[] = [];
	try {
		if (type === "application/octet-stream") {
			if (queryPath === null) throw new HttpError(400, "path query parameter is required for raw body upload");
			const file = await openForUpload(ctx.root, queryPath, home);
			handles.push(file.handle);
			for await (const chunk of body) await writeAll(file.handle, chunk);
			await file.handle.close();
			handles.pop();
			uploaded.push({ name: posix.basename(file.path), path: file.path, type: "file" });
		} else if (type.startsWith("multipart/")) {
			// Go's Request.MultipartReader, which envd calls, takes form-data only (ErrNotMultipart).
			if (type !== "multipart/form-data") {
				throw new HttpError(500, "error parsing multipart form: request Content-Type isn't multipart/form-data");
			}
			const boundary = media?.params.get("boundary") ?? "";
			if (boundary === "" || boundary.length > 70) {
				throw new HttpError(500, "error parsing multipart form: no multipart boundary param in Content-Type");
			}
			await readMultipart(body, boundary, async (part) => {
				if (part.name !== "file") return;
				const raw = queryPath ?? part.filename;
				if (raw === undefined) {
					throw new HttpError(
						400,
						"error resolving path: error getting multipart custom part file name: filename not found in Content-Disposition header",
					);
				}
				const path = sandboxPathOrError(raw, home);
				if (uploaded.some((entry) => entry.path === path)) {
					throw new HttpError(
						400,
						`you cannot upload multiple files to the same path '${path}' in one upload request, only the first specified file was uploaded`,
					);
				}
				const file = await openForUpload(ctx.root, raw, home);
				handles.push(file.handle);
				for await (const chunk of part.body) await writeAll(file.handle, chunk);
				await file.handle.close();
				handles.splice(handles.indexOf(file.handle), 1);
				uploaded.push({ name: posix.basename(file.path), path: file.path, type: "file" });
			});
		} else {
			throw new HttpError(
				400,
				`unsupported content type: ${contentType}, expected multipart/form-data or application/octet-stream`,
			);
		}
	} catch (error) {
		if (error instanceof MultipartError) throw new HttpError(500, `error reading form: ${error.message}`);
		if (error instanceof HttpError) throw error;
		const code = errnoOf(error);
		if (code === "ENOSPC") throw new HttpError(507, "not enough disk space available");
		if (code === "Z_DATA_ERROR" || code === "Z_BUF_ERROR") {
			throw new HttpError(400, `error writing file: gzip: ${error instanceof Error ? error.message : String(error)}`);
		}
		throw new HttpError(500, `error writing file: ${error instanceof Error ? error.message : String(error)}`);
	} finally {
		await Promise.all(handles.map((handle) => handle.close().catch(() => {})));
	}
	const text = JSON.stringify(uploaded);
	res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
	res.end(text);
}

/** Content-Type's media type and parameters; undefined when it is not one. */
function mediaTypeOf(contentType: string): MIMEType | undefined {
	try {
		return new MIMEType(contentType);
	} catch {
		return undefined;
	}
}

function sandboxPathOrError(raw: string, home: string): string {
	try {
		return sandboxPath(raw, home);
	} catch (error) {
		if (error instanceof PathError) throw new HttpError(400, `error resolving path: ${error.message}`);
		throw error;
	}
}
