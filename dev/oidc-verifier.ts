// Verifies the edge's bearer tokens as E2B's API does (packages/api/internal/
// oauth: go-oidc's provider and IDTokenVerifier with SkipClientIDCheck). The
// steps and their order are go-oidc's: discovery once, at start; per token,
// the issuer, the expiry, nbf, the algorithm, then the signature against a
// JWKS fetched on first use and fetched again whenever the cached keys do not
// verify a token (which covers an unknown kid); then E2B's claims. jose
// decodes the token and checks its signature; the claim checks before that
// are go-oidc's own (jose's jwtVerify makes them after the signature, and
// gives exp the same leeway as nbf).

import {
	type CompactVerifyGetKey,
	compactVerify,
	createLocalJWKSet,
	decodeJwt,
	decodeProtectedHeader,
	errors,
	type JWK,
} from "jose";

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

/**
 * Whether the key `getKey` gives signed `token`. A token that is no JWS
 * throws jose's JWSInvalid; no key for its kid, a signature that does not
 * verify and a key that cannot be used are all false.
 */
async function signedBy(token: string, getKey: CompactVerifyGetKey): Promise<boolean> {
	try {
		await compactVerify(token, getKey);
		return true;
	} catch (error) {
		if (error instanceof errors.JWSInvalid) throw error;
		if (error instanceof errors.JWKSMultipleMatchingKeys) {
			// A token without a kid: go-oidc tries every key.
			for await (const key of error) if (await signedBy(token, async () => key)) return true;
		}
		return false;
	}
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

	type KeySet = ReturnType<typeof createLocalJWKSet>;
	let cached: KeySet | undefined;
	let refreshing: Promise<KeySet> | undefined;

	function refresh(signal?: AbortSignal): Promise<KeySet> {
		// Concurrent verifications share one fetch, as go-oidc's RemoteKeySet does.
		refreshing ??= (async () => {
			try {
				const set = await getJson(jwksUri, "JWKS", signal);
				if (!isRecord(set) || !Array.isArray(set.keys)) throw new TokenRejected(`JWKS: ${jwksUri} has no keys`);
				cached = createLocalJWKSet({ keys: set.keys.filter(isRecord) as JWK[] });
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
			let claims: Record<string, unknown>;
			let header: Record<string, unknown>;
			try {
				claims = decodeJwt(rawToken);
				header = decodeProtectedHeader(rawToken);
			} catch {
				throw new TokenRejected("malformed JWT");
			}
			if (optionalString(claims, "iss") !== issuer) {
				throw new TokenRejected(`issuer ${String(claims.iss)} is not ${issuer}`);
			}
			const now = Date.now() / 1000;
			const exp = seconds(claims, "exp") ?? Number.NEGATIVE_INFINITY;
			if (exp < now) throw new TokenRejected("token expired");
			const nbf = seconds(claims, "nbf");
			if (nbf !== undefined && now + NBF_LEEWAY_SECONDS < nbf) throw new TokenRejected("token not valid yet");
			const alg = header.alg;
			if (typeof alg !== "string" || !algorithms.includes(alg)) {
				throw new TokenRejected(`token signed with unsupported algorithm ${String(alg)}`);
			}
			// go-oidc takes an empty kid for none.
			const kid = typeof header.kid === "string" && header.kid !== "" ? header.kid : undefined;
			const signedWith = async (keys: KeySet | undefined) =>
				keys !== undefined && (await signedBy(rawToken, (protectedHeader) => keys({ ...protectedHeader, kid })));
			let verified: boolean;
			try {
				verified = (await signedWith(cached)) || (await signedWith(await refresh(signal)));
			} catch (error) {
				if (error instanceof errors.JWSInvalid) throw new TokenRejected("malformed JWT");
				throw error;
			}
			if (!verified) throw new TokenRejected("failed to verify the token's signature");
			const subject = optionalString(claims, "sub");
			const orgId = optionalString(claims, "org_id");
			const scopes = optionalString(claims, "scope")
				.split(/\s+/)
				.filter((scope) => scope !== "");
			return { subject, orgId, scopes };
		},
	};
}
