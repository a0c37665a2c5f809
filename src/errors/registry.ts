/**
 * Every error the proxy itself returns is defined here, once: its HTTP status,
 * its default message and, for transient failures, how long a client should
 * wait before trying again. The messages of control-plane outcomes are the
 * ones E2B's client-proxy uses, so E2B SDKs and users see familiar text.
 */
export const errorCodes = {
	invalid_host: { status: 400, message: "The host is not a valid sandbox host" },
	host_not_served: { status: 400, message: "This host is not served by the sandbox proxy" },
	invalid_port: { status: 400, message: "The sandbox port is invalid" },
	invalid_sandbox_id: { status: 400, message: "The sandbox ID is invalid" },
	missing_routing_headers: {
		status: 400,
		message: "The E2b-Sandbox-Id and E2b-Sandbox-Port headers are required on this host",
	},
	invalid_access_token: { status: 400, message: "An access token header is too long" },
	// The client stopped sending its body (short of its Content-Length, or mid-chunk).
	request_body_incomplete: { status: 400, message: "The request body ended before it was complete" },
	// E2B's Go proxy would forward it; a Worker's fetch() cannot send one.
	request_body_not_allowed: {
		status: 400,
		message: "A GET or HEAD request cannot carry a body through this edge; send the body with POST, or drop it",
	},
	// The client stopped sending its body for BODY_IDLE_TIMEOUT_MS.
	request_body_timeout: { status: 408, message: "The request body stopped arriving" },
	sandbox_not_found: { status: 502, message: "The sandbox was not found" },
	resume_forbidden: {
		status: 403,
		message: "This sandbox can't be resumed with the credentials provided. Check your access token and try again.",
	},
	sandbox_transitioning: {
		status: 409,
		message: "The sandbox is still transitioning. Try again in a moment.",
		retryAfterSeconds: 2,
	},
	// The control plane's ResourceExhausted, or one of the edge's own resume
	// budgets (per client, per sandbox and caller, per sandbox at once).
	resume_rate_limited: { status: 429, message: "Too many resume requests", retryAfterSeconds: 10 },
	// LOOKUP_LIMIT_PER_CLIENT: lookups past every cache, before an object is addressed.
	lookup_rate_limited: {
		status: 429,
		message: "Too many requests for sandboxes the edge has not seen lately from this client",
		retryAfterSeconds: 10,
	},
	// Past RESUME_MAX_WAITERS requests waiting on one sandbox's resume.
	resume_queue_full: {
		status: 503,
		message: "Too many requests are waiting for this sandbox to resume",
		retryAfterSeconds: 1,
	},
	control_plane_unavailable: {
		status: 503,
		message: "The sandbox service is temporarily unavailable",
		retryAfterSeconds: 5,
	},
	// A well-formed answer whose node address is not an IP: as broken as a
	// garbage body, and so, like one, a temporary unavailability.
	control_plane_bad_answer: {
		status: 503,
		message: "The sandbox service returned an invalid node address",
		retryAfterSeconds: 5,
	},
	// CONTROL_PLANE_AUTH=oauth2: the token endpoint is down, slow or answered
	// garbage, so no call to the control plane could be authenticated.
	control_plane_auth_unavailable: {
		status: 503,
		message: "The sandbox service cannot be reached right now: the edge could not authenticate to it",
		retryAfterSeconds: 5,
	},
	resume_timeout: {
		status: 504,
		message: "Timed out waiting for the sandbox to resume",
		retryAfterSeconds: 2,
	},
	node_unreachable: { status: 502, message: "The sandbox's node could not be reached" },
	// The route went stale while a streamed body was being sent; the sandbox
	// has been woken again, and only the client can send the body a second time.
	request_not_replayable: {
		status: 503,
		message:
			"The sandbox was woken while this request was in flight and its body could not be sent twice. Send the request again.",
		retryAfterSeconds: 1,
	},
	catalog_unavailable: {
		status: 503,
		message: "The sandbox route catalog is temporarily unavailable",
		retryAfterSeconds: 1,
	},
	proxy_misconfigured: {
		status: 503,
		message: "The sandbox proxy is misconfigured",
		retryAfterSeconds: 60,
	},
	internal_error: { status: 500, message: "The sandbox proxy failed unexpectedly" },
	// Development only: NODE_RESOLVE_OVERRIDE needs Cloudflare's edge (or the
	// tests' model of it) between the Worker and the nodes.
	forwarding_loop: {
		status: 508,
		message:
			"The edge received its own request to a node: NODE_RESOLVE_OVERRIDE needs Cloudflare's edge in front of the nodes. Locally, use NODE_ORIGIN_TEMPLATE instead",
	},

	// The catalog API on edge.<domain>, which the control plane calls.
	invalid_request: { status: 400, message: "The request is invalid" },
	catalog_unauthenticated: {
		status: 401,
		message: "The catalog API needs an Authorization header with the bearer token CATALOG_SECRET",
	},
	catalog_forbidden: { status: 403, message: "The catalog API token is not valid" },
	not_found: { status: 404, message: "Nothing is served at this path" },
	route_not_found: { status: 404, message: "The catalog holds no route for this sandbox" },
	method_not_allowed: { status: 405, message: "This method is not allowed on this path" },
} as const satisfies Record<string, ErrorDefinition>;

export interface ErrorDefinition {
	status: 400 | 401 | 403 | 404 | 405 | 408 | 409 | 429 | 500 | 502 | 503 | 504 | 508;
	message: string;
	retryAfterSeconds?: number;
}

export type ErrorCode = keyof typeof errorCodes;
