// One OAuth2 client-credentials token request (RFC 6749 §4.4), judged: who
// the client is, how it authenticated (§2.3.1), and what it may have. Errors
// carry the §5.2 codes; the endpoint turns them into answers.

import { timingSafeEqual } from "node:crypto";

export interface OAuthClient {
	clientId: string;
	clientSecret: string;
	/** The token's org_id claim, which E2B's API compares with its cluster's auth org ID. */
	orgId: string;
	/** The scopes it may be granted; a request naming none gets them all. */
	scopes: string[];
}

export type OAuthErrorCode = "invalid_request" | "invalid_client" | "unsupported_grant_type" | "invalid_scope";

export type ClientAuthMethod = "client_secret_basic" | "client_secret_post" | "none";

export class OAuthError extends Error {
	readonly code: OAuthErrorCode;
	constructor(code: OAuthErrorCode, description: string) {
		super(description);
		this.name = "OAuthError";
		this.code = code;
	}
	/** §5.2: 401 for a client that failed to authenticate, 400 for the rest. */
	get status(): 400 | 401 {
		return this.code === "invalid_client" ? 401 : 400;
	}
}

export interface TokenGrant {
	client: OAuthClient;
	scopes: string[];
	audience?: string;
}

/** What was learned of a request, whether or not it was granted, for the endpoint's record. */
export interface JudgedRequest {
	authMethod: ClientAuthMethod;
	/** The client ID it claimed, authenticated or not. */
	clientId?: string;
	grantType?: string;
	grant?: TokenGrant;
	error?: OAuthError;
}

export interface TokenRequestInput {
	contentType: string | undefined;
	authorization: string | undefined;
	body: string;
}

function sameSecret(provided: string, expected: string): boolean {
	const a = Buffer.from(provided);
	const b = Buffer.from(expected);
	return a.length === b.length && timingSafeEqual(a, b);
}

/** §3.1: parameters without a value count as omitted, and none may come twice. */
function parseForm(body: string): Map<string, string> {
	const params = new Map<string, string>();
	for (const [name, value] of new URLSearchParams(body)) {
		if (params.has(name)) throw new OAuthError("invalid_request", `parameter "${name}" is included more than once`);
		if (value !== "") params.set(name, value);
	}
	return params;
}

/** §2.3.1: the ID and secret are form-urlencoded before they are joined and base64-encoded. */
function formDecode(text: string): string {
	try {
		return decodeURIComponent(text.replace(/\+/g, " "));
	} catch {
		throw new OAuthError("invalid_client", "malformed client credentials in the Authorization header");
	}
}

function basicCredentials(authorization: string): { id: string; secret: string } {
	const [scheme = "", encoded = ""] = authorization.trim().split(/\s+/, 2);
	if (scheme.toLowerCase() !== "basic") {
		throw new OAuthError("invalid_client", `unsupported client authentication scheme "${scheme}"`);
	}
	const decoded = Buffer.from(encoded, "base64").toString("utf8");
	const colon = decoded.indexOf(":");
	if (colon < 0) throw new OAuthError("invalid_client", "malformed client credentials in the Authorization header");
	return { id: formDecode(decoded.slice(0, colon)), secret: formDecode(decoded.slice(colon + 1)) };
}

function isFormType(contentType: string | undefined): boolean {
	return (contentType ?? "").split(";", 1)[0]?.trim().toLowerCase() === "application/x-www-form-urlencoded";
}

/** Judges a token request against the registered clients; what is wrong with it comes back as `error`. */
export function judgeTokenRequest(input: TokenRequestInput, clients: ReadonlyMap<string, OAuthClient>): JudgedRequest {
	const judged: JudgedRequest = { authMethod: "none" };
	try {
		if (!isFormType(input.contentType)) {
			throw new OAuthError("invalid_request", "the body must be application/x-www-form-urlencoded");
		}
		const params = parseForm(input.body);
		judged.grantType = params.get("grant_type");
		let id: string | undefined;
		let secret: string | undefined;
		if (input.authorization !== undefined) {
			judged.authMethod = "client_secret_basic";
			({ id, secret } = basicCredentials(input.authorization));
			judged.clientId = id;
			// §2.3: one authentication method per request.
			if (params.has("client_secret")) {
				throw new OAuthError("invalid_request", "the client authenticated both by HTTP Basic and in the body");
			}
			const bodyId = params.get("client_id");
			if (bodyId !== undefined && bodyId !== id) {
				throw new OAuthError("invalid_request", "client_id in the body differs from the Basic credentials");
			}
		} else if (params.has("client_id")) {
			id = params.get("client_id");
			secret = params.get("client_secret");
			judged.clientId = id;
			judged.authMethod = secret === undefined ? "none" : "client_secret_post";
		}
		if (id === undefined || secret === undefined) {
			throw new OAuthError("invalid_client", "client authentication is required (HTTP Basic or client_secret_post)");
		}
		const client = clients.get(id);
		if (client === undefined || !sameSecret(secret, client.clientSecret)) {
			throw new OAuthError("invalid_client", "client authentication failed");
		}
		if (judged.grantType === undefined) throw new OAuthError("invalid_request", "grant_type is required");
		if (judged.grantType !== "client_credentials") {
			throw new OAuthError("unsupported_grant_type", `grant_type "${judged.grantType}" is not supported`);
		}
		const requested = (params.get("scope") ?? "").split(" ").filter((scope) => scope !== "");
		const refused = requested.filter((scope) => !client.scopes.includes(scope));
		if (refused.length > 0) {
			throw new OAuthError("invalid_scope", `scope not allowed for this client: ${refused.join(" ")}`);
		}
		const audience = params.get("audience");
		judged.grant = {
			client,
			scopes: requested.length > 0 ? [...new Set(requested)] : [...client.scopes],
			...(audience === undefined ? {} : { audience }),
		};
	} catch (error) {
		if (!(error instanceof OAuthError)) throw error;
		judged.error = error;
	}
	return judged;
}
