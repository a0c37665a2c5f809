// Reads the fields of a ResumeSandbox or KeepAliveSandbox request body before
// the Connect adapter sees it, so that calls are recorded, and raw faults are
// scoped, even when the adapter never runs.

import type { IncomingHttpHeaders } from "node:http";
import { brotliDecompressSync, gunzipSync } from "node:zlib";
import { type DescMessage, fromBinary, fromJsonString, type MessageShape } from "@bufbuild/protobuf";
import { SandboxKeepAliveRequestSchema, SandboxResumeRequestSchema } from "../src/gen/proxy/proxy_pb.ts";
import type { RpcProtocol } from "./model.ts";

export function protocolOf(contentType: string | undefined): RpcProtocol {
	const type = (contentType ?? "").split(";", 1)[0]?.trim().toLowerCase() ?? "";
	if (type.startsWith("application/grpc-web")) return "grpc-web";
	if (type === "application/proto" || type === "application/json" || type.startsWith("application/connect+")) {
		return "connect";
	}
	return "unknown";
}

function isJson(contentType: string | undefined): boolean {
	return /json/i.test(contentType ?? "");
}

function decompress(bytes: Uint8Array, encoding: string | undefined): Uint8Array {
	switch ((encoding ?? "identity").toLowerCase()) {
		case "gzip":
			return gunzipSync(bytes);
		case "br":
			return brotliDecompressSync(bytes);
		default:
			return bytes;
	}
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
	const value = headers[name];
	return Array.isArray(value) ? value[0] : value;
}

/** The request message, or undefined when the body is not a readable one. */
function decodeRequest<Desc extends DescMessage>(
	headers: IncomingHttpHeaders,
	body: Uint8Array,
	schema: Desc,
): MessageShape<Desc> | undefined {
	const contentType = header(headers, "content-type");
	try {
		let message = body;
		if (protocolOf(contentType) === "grpc-web") {
			// One length-prefixed frame: flags (bit 0 = compressed), uint32 length, message.
			const flags = body[0] ?? 0;
			const length = Buffer.from(body.buffer, body.byteOffset, body.byteLength).readUInt32BE(1);
			message = body.subarray(5, 5 + length);
			if ((flags & 1) === 1) message = decompress(message, header(headers, "grpc-encoding"));
		} else {
			message = decompress(message, header(headers, "content-encoding"));
		}
		return isJson(contentType)
			? fromJsonString(schema, Buffer.from(message).toString("utf8"))
			: fromBinary(schema, message);
	} catch {
		return undefined;
	}
}

/** The request's sandbox_id, or "" when the body is not a readable ResumeSandbox request. */
export function sandboxIdFromBody(headers: IncomingHttpHeaders, body: Uint8Array): string {
	return decodeRequest(headers, body, SandboxResumeRequestSchema)?.sandboxId ?? "";
}

/** The request's sandbox_id and team_id, each "" when the body is not a readable KeepAliveSandbox request. */
export function keepAliveFieldsFromBody(
	headers: IncomingHttpHeaders,
	body: Uint8Array,
): { sandboxId: string; teamId: string } {
	const request = decodeRequest(headers, body, SandboxKeepAliveRequestSchema);
	return { sandboxId: request?.sandboxId ?? "", teamId: request?.teamId ?? "" };
}
