/**
 * The configuration as the rest of the Worker sees it, parsed from the
 * settings (settings.ts) by parse.ts.
 */
import type { settings } from "./settings.ts";

export type ControlPlaneProtocol = (typeof settings.CONTROL_PLANE_PROTOCOL.values)[number];
export type ServerTiming = (typeof settings.SERVER_TIMING.values)[number];
export type Environment = (typeof settings.ENVIRONMENT.values)[number];

/**
 * How the edge proves itself to the control plane: the shared secret of the
 * original E2B edge (`x-e2b-client-proxy-auth`), or an OAuth2
 * client-credentials token (`authorization: Bearer`), as E2B's current API
 * verifies it (scope and organisation claims).
 */
export type ControlPlaneAuth =
	| { mode: "api_secret"; apiSecret: string }
	| {
			mode: "oauth2";
			tokenUrl: string;
			clientId: string;
			clientSecret: string;
			/** Space-separated scopes asked for. */
			scope: string;
			audience: string | undefined;
			/** How long a token request may take. */
			tokenTimeoutMs: number;
	  };

export interface Config {
	/** Base domains served, lowercase, without a leading dot. */
	sandboxDomains: readonly string[];
	controlPlaneUrl: string;
	controlPlaneProtocol: ControlPlaneProtocol;
	controlPlaneAuth: ControlPlaneAuth;
	/** The catalog API's bearer token; without it the API is off. */
	catalogSecret: string | undefined;
	/**
	 * What is wrong with CATALOG_SECRET, if anything. Kept apart so that a
	 * bad one turns only the catalog API away, not every sandbox's traffic.
	 */
	catalogSecretError: ConfigError | undefined;
	nodeOriginTemplate: string;
	/**
	 * Host-preserving forwarding: the node's hostname in the Worker's zone
	 * (`{ip}`/`{ip_dashed}` filled in), given as `cf.resolveOverride` while
	 * the request keeps the client's host. Undefined: NODE_ORIGIN_TEMPLATE.
	 */
	nodeResolveOverride: string | undefined;
	/** Whether a node's X-E2b-Sandbox-Not-Found header means "not here"; E2B's nodes never send it. */
	trustNotHereHeader: boolean;
	resumeTimeoutMs: number;
	routeTtlMs: number;
	routeCacheTtlMs: number;
	routeCacheMaxEntries: number;
	/** How long a location's cache keeps a route; below 1 s, the tier is off. */
	locationCacheTtlMs: number;
	/** Where new catalog objects are placed; undefined lets each live where its first caller was. */
	catalogLocationHint: DurableObjectLocationHint | undefined;
	/** How long a sandbox's object remembers that the control plane does not know it. */
	notFoundCacheMs: number;
	/** How long a sandbox's object remembers a refusal, for the credentials refused. */
	refusalCacheMs: number;
	/** The longest a sandbox's object waits before asking a failing control plane again. */
	resumeBackoffMaxMs: number;
	/** Bound on the requests waiting on one sandbox's resume. */
	resumeMaxWaiters: number;
	/** Bound on the isolate's cache of failures. */
	negativeCacheMaxEntries: number;
	/** How long after this edge woke a sandbox its port-closed answers are retried. */
	portRetryWindowMs: number;
	portRetryAttempts: number;
	/** The first retry's delay; each later one doubles, up to a second. */
	portRetryDelayMs: number;
	/** How long a request body may go without sending a byte before it is given up. */
	bodyIdleTimeoutMs: number;
	/** The least time between two KeepAliveSandbox calls for one sandbox, across the whole edge. */
	trafficKeepaliveIntervalMs: number;
	/**
	 * Which responses carry a Server-Timing header with the request's phases:
	 * all; those whose route was not in the isolate's cache ("cold": wakes,
	 * lookups, errors); or none.
	 */
	serverTiming: ServerTiming;
	/** The share of routine requests (isolate's cache, no wake, no error) that get a log line: see request-log.ts. */
	requestLogSampleRate: number;
	/** How long a browser navigation waits for a wake before it gets the waiting page; 0: never. */
	waitingPageAfterMs: number;
	environment: Environment;
}

export class ConfigError extends Error {
	readonly setting: string;
	constructor(setting: string, problem: string) {
		super(`Invalid configuration: ${setting} ${problem}`);
		this.name = "ConfigError";
		this.setting = setting;
	}
}
