import type { ResumeFailure } from "../resume-types.ts";

/** Where a sandbox runs, as the Worker needs to know it to forward a request. */
export interface Route {
	/** The orchestrator IP the control plane gave. */
	nodeIp: string;
	/** Epoch milliseconds when the catalog learned the route. */
	learnedAt: number;
	/** Epoch milliseconds after which the route must be looked up again. */
	expiresAt: number;
	/** Epoch milliseconds when this edge's resume gave the route: its apps may still be starting. */
	resumedAt?: number;
	/** Its catalog entry asks for traffic keepalive (and names the team): traffic is reported to the object. */
	keepalive?: true;
}

/** Whether two routes are the same learning of the sandbox's place, not merely the same node. */
export function sameRoute(a: Route, b: Route): boolean {
	return a.learnedAt === b.learnedAt && a.nodeIp === b.nodeIp;
}

/**
 * How the catalog learned a route: pushed by the control plane through the
 * catalog API (with the execution it belongs to), or learned from a
 * ResumeSandbox answer (which names no execution).
 */
export type RouteSource = "push" | "resume";

/** The optional fields of E2B's SandboxInfo that a push may carry, kept for operators. */
export interface RouteDetails {
	orchestratorId?: string;
	sandboxStartedAt?: string;
	sandboxEndTime?: string;
	sandboxMaxLengthInHours?: number;
	teamId?: string;
	trafficKeepalive?: boolean;
}

/** A route as the catalog object stores it. */
export interface CatalogEntry extends Route {
	source: RouteSource;
	/** Present for a pushed route only. */
	executionId?: string;
	details: RouteDetails;
}

/** A route the control plane pushes: it replaces whatever the catalog holds. */
export interface PushedRoute {
	nodeIp: string;
	executionId: string;
	ttlSeconds: number;
	details: RouteDetails;
}

/** One write to a sandbox's catalog, applied in order with the others of its batch. */
export type CatalogWrite = { op: "put"; route: PushedRoute } | { op: "delete"; executionId: string };

/** How the object had the route: stored, from a resume's answer, or pushed while the request waited. */
export type RouteVia = "object" | "resume" | "push";

/** What a catalog lookup tells the Worker: a route, or why there is none. */
export type LookupResult =
	| {
			ok: true;
			route: Route;
			via?: RouteVia;
			/** Whether this request's call woke the sandbox, or it waited for a wake another started. */
			wake?: "resumed" | "joined";
			/** How long the ResumeSandbox call took, when one gave the route. */
			rpcMs?: number;
			/** How long this lookup waited in the object for a resume or a push. */
			waitedMs?: number;
	  }
	/**
	 * `remembered`: how the object will answer every caller until then, so
	 * that the Worker may answer so too without asking it.
	 */
	| { ok: false; error: ResumeFailure; remembered?: { error: ResumeFailure; until: number } };
