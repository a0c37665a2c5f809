import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { readUpTo } from "../bytes.ts";
import type { Config, ControlPlaneProtocol } from "../config.ts";
import { SandboxService } from "../gen/proxy/proxy_pb.ts";

// A SandboxService answer with its trailers is a few hundred bytes at most;
// anything far larger is not one.
const maxResponseBytes = 64 * 1024;

/** A SandboxService client over the configured protocol, which reads answers defensively. */
export function sandboxServiceClient(
	config: Pick<Config, "controlPlaneUrl" | "controlPlaneProtocol">,
): Client<typeof SandboxService> {
	const transportOptions = {
		baseUrl: config.controlPlaneUrl,
		useBinaryFormat: true,
		fetch: checkedFetch(config.controlPlaneProtocol),
	};
	const transport =
		config.controlPlaneProtocol === "connect"
			? createConnectTransport(transportOptions)
			: createGrpcWebTransport(transportOptions);
	return createClient(SandboxService, transport);
}

/**
 * The fetch the transports use. It never follows redirects: connect-web
 * hard-codes `redirect: "error"`, which workerd rejects, and a redirect must
 * not carry our secret elsewhere. A 200 whose content type is not the
 * protocol's, or a body far too large to be our message, is a control plane
 * that is not speaking the protocol: it is reported as unavailable before
 * connect-es tries to decode it and misreads it as an answer.
 */
function checkedFetch(protocol: ControlPlaneProtocol): typeof fetch {
	const expectedType = protocol === "connect" ? "application/proto" : "application/grpc-web";
	return async (input, init) => {
		const response = await fetch(input, { ...init, redirect: "manual" });
		// An error's body (Connect's JSON, a proxy's page) is small too; one
		// that is not is read no further than the bound.
		if (response.status !== 200) {
			const body = await readBounded(response, maxResponseBytes);
			// 204, 205 and 304 may not carry a body at all.
			return new Response(body.byteLength === 0 ? null : body, { status: response.status, headers: response.headers });
		}
		const contentType = response.headers.get("content-type")?.toLowerCase() ?? "";
		const length = Number(response.headers.get("content-length") ?? 0);
		if (!contentType.startsWith(expectedType) || length > maxResponseBytes) {
			await response.body?.cancel();
			throw new ConnectError(`control plane answered 200 with ${contentType || "no content type"}`, Code.Unavailable);
		}
		// Read here, bounded, so that connect-es decodes a complete body whose
		// frames are known to fit: it would otherwise allocate whatever length a
		// garbage frame header claims, gigabytes, blocking the object for seconds.
		const body = await readBounded(response, maxResponseBytes);
		if (protocol === "grpc-web" && !framesFit(body)) {
			throw new ConnectError("control plane answer is not valid gRPC-web framing", Code.Unavailable);
		}
		return new Response(body, { status: response.status, headers: response.headers });
	};
}

/** Whether a gRPC-web body is a sequence of whole frames: 1 flag byte, a 4-byte length, that many bytes. */
function framesFit(body: Uint8Array): boolean {
	const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
	let offset = 0;
	while (offset < body.byteLength) {
		if (offset + 5 > body.byteLength) return false;
		offset += 5 + view.getUint32(offset + 1);
	}
	return offset === body.byteLength;
}

async function readBounded(response: Response, limit: number): Promise<Uint8Array> {
	const reader = response.body?.getReader();
	if (reader === undefined) return new Uint8Array();
	const head = await readUpTo(reader, limit);
	if (!head.complete) {
		await reader.cancel();
		throw new ConnectError("control plane answer is too large", Code.Unavailable);
	}
	return head.bytes;
}
