import { Code } from "@connectrpc/connect";
import type { Config } from "../config.ts";
import type { Rejection, TokenAnswer } from "./token-object.ts";
import type { IssuedToken } from "./token-request.ts";

/** The metadata that authenticates one call of the edge to the control plane. */
export type EdgeCredential = { ok: true; headers: Record<string, string>; accessToken?: string } | { ok: false };

/** How the edge authenticates its calls to the control plane; see ControlPlaneAuth. */
export interface EdgeAuth {
	credential(): Promise<EdgeCredential>;
	/**
	 * The control plane refused `used` with `code`: a different credential to
	 * retry with once, or none (the refusal stands as the answer).
	 */
	afterRejection(used: EdgeCredential, code: Code): Promise<EdgeCredential | undefined>;
}

/** The one object that holds the token, and where it lives. */
const tokenObjectName = "control-plane-token";

// A settled copy of the token object's answer, for this isolate's catalog
// objects: the object is asked once per isolate per token, not per call.
let held: IssuedToken | undefined;

export function edgeAuth(env: Env, config: Config): EdgeAuth {
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
			if (rejection === undefined || !used.ok || used.accessToken === undefined) return undefined;
			if (held?.accessToken === used.accessToken) held = undefined;
			const answer = await askSafely(
				() => tokenObject().rejected(used.accessToken as string, rejection) as Promise<TokenAnswer | null>,
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
	held = answer.token;
	return bearer(answer.token);
}

function bearer(token: IssuedToken): EdgeCredential {
	return { ok: true, headers: { authorization: `Bearer ${token.accessToken}` }, accessToken: token.accessToken };
}
