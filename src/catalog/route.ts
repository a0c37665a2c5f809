import type { ErrorCode } from "../errors/registry.ts";

/** Where a sandbox runs, as the catalog knows it. */
export interface Route {
	/** The orchestrator IP the control plane returned. */
	nodeIp: string;
	/** Epoch milliseconds when the route was learned from the control plane. */
	learnedAt: number;
	/** Epoch milliseconds after which the route must be looked up again. */
	expiresAt: number;
}

/** Whether two routes are the same learning of the sandbox's place, not merely the same node. */
export function sameRoute(a: Route, b: Route): boolean {
	return a.learnedAt === b.learnedAt && a.nodeIp === b.nodeIp;
}

/** What a catalog lookup tells the Worker: a route, or why there is none. */
export type LookupResult = { ok: true; route: Route } | { ok: false; error: LookupFailure };

export interface LookupFailure {
	code: Extract<
		ErrorCode,
		| "sandbox_not_found"
		| "resume_forbidden"
		| "sandbox_transitioning"
		| "resume_rate_limited"
		| "control_plane_unavailable"
		| "control_plane_bad_answer"
		| "resume_timeout"
		| "proxy_misconfigured"
	>;
	/** Replaces the registry's message where the contract says to pass one on. */
	message?: string;
}

/** The caller credentials the control plane checks before resuming. */
export interface ResumeCredentials {
	port: number;
	trafficAccessToken?: string;
	envdAccessToken?: string;
}
