/**
 * ResumeSandbox on the wire, as a control plane answers it: gRPC-web (a
 * data frame and a trailer frame, or a trailers-only error) and Connect
 * (binary proto, or a JSON error), both binary protobuf. Web-standard APIs
 * only: the fake upstream uses it in Node, unit tests inside workerd.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { SandboxResumeRequestSchema, SandboxResumeResponseSchema } from "../../src/gen/proxy/proxy_pb.ts";
import type { ResumeAnswer } from "./upstream-model.ts";

/** Which protocol a ResumeSandbox call speaks, by its content type. */
export function protocolOf(contentType: string | null): "grpc-web" | "connect" | "unknown" {
	const type = (contentType ?? "").toLowerCase();
	if (type.startsWith("application/grpc-web")) return "grpc-web";
	if (type.startsWith("application/proto")) return "connect";
	return "unknown";
}

/** The call's sandbox_id, or "" when its body is not a readable SandboxResumeRequest. */
export function decodeSandboxId(bytes: Uint8Array, protocol: "grpc-web" | "connect" | "unknown"): string {
	try {
		let message = bytes;
		if (protocol === "grpc-web") {
			const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(1);
			message = bytes.subarray(5, 5 + length);
		}
		return fromBinary(SandboxResumeRequestSchema, message).sandboxId;
	} catch {
		return "";
	}
}

const connectCodeNames: Record<number, string> = {
	3: "invalid_argument",
	4: "deadline_exceeded",
	5: "not_found",
	7: "permission_denied",
	8: "resource_exhausted",
	9: "failed_precondition",
	14: "unavailable",
	16: "unauthenticated",
};
const connectHttpStatus: Record<number, number> = {
	3: 400,
	4: 504,
	5: 404,
	7: 403,
	8: 429,
	9: 400,
	14: 503,
	16: 401,
};

/** The HTTP response that gives `answer` in `protocol`, as connect-go or E2B's API would send it. */
export function resumeResponse(answer: ResumeAnswer, protocol: "grpc-web" | "connect"): Response {
	if (answer.kind === "http") {
		const headers = new Headers();
		if (answer.contentType !== undefined) headers.set("content-type", answer.contentType);
		return new Response(answer.body ?? null, { status: answer.status, headers });
	}
	if (protocol === "connect") {
		if (answer.kind === "ok") {
			const body = toBinary(
				SandboxResumeResponseSchema,
				create(SandboxResumeResponseSchema, { orchestratorIp: answer.ip }),
			);
			return new Response(body, { status: 200, headers: { "content-type": "application/proto" } });
		}
		return Response.json(
			{ code: connectCodeNames[answer.code] ?? "unknown", message: answer.message ?? "" },
			{ status: connectHttpStatus[answer.code] ?? 500 },
		);
	}
	const headers = new Headers({ "content-type": "application/grpc-web+proto" });
	if (answer.kind === "ok") {
		const message = toBinary(
			SandboxResumeResponseSchema,
			create(SandboxResumeResponseSchema, { orchestratorIp: answer.ip }),
		);
		const trailer = new TextEncoder().encode("grpc-status: 0\r\ngrpc-message: \r\n");
		return new Response(concat([frame(0x00, message), frame(0x80, trailer)]), { status: 200, headers });
	}
	// Trailers-only: the status in the headers, no body.
	headers.set("grpc-status", String(answer.code));
	headers.set("grpc-message", encodeURIComponent(answer.message ?? ""));
	return new Response(null, { status: 200, headers });
}

function frame(flags: number, payload: Uint8Array): Uint8Array {
	const bytes = new Uint8Array(5 + payload.byteLength);
	bytes[0] = flags;
	new DataView(bytes.buffer).setUint32(1, payload.byteLength);
	bytes.set(payload, 5);
	return bytes;
}

function concat(parts: Uint8Array[]): Uint8Array {
	const bytes = new Uint8Array(parts.reduce((total, part) => total + part.byteLength, 0));
	let offset = 0;
	for (const part of parts) {
		bytes.set(part, offset);
		offset += part.byteLength;
	}
	return bytes;
}
