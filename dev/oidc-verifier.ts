// Verifies the edge's bearer tokens as E2B's API does (packages/api/internal/
// oauth: go-oidc's provider and IDTokenVerifier with SkipClientIDCheck). The
// steps and their order are go-oidc's: discovery once, at start; per token,
// the issuer, the expiry, nbf, the algorithm, then the signature against a
// JWKS fetched on first use and fetched again whenever the cached keys do not
// verify a token (which covers an unknown kid); then E2B's claims.

import { decodeJwt, verifiesWith } from "./jwt.ts";

export interface VerifiedClaims {
	subject: string;
	orgId: string;
	scopes: string[];
}

/** Why a token was refused; the RPC answer never says, the log does. */
export class TokenRejected extends Error {
	constructor(message: string) {
		super(message);
		this.name = "TokenRejected";
	}
}

export interface OidcVerifier {
	readonly issuer: string;
	/** Resolves with the claims E2B reads, or rejects with TokenRejected. */
	verify(rawToken: string, signal?: AbortSignal): Promise<VerifiedClaims>;
}

interface Jwk {
	kid?: string;
	kty?: string;
	[name: string]: unknown;
}

const FETCH_TIMEOUT_MS = 10_000;
// go-oidc's leeway for nbf only; exp has none.
const NBF_LEEWAY_SECONDS = 300;

async function getJson(url: string, what: string, signal?: AbortSignal): Promise<unknown> {
	const timeout = AbortSignal.timeout(FETCH_TIMEOUT_MS);
	let res: Response;
	try {
		res = await fetch(url, {
			redirect: "manual",
			signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]),
		});
	} catch (error) {
		throw new TokenRejected(`${what}: cannot fetch ${url}: ${error instanceof Error ? error.message : error}`);
	}
	const text = await res.text().catch(() => "");
	if (res.status !== 200) throw new TokenRejected(`${what}: ${url} answered ${res.status}`);
	try {
		return JSON.parse(text);
	} catch {
		throw new TokenRejected(`${what}: ${url} did not answer JSON`);
	}
}

function isRecord(value: unknown): value is Record<string, unknown> {
	return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** go-oidc's jsonTime: a number of seconds; absent is the zero time. */
function seconds(claims: Record<string, unknown>, name: string): number | undefined {
	const value = claims[name];
	if (value === undefined || value === null) return undefined;
	if (typeof value !== "number") throw new TokenRejected(`claim ${name} is not a number`);
	return value;
}

function optionalString(claims: Record<string, unknown>, name: string): string {
	const value = claims[name];
	if (value === undefined || value === null) return "";
	if (typeof value !== "string") throw new TokenRejected(`claim ${name} is not a string`);
	return value;
}

/** OIDC discovery for `issuerUrl`, as oidc.NewProvider: fails unless the document names the same issuer. */
export async function discoverVerifier(issuerUrl: string): Promise<OidcVerifier> {
	const issuer = issuerUrl.trim();
	const wellKnown = `${issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`;
	const doc = await getJson(wellKnown, "OIDC discovery");
	if (!isRecord(doc)) throw new TokenRejected(`OIDC discovery: ${wellKnown} is not a JSON object`);
	if (doc.issuer !== issuer) {
		throw new TokenRejected(`OIDC discovery: issuer did not match: expected ${issuer}, got ${String(doc.issuer)}`);
	}
	if (typeof doc.jwks_uri !== "string") throw new TokenRejected("OIDC discovery: no jwks_uri");
	const jwksUri = doc.jwks_uri;
	const advertised = Array.isArray(doc.id_token_signing_alg_values_supported)
		? doc.id_token_signing_alg_values_supported
		: [];
	// This verifier implements RS256 only, go-oidc's default.
	const algorithms = advertised.length === 0 || advertised.includes("RS256") ? ["RS256"] : [];

	let cached: Jwk[] = [];
	let refreshing: Promise<Jwk[]> | undefined;

	function refresh(signal?: AbortSignal): Promise<Jwk[]> {
		// Concurrent verifications share one fetch, as go-oidc's RemoteKeySet does.
		refreshing ??= (async () => {
			try {
				const set = await getJson(jwksUri, "JWKS", signal);
				if (!isRecord(set) || !Array.isArray(set.keys)) throw new TokenRejected(`JWKS: ${jwksUri} has no keys`);
				cached = set.keys.filter(isRecord) as Jwk[];
				return cached;
			} finally {
				refreshing = undefined;
			}
		})();
		return refreshing;
	}

	return {
		issuer,
		async verify(rawToken, signal) {
			const jwt = decodeJwt(rawToken);
			if (jwt === undefined) throw new TokenRejected("malformed JWT");
			const { claims } = jwt;
			if (optionalString(claims, "iss") !== issuer) {
				throw new TokenRejected(`issuer ${String(claims.iss)} is not ${issuer}`);
			}
			const now = Date.now() / 1000;
			const exp = seconds(claims, "exp") ?? Number.NEGATIVE_INFINITY;
			if (exp < now) throw new TokenRejected("token expired");
			const nbf = seconds(claims, "nbf");
			if (nbf !== undefined && now + NBF_LEEWAY_SECONDS < nbf) throw new TokenRejected("token not valid yet");
			const alg = jwt.header.alg;
			if (typeof alg !== "string" || !algorithms.includes(alg)) {
				throw new TokenRejected(`token signed with unsupported algorithm ${String(alg)}`);
			}
			const kid = typeof jwt.header.kid === "string" ? jwt.header.kid : "";
			const verifies = (keys: Jwk[]) =>
				keys.some((key) => (kid === "" || key.kid === kid) && key.kty === "RSA" && verifiesWith(jwt, key));
			if (!verifies(cached) && !verifies(await refresh(signal))) {
				throw new TokenRejected("failed to verify the token's signature");
			}
			const subject = optionalString(claims, "sub");
			const orgId = optionalString(claims, "org_id");
			const scopes = optionalString(claims, "scope")
				.split(/\s+/)
				.filter((scope) => scope !== "");
			return { subject, orgId, scopes };
		},
	};
}
