import { Code, ConnectError } from "@connectrpc/connect";
import type { Config } from "../config.ts";
import { Deadline } from "../deadline.ts";
import type { ResumeCredentials, ResumeFailure } from "../resume-types.ts";
import { classifyResumeError, clientProtocolErrorPrefix } from "./classify-error.ts";
import type { EdgeAuth } from "./edge-auth.ts";
import { isNodeIp } from "./node-ip.ts";
import { sandboxServiceClient } from "./rpc-transport.ts";

export type ResumeOutcome = { ok: true; nodeIp: string } | { ok: false; error: ResumeFailure };

/**
 * A KeepAliveSandbox call's outcome, as the edge acts on it:
 * - `off`: the control plane will not keep this sandbox alive (its policy
 *   is off, or the IDs are not ones it knows): stop asking for this entry;
 * - `refused`: it refused the credentials, which may be one caller's
 *   missing access token: keep asking, at the next interval;
 * - `failed`: anything else; try again at the next interval.
 */
export type KeepAliveOutcome = { ok: true } | { ok: false; verdict: "off" | "refused" | "failed"; reason: string };

export interface ControlPlaneClient {
	resume(sandboxId: string, credentials: ResumeCredentials): Promise<ResumeOutcome>;
	keepAlive(sandboxId: string, teamId: string, credentials: ResumeCredentials): Promise<KeepAliveOutcome>;
}

// E2B's edge gives a keepalive call this long (trafficKeepaliveRequestTimeout).
const keepAliveTimeoutMs = 10_000;

// E2B's KeepAliveSandbox answers FailedPrecondition when the sandbox's
// traffic keepalive policy is off, and InvalidArgument for IDs it cannot
// parse: the entry's, whoever asks. PermissionDenied and Unauthenticated
// can be one caller's missing token (E2B checks the traffic token of private
// sandboxes here too): they must not let a stranger turn keepalive off.
const entryRefusals: ReadonlySet<Code> = new Set([Code.InvalidArgument, Code.FailedPrecondition]);
const callerRefusals: ReadonlySet<Code> = new Set([Code.Unauthenticated, Code.PermissionDenied]);

/**
 * Calls `proxy.SandboxService` with E2B's metadata, authenticated as the
 * edge (see EdgeAuth), and turns every outcome, transport failures included,
 * into a value: it never throws, and it answers by its deadline even if the
 * control plane keeps a malformed body open.
 */
export function createControlPlaneClient(
	config: Pick<Config, "controlPlaneUrl" | "controlPlaneProtocol" | "resumeTimeoutMs">,
	auth: EdgeAuth,
): ControlPlaneClient {
	const client = sandboxServiceClient(config);
	return {
		async resume(sandboxId, credentials) {
			const outcome = await authenticated(auth, config.resumeTimeoutMs, (headers, signal) =>
				client.resumeSandbox(
					{ sandboxId },
					{ headers: resumeHeaders(headers, credentials), timeoutMs: config.resumeTimeoutMs, signal },
				),
			);
			if (outcome === "timed_out") return { ok: false, error: { code: "resume_timeout" } };
			if (outcome === "no_credential") return { ok: false, error: { code: "control_plane_auth_unavailable" } };
			if (!outcome.ok) return { ok: false, error: classifyResumeError(outcome.error) };
			const nodeIp = outcome.value.orchestratorIp.trim();
			if (nodeIp === "") return { ok: false, error: { code: "sandbox_not_found" } };
			if (!isNodeIp(nodeIp)) return { ok: false, error: { code: "control_plane_bad_answer" } };
			return { ok: true, nodeIp };
		},

		async keepAlive(sandboxId, teamId, credentials) {
			const timeoutMs = Math.min(keepAliveTimeoutMs, config.resumeTimeoutMs);
			const outcome = await authenticated(auth, timeoutMs, (headers, signal) =>
				client.keepAliveSandbox(
					{ sandboxId, teamId },
					{ headers: resumeHeaders(headers, credentials), timeoutMs, signal },
				),
			);
			if (outcome === "timed_out") return { ok: false, verdict: "failed", reason: "timed out" };
			if (outcome === "no_credential") return { ok: false, verdict: "failed", reason: "no token" };
			if (outcome.ok) return { ok: true };
			const error = ConnectError.from(outcome.error);
			// connect-es reports an answer it cannot parse with codes a server
			// could send too (InvalidArgument among them): garbage, not a verdict.
			if (error.rawMessage.startsWith(clientProtocolErrorPrefix)) {
				return { ok: false, verdict: "failed", reason: "garbage" };
			}
			const verdict = entryRefusals.has(error.code) ? "off" : callerRefusals.has(error.code) ? "refused" : "failed";
			return { ok: false, verdict, reason: Code[error.code] ?? "unknown" };
		},
	};
}

type Attempt<T> = { ok: true; value: T } | { ok: false; error: unknown };

/**
 * One call with the edge's credential, and, if the control plane refuses
 * that credential and a fresher one exists, one more: never a third.
 * Bounded as a whole by `timeoutMs`, token requests included.
 */
async function authenticated<T>(
	auth: EdgeAuth,
	timeoutMs: number,
	send: (edgeHeaders: Record<string, string>, signal: AbortSignal) => Promise<T>,
): Promise<Attempt<T> | "timed_out" | "no_credential"> {
	const deadline = new Deadline(timeoutMs);
	const attempt = (headers: Record<string, string>): Promise<Attempt<T>> =>
		send(headers, deadline.signal).then(
			(value) => ({ ok: true, value }),
			(error: unknown) => ({ ok: false, error }),
		);
	const calls = (async (): Promise<Attempt<T> | "no_credential"> => {
		const credential = await auth.credential();
		if (!credential.ok) return "no_credential";
		const first = await attempt(credential.headers);
		if (first.ok || deadline.passed) return first;
		const fresher = await auth.afterRejection(credential, ConnectError.from(first.error).code);
		if (fresher === undefined || deadline.passed) return first;
		// Our credential was refused and no other can be had: that is ours to
		// report (a 503), not a refusal of the caller.
		if (!fresher.ok) return "no_credential";
		return attempt(fresher.headers);
	})();
	try {
		// connect-es's own timeout does not bound reading a body that the
		// server leaves open, so the deadline is also raced here.
		return (await Promise.race([calls, deadline.expired])) ?? "timed_out";
	} finally {
		deadline.clear();
	}
}

/** The edge's own credential, then the caller's: the metadata E2B's API reads. */
export function resumeHeaders(edgeHeaders: Record<string, string>, credentials: ResumeCredentials): Headers {
	const headers = new Headers(edgeHeaders);
	headers.set("e2b-sandbox-request-port", String(credentials.port));
	if (credentials.trafficAccessToken !== undefined) {
		headers.set("e2b-traffic-access-token", credentials.trafficAccessToken);
	}
	if (credentials.envdAccessToken !== undefined) {
		headers.set("e2b-envd-access-token", credentials.envdAccessToken);
	}
	return headers;
}
