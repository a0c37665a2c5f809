// proxy.SandboxService/ResumeSandbox, with the checks of E2B's API handler
// (packages/api/internal/handlers/proxy_grpc.go), in its order, reduced to
// what the edge can observe: auth, the snapshot and its auto-resume policy,
// the sandbox's state (waiting out a pause), tokens, then the resume.

import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { callInfoKey, throwFaultCode } from "./call-info.ts";
import { type ClientProxyAuth, sameSecret } from "./client-proxy-auth.ts";
import { shortId } from "./ids.ts";
import { ENVD_PORT, type SandboxView } from "./model.ts";
import { RegistryError, type SandboxRegistry } from "./registry.ts";

/**
 * "always": a private sandbox needs its traffic token and a secure one its envd
 * token on every call, whatever its state or the requested port.
 * "e2b": as E2B's API does it — tokens are checked only before actually resuming,
 * the traffic token for non-envd ports and the envd token for port 49983.
 */
export type TokenPolicy = "always" | "e2b";

export interface ResumeServiceOptions {
	auth: ClientProxyAuth;
	registry: SandboxRegistry;
	tokenPolicy: TokenPolicy;
	/** How long a call for a pausing sandbox waits for the pause to finish; E2B waits 60 s. */
	transitionWaitMs: number;
}

function checkTokens(sandbox: SandboxView, header: Headers, policy: TokenPolicy): void {
	const requestPort = Number(header.get("e2b-sandbox-request-port") ?? "");
	const envdTraffic = requestPort === ENVD_PORT;
	const checkTraffic = policy === "always" || !envdTraffic;
	const checkEnvd = policy === "always" || envdTraffic;
	if (checkTraffic && sandbox.trafficAccessToken !== undefined) {
		if (!sameSecret(header.get("e2b-traffic-access-token"), sandbox.trafficAccessToken)) {
			throw new ConnectError("permission denied", Code.PermissionDenied);
		}
	}
	if (checkEnvd && sandbox.envdAccessToken !== undefined) {
		if (!sameSecret(header.get("e2b-envd-access-token"), sandbox.envdAccessToken)) {
			throw new ConnectError("permission denied", Code.PermissionDenied);
		}
	}
}

/** Runs `promise` but gives up when the RPC is cancelled or past its deadline; the resume itself carries on. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
	return new Promise<T>((resolve, reject) => {
		const onAbort = () => reject(ConnectError.from(signal.reason ?? "request aborted", Code.Canceled));
		if (signal.aborted) return onAbort();
		signal.addEventListener("abort", onAbort, { once: true });
		promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
	});
}

/** Answers one ResumeSandbox call with the node's IP; `say` logs a step of it. */
export type ResumeHandler = (sandboxId: string, ctx: HandlerContext, say: (line: string) => void) => Promise<string>;

export function createResumeHandler(options: ResumeServiceOptions): ResumeHandler {
	const { auth, registry, tokenPolicy, transitionWaitMs } = options;

	return async (requestedId, ctx, say) => {
		const fault = ctx.values.get(callInfoKey)?.fault;
		if (fault?.code === "ok-empty-ip") {
			say('-> "" [fault]');
			return "";
		}
		throwFaultCode(fault);
		// The shared secret came first, before E2B's API moved to bearer tokens.
		auth.requireSecret(ctx.requestHeader);
		const sandboxId = shortId(requestedId);
		if (sandboxId === undefined) throw new ConnectError("invalid sandbox ID", Code.InvalidArgument);
		// E2B looks for the snapshot first: a sandbox that never paused has none,
		// so it cannot be resumed even while it runs; its route comes from the catalog.
		let sandbox = registry.get(sandboxId);
		if (sandbox === undefined || sandbox.state === "killed" || !sandbox.hasSnapshot) {
			throw new ConnectError("snapshot not found", Code.NotFound);
		}
		if (!sandbox.autoResume) throw new ConnectError("sandbox auto-resume disabled", Code.NotFound);
		// Then the snapshot's team, which names the cluster whose auth org the token must carry.
		await auth.requireToken(ctx.requestHeader, ctx.signal);
		if (tokenPolicy === "always") checkTokens(sandbox, ctx.requestHeader, tokenPolicy);
		if (sandbox.state === "pausing") {
			// E2B waits for the pause to finish, then resumes; past its budget
			// it answers "still transitioning".
			say(`pausing, waiting up to ${transitionWaitMs}ms for the pause to finish`);
			sandbox = await registry.waitWhilePausing(sandboxId, transitionWaitMs, ctx.signal);
			if (ctx.signal.aborted) throw new ConnectError("request aborted", Code.Canceled);
			if (sandbox === undefined || sandbox.state === "killed") {
				throw new ConnectError("sandbox not found", Code.NotFound);
			}
			if (sandbox.state === "pausing") {
				throw new ConnectError("sandbox is still transitioning", Code.FailedPrecondition);
			}
		}
		if (sandbox.state === "running") {
			say(`running -> ${registry.orchestratorIp}`);
			return registry.orchestratorIp;
		}
		if (tokenPolicy === "e2b") checkTokens(sandbox, ctx.requestHeader, tokenPolicy);
		say(sandbox.resuming ? "paused, joining the resume in flight" : "paused -> resuming");
		try {
			const resumed = await untilAborted(registry.resume(sandboxId), ctx.signal);
			if (resumed.state !== "running") throw new ConnectError("sandbox not found", Code.NotFound);
			return registry.orchestratorIp;
		} catch (error) {
			if (!(error instanceof RegistryError)) throw error;
			if (error.status === 404) throw new ConnectError("sandbox not found", Code.NotFound);
			if (error.status === 503) throw new ConnectError(error.message, Code.Unavailable);
			throw new ConnectError("sandbox is still transitioning", Code.FailedPrecondition);
		}
	};
}
