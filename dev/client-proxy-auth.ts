// How the control plane knows a call comes from the edge. Either the shared
// secret in x-e2b-client-proxy-auth, checked before anything else, or, as
// E2B's API does now, an OAuth2 bearer token checked by oauth.RequireClaims,
// RequireScopeClaims and RequireOrgClaims once the sandbox's team is known.

import { timingSafeEqual } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Log } from "./model.ts";
import { discoverVerifier, type OidcVerifier } from "./oidc-verifier.ts";

/** E2B's proxygrpc.ScopeSandboxLifecycle. */
export const SANDBOX_LIFECYCLE_SCOPE = "sandboxes:lifecycle";

export type ControlPlaneAuth =
	| { mode: "api_secret" }
	| {
			mode: "oauth2";
			/** The token issuer; its OIDC discovery document and JWKS are fetched from it. */
			issuerUrl: string;
			/** The cluster's auth org ID: a token's org_id must equal it. Empty denies every call, as E2B's. */
			authOrgId: string;
	  };

export interface ClientProxyAuth {
	readonly mode: ControlPlaneAuth["mode"];
	/** api_secret: the secret must match (Unauthenticated otherwise). Nothing in oauth2 mode. */
	requireSecret(headers: Headers): void;
	/** oauth2: the bearer token, its scope and org (PermissionDenied otherwise). Nothing in api_secret mode. */
	requireToken(headers: Headers, signal: AbortSignal): Promise<void>;
}

export function sameSecret(provided: string | null, expected: string): boolean {
	if (provided === null) return false;
	const a = Buffer.from(provided);
	const b = Buffer.from(expected);
	return a.length === b.length && timingSafeEqual(a, b);
}

/** E2B answers every failure of the token, its scope or its org alike. */
function denied(): ConnectError {
	return new ConnectError("permission denied", Code.PermissionDenied);
}

/** oauth.bearerToken: the first value, "<scheme> <token>", the scheme Bearer in any case. */
function bearerToken(headers: Headers): string | undefined {
	const value = headers.get("authorization");
	if (value === null) return undefined;
	const space = value.indexOf(" ");
	if (space < 0) return undefined;
	const token = value.slice(space + 1).trim();
	return value.slice(0, space).toLowerCase() === "bearer" && token !== "" ? token : undefined;
}

export async function createClientProxyAuth(
	apiSecret: string,
	auth: ControlPlaneAuth,
	log: Log,
): Promise<ClientProxyAuth> {
	if (auth.mode === "api_secret") {
		if (apiSecret === "") throw new Error("apiSecret must not be empty");
		return {
			mode: "api_secret",
			requireSecret(headers) {
				if (!sameSecret(headers.get("x-e2b-client-proxy-auth"), apiSecret)) {
					throw new ConnectError("invalid client proxy auth", Code.Unauthenticated);
				}
			},
			requireToken: async () => {},
		};
	}
	// As E2B's API, which builds its verifier at start and does not start without it.
	let verifier: OidcVerifier;
	try {
		verifier = await discoverVerifier(auth.issuerUrl);
	} catch (error) {
		throw new Error(
			`the control plane's OAuth2 issuer ${auth.issuerUrl} cannot be used: ${error instanceof Error ? error.message : error}`,
		);
	}
	const expectedOrg = auth.authOrgId.trim();
	return {
		mode: "oauth2",
		requireSecret() {},
		async requireToken(headers, signal) {
			const token = bearerToken(headers);
			if (token === undefined) {
				log("client proxy auth: permission denied (no bearer token)");
				throw denied();
			}
			let claims: Awaited<ReturnType<OidcVerifier["verify"]>>;
			try {
				claims = await verifier.verify(token, signal);
			} catch (error) {
				log(`client proxy auth: permission denied (${error instanceof Error ? error.message : error})`);
				throw denied();
			}
			if (!claims.scopes.includes(SANDBOX_LIFECYCLE_SCOPE)) {
				log(`client proxy auth: permission denied (no ${SANDBOX_LIFECYCLE_SCOPE} scope for ${claims.subject})`);
				throw denied();
			}
			if (expectedOrg === "" || !sameSecret(claims.orgId, expectedOrg)) {
				log(`client proxy auth: permission denied (org "${claims.orgId}" of ${claims.subject} is not the cluster's)`);
				throw denied();
			}
		},
	};
}
