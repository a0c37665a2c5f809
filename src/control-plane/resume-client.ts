import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import type { LookupFailure, ResumeCredentials } from "../catalog/route.ts";
import type { Config } from "../config.ts";
import { SandboxService } from "../gen/proxy/proxy_pb.ts";
import { classifyResumeError } from "./classify-error.ts";
import { isNodeIp } from "./node-ip.ts";

export type ResumeOutcome = { ok: true; nodeIp: string } | { ok: false; error: LookupFailure };

export type ResumeSandbox = (sandboxId: string, credentials: ResumeCredentials) => Promise<ResumeOutcome>;

// connect-web hard-codes `redirect: "error"`, which workerd rejects. A
// redirect from the control plane is an error for us anyway: answered
// manually, it fails the protocol's response checks instead of being followed
// with our secret attached.
const fetchWithoutRedirects: typeof fetch = (input, init) => fetch(input, { ...init, redirect: "manual" });

/**
 * Calls `proxy.SandboxService/ResumeSandbox` with E2B's metadata and turns
 * every outcome, including transport failures, into a route or a failure
 * from the error registry. It never throws.
 */
export function createResumeClient(config: Config): ResumeSandbox {
	const transportOptions = {
		baseUrl: config.controlPlaneUrl,
		useBinaryFormat: true,
		fetch: fetchWithoutRedirects,
	};
	const transport =
		config.controlPlaneProtocol === "connect"
			? createConnectTransport(transportOptions)
			: createGrpcWebTransport(transportOptions);
	const client = createClient(SandboxService, transport);

	return async (sandboxId, credentials) => {
		try {
			const response = await client.resumeSandbox(
				{ sandboxId },
				{ headers: resumeHeaders(config.apiSecret, credentials), timeoutMs: config.resumeTimeoutMs },
			);
			const nodeIp = response.orchestratorIp.trim();
			if (nodeIp === "") return { ok: false, error: { code: "sandbox_not_found" } };
			if (!isNodeIp(nodeIp)) return { ok: false, error: { code: "control_plane_bad_answer" } };
			return { ok: true, nodeIp };
		} catch (error) {
			return { ok: false, error: classifyResumeError(error) };
		}
	};
}

export function resumeHeaders(apiSecret: string, credentials: ResumeCredentials): Headers {
	const headers = new Headers({
		"x-e2b-client-proxy-auth": apiSecret,
		"e2b-sandbox-request-port": String(credentials.port),
	});
	if (credentials.trafficAccessToken !== undefined) {
		headers.set("e2b-traffic-access-token", credentials.trafficAccessToken);
	}
	if (credentials.envdAccessToken !== undefined) {
		headers.set("e2b-envd-access-token", credentials.envdAccessToken);
	}
	return headers;
}
