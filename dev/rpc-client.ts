// A client of the development control plane's proxy.SandboxService, as the
// edge calls it, for tests that drive the control plane directly.

import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { SandboxService } from "../src/gen/proxy/proxy_pb.ts";

export type SandboxServiceClient = Client<typeof SandboxService>;

/** Binary protobuf over HTTP/1.1, as the Worker sends it. */
export function sandboxServiceClient(
	baseUrl: string,
	protocol: "grpc-web" | "connect" = "grpc-web",
): SandboxServiceClient {
	const options = { baseUrl, httpVersion: "1.1", useBinaryFormat: true } as const;
	return createClient(
		SandboxService,
		protocol === "grpc-web" ? createGrpcWebTransport(options) : createConnectTransport(options),
	);
}

/** How a call ended: "OK", or the status code's name (e.g. "PermissionDenied"), with its message. */
export interface RpcOutcome {
	code: "OK" | keyof typeof Code;
	message: string;
}

export async function outcomeOf(call: Promise<unknown>): Promise<RpcOutcome> {
	try {
		await call;
		return { code: "OK", message: "" };
	} catch (error) {
		const err = ConnectError.from(error);
		return { code: Code[err.code] as keyof typeof Code, message: err.rawMessage };
	}
}
