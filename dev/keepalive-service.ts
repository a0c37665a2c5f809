// proxy.SandboxService/KeepAliveSandbox, with the checks of E2B's API handler
// in its order: the IDs, the team, the edge's credentials, the sandbox, its
// traffic keepalive policy, its traffic token, then KeepAliveFor with the
// policy's timeout (never shortening the sandbox's life).

import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { callInfoKey, throwFaultCode } from "./call-info.ts";
import { type ClientProxyAuth, sameSecret } from "./client-proxy-auth.ts";
import { parseUuid, shortId } from "./ids.ts";
import type { SandboxView } from "./model.ts";
import { RegistryError, type SandboxRegistry } from "./registry.ts";

export interface KeepAliveServiceOptions {
	auth: ClientProxyAuth;
	registry: SandboxRegistry;
}

/** Answers one KeepAliveSandbox call; `say` logs its outcome. */
export type KeepAliveHandler = (
	request: { sandboxId: string; teamId: string },
	ctx: HandlerContext,
	say: (line: string) => void,
) => Promise<void>;

/** E2B's answers to KeepAliveFor's API errors, through GRPCCodeFromHTTPStatus. */
function fromRegistry(error: RegistryError): ConnectError {
	const code = { 400: Code.InvalidArgument, 404: Code.NotFound, 409: Code.AlreadyExists, 503: Code.Unavailable }[
		error.status
	];
	return new ConnectError(error.message, code);
}

function describeEnd(before: SandboxView | undefined, after: SandboxView): string {
	if (after.endTime === undefined) return "no timeout, nothing to push back";
	if (after.endTime === before?.endTime) return "end time unchanged";
	return `pauses at ${new Date(after.endTime).toISOString()}`;
}

export function createKeepAliveHandler(options: KeepAliveServiceOptions): KeepAliveHandler {
	const { auth, registry } = options;

	return async (request, ctx, say) => {
		throwFaultCode(ctx.values.get(callInfoKey)?.fault);
		auth.requireSecret(ctx.requestHeader);
		const sandboxId = shortId(request.sandboxId);
		if (sandboxId === undefined) throw new ConnectError("invalid sandbox ID", Code.InvalidArgument);
		const teamId = parseUuid(request.teamId);
		if (teamId === undefined) throw new ConnectError("invalid team ID", Code.InvalidArgument);
		// E2B's API answers a failed team lookup as ResumeSandbox does: Internal.
		if (!registry.hasTeam(teamId)) throw new ConnectError("failed to get team: team not found", Code.Internal);
		await auth.requireToken(ctx.requestHeader, ctx.signal);
		// E2B's GetSandbox(team, sandbox) sees only sandboxes it runs (or is pausing), and only in their team.
		const sandbox = registry.get(sandboxId);
		if (
			sandbox === undefined ||
			sandbox.teamId !== teamId ||
			(sandbox.state !== "running" && sandbox.state !== "pausing")
		) {
			throw new ConnectError("sandbox not found", Code.NotFound);
		}
		if (!sandbox.trafficKeepalive) {
			throw new ConnectError("sandbox traffic keepalive disabled", Code.FailedPrecondition);
		}
		if (
			sandbox.trafficAccessToken !== undefined &&
			!sameSecret(ctx.requestHeader.get("e2b-traffic-access-token"), sandbox.trafficAccessToken)
		) {
			throw new ConnectError("permission denied", Code.PermissionDenied);
		}
		try {
			say(`-> ${describeEnd(sandbox, registry.keepAlive(sandboxId))}`);
		} catch (error) {
			throw error instanceof RegistryError ? fromRegistry(error) : error;
		}
	};
}
