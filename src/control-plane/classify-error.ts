import { Code, ConnectError } from "@connectrpc/connect";
import { excerpt } from "../errors/excerpt.ts";
import type { ResumeFailure } from "../resume-types.ts";

// The control plane's FailedPrecondition for a sandbox mid-pause or mid-resume,
// as E2B's API words it.
const transitioningMessage = "sandbox is still transitioning";
const maxPassedOnMessageLength = 200;
/** How connect-es starts the messages of errors it makes up for answers it cannot parse. */
export const clientProtocolErrorPrefix = "protocol error";

/**
 * Maps a failed ResumeSandbox call to the contract's table. Anything that is
 * not a definite answer from the control plane (refused connections, HTTP
 * 5xx, garbage bodies, unknown codes) is "temporarily unavailable", so that
 * clients retry rather than give up.
 */
export function classifyResumeError(error: unknown): ResumeFailure {
	const connectError = ConnectError.from(error);
	// connect-es reports a body it cannot parse ("protocol error: incomplete
	// envelope", ...) with codes a server could also send. Such an answer is
	// garbage, not a verdict on the sandbox.
	if (connectError.rawMessage.startsWith(clientProtocolErrorPrefix)) return { code: "control_plane_unavailable" };
	switch (connectError.code) {
		case Code.NotFound:
		case Code.InvalidArgument:
			return { code: "sandbox_not_found" };
		case Code.FailedPrecondition:
			return connectError.rawMessage.toLowerCase().includes(transitioningMessage)
				? { code: "sandbox_transitioning" }
				: { code: "sandbox_not_found" };
		case Code.PermissionDenied:
		case Code.Unauthenticated:
			return { code: "resume_forbidden" };
		case Code.ResourceExhausted: {
			// The control plane's text reaches clients.
			const message = excerpt(connectError.rawMessage, maxPassedOnMessageLength);
			return message === "" ? { code: "resume_rate_limited" } : { code: "resume_rate_limited", message };
		}
		case Code.DeadlineExceeded:
			return { code: "resume_timeout" };
		default:
			return { code: "control_plane_unavailable" };
	}
}
