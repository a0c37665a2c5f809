import { Code } from "@connectrpc/connect";
import type { Config } from "../config.ts";
import { deniedTokenMinAgeMs, type Rejection, type TokenAnswer } from "./token-object.ts";
import type { IssuedToken } from "./token-request.ts";

/** The metadata that authenticates one call of the edge to the control plane. */
export type EdgeCredential = { ok: true; headers: Record<string, string>; token?: IssuedToken } | { ok: false };

/** How the edge authenticates its calls to the control plane; see ControlPlaneAuth. */
export interface EdgeAuth {
	credential(): Promise<EdgeCredential>;
	/**
	 * The control plane refused `used` with `code`: a different credential to
	 * retry with once, `{ ok: false }` if one is needed but none can be had,
	 * or undefined when the refusal stands as the answer.
	 */
	afterRejection(used: EdgeCredential, code: Code): Promise<EdgeCredential | undefined>;
}

/** The one object that holds the token, and where it lives. */
const tokenObjectName = "control-plane-token";

// A settled copy of the token object's answer, for this isolate's catalog
// objects: the object is asked once per isolate per token, not per call.
let held: IssuedToken | undefined;

export function edgeAuth(env: Env, config: Pick<Config, "controlPlaneAuth" | "catalogLocationHint">): EdgeAuth {
	const auth = config.controlPlaneAuth;
	if (auth.mode === "api_secret") {
		const credential: EdgeCredential = { ok: true, headers: { "x-e2b-client-proxy-auth": auth.apiSecret } };
		return { credential: async () => credential, afterRejection: async () => undefined };
	}
	const hint = config.catalogLocationHint;
	const tokenObject = () =>
		env.CONTROL_PLANE_TOKEN.getByName(tokenObjectName, hint === undefined ? undefined : { locationHint: hint });
	return {
		async credential() {
			if (held !== undefined && Date.now() < held.refreshAt) return bearer(held);
			return fromAnswer(await askSafely(() => tokenObject().token() as Promise<TokenAnswer>));
		},
		async afterRejection(used, code) {
			const rejection = rejectionOf(code);
			const token = used.ok ? used.token : undefined;
			if (rejection === undefined || token === undefined) return undefined;
			// Most PermissionDenied answers are a caller's wrong access token:
			// a token this young is not suspected, and the object is not asked.
			if (rejection === "permission_denied" && Date.now() - token.obtainedAt < deniedTokenMinAgeMs) return undefined;
			if (rejection === "unauthenticated" && held?.accessToken === token.accessToken) held = undefined;
			const answer = await askSafely(
				() => tokenObject().rejected(token.accessToken, rejection) as Promise<TokenAnswer | null>,
			);
			return answer === null ? undefined : fromAnswer(answer);
		},
	};
}

function rejectionOf(code: Code): Rejection | undefined {
	if (code === Code.Unauthenticated) return "unauthenticated";
	if (code === Code.PermissionDenied) return "permission_denied";
	return undefined;
}

/** A failure of the token object itself is a failure to authenticate, not an exception. */
async function askSafely<T extends TokenAnswer | null>(ask: () => Promise<T>): Promise<T | TokenAnswer> {
	try {
		return await ask();
	} catch {
		return { ok: false, retryAt: Date.now() + 1_000 };
	}
}

function fromAnswer(answer: TokenAnswer): EdgeCredential {
	if (!answer.ok) return { ok: false };
	// Answers can land out of order: an older token never replaces a newer one.
	if (held === undefined || answer.token.obtainedAt >= held.obtainedAt) held = answer.token;
	return bearer(answer.token);
}

function bearer(token: IssuedToken): EdgeCredential {
	return { ok: true, headers: { authorization: `Bearer ${token.accessToken}` }, token };
}
