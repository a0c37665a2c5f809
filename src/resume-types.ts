import type { ErrorCode } from "./errors/registry.ts";

/**
 * What the control plane and the catalog both speak of: who is asking to wake
 * a sandbox, and why a wake did not give a route. Kept apart from both so that
 * neither depends on the other.
 */

/** The caller credentials the control plane checks before resuming. */
export interface ResumeCredentials {
	port: number;
	trafficAccessToken?: string;
	envdAccessToken?: string;
}

/** Why there is no route: a resume that failed, or a catalog that cannot resume. */
export interface ResumeFailure {
	code: Extract<
		ErrorCode,
		| "sandbox_not_found"
		| "resume_forbidden"
		| "sandbox_transitioning"
		| "resume_rate_limited"
		| "resume_queue_full"
		| "control_plane_unavailable"
		| "control_plane_bad_answer"
		| "control_plane_auth_unavailable"
		| "resume_timeout"
		| "proxy_misconfigured"
	>;
	/** Replaces the registry's message where the contract says to pass one on. */
	message?: string;
	/** Replaces the registry's Retry-After where the catalog knows when to try again. */
	retryAfterSeconds?: number;
}
