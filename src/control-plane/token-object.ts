import { DurableObject } from "cloudflare:workers";
import { configFrom } from "../config.ts";
import { logEvent } from "../log.ts";
import { type IssuedToken, type OAuth2Settings, requestToken } from "./token-request.ts";

/** What the token object answers: a token to use, or when asking is worth it again. */
export type TokenAnswer = { ok: true; token: IssuedToken } | { ok: false; retryAt: number };

/** Why the control plane refused a token: Connect's Unauthenticated, or PermissionDenied. */
export type Rejection = "unauthenticated" | "permission_denied";

// E2B's API answers PermissionDenied both for a token it cannot verify and for
// a caller's wrong access token; only a token this old is suspected then, so
// a stranger's refused requests cannot make us ask for tokens at will.
const deniedTokenMinAgeMs = 30_000;
// A token endpoint that failed is asked again after this, doubling.
const firstBackoffMs = 1_000;
const maxBackoffMs = 30_000;

/**
 * The edge's one OAuth2 client-credentials token (CONTROL_PLANE_AUTH=oauth2),
 * kept in a single Durable Object so that one request to the token endpoint
 * serves every catalog object that needs a token: their calls meet here, in
 * one object, where sharing the refresh in flight is safe. The token lives in
 * memory only; an evicted object asks again.
 */
export class ControlPlaneToken extends DurableObject<Env> {
	#token: IssuedToken | undefined;
	#refreshing: Promise<TokenAnswer> | undefined;
	#failure: { retryAt: number; backoffMs: number } | undefined;

	/** The current token, asked for if there is none fit to use. */
	async token(): Promise<TokenAnswer> {
		const now = Date.now();
		if (this.#token !== undefined && now < this.#token.refreshAt) return { ok: true, token: this.#token };
		return this.#refresh(now);
	}

	/**
	 * The control plane refused `accessToken`. If it is still the current one
	 * and the refusal can be the token's fault, it is replaced (once, however
	 * many callers report it); the answer is the token to retry with, or null
	 * when a retry would carry the same one.
	 */
	async rejected(accessToken: string, rejection: Rejection): Promise<TokenAnswer | null> {
		const now = Date.now();
		const current = this.#token;
		if (current !== undefined && current.accessToken !== accessToken) return { ok: true, token: current };
		if (this.#refreshing !== undefined) return this.#refreshing;
		if (current !== undefined) {
			if (rejection === "permission_denied" && now - current.obtainedAt < deniedTokenMinAgeMs) return null;
			this.#token = undefined;
		}
		const answer = await this.#refresh(now);
		return answer.ok && answer.token.accessToken === accessToken ? null : answer;
	}

	#refresh(now: number): Promise<TokenAnswer> {
		if (this.#refreshing !== undefined) return this.#refreshing;
		if (this.#failure !== undefined && now < this.#failure.retryAt) {
			return Promise.resolve({ ok: false, retryAt: this.#failure.retryAt });
		}
		this.#refreshing = this.#fetch().finally(() => {
			this.#refreshing = undefined;
		});
		return this.#refreshing;
	}

	async #fetch(): Promise<TokenAnswer> {
		const settings = oauth2Settings(this.env);
		if (settings === undefined) return { ok: false, retryAt: Date.now() + maxBackoffMs };
		const startedAt = Date.now();
		const outcome = await requestToken(settings);
		const now = Date.now();
		logEvent("control_plane_token", {
			outcome: outcome.ok ? "ok" : "failed",
			reason: outcome.ok ? undefined : outcome.reason,
			durationMs: now - startedAt,
		});
		if (outcome.ok) {
			this.#token = outcome.token;
			this.#failure = undefined;
			return { ok: true, token: outcome.token };
		}
		const backoffMs = Math.min(maxBackoffMs, (this.#failure?.backoffMs ?? firstBackoffMs / 2) * 2);
		this.#failure = { retryAt: now + backoffMs, backoffMs };
		return { ok: false, retryAt: this.#failure.retryAt };
	}
}

function oauth2Settings(env: Env): OAuth2Settings | undefined {
	try {
		const auth = configFrom(env).controlPlaneAuth;
		return auth.mode === "oauth2" ? auth : undefined;
	} catch {
		return undefined;
	}
}
