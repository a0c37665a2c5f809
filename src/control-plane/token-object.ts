import { DurableObject } from "cloudflare:workers";
import { configFrom } from "../config.ts";
import { logEvent } from "../log.ts";
import { type BackoffPolicy, backoffCeiling } from "../rules/backoff.ts";
import { type IssuedToken, type OAuth2Settings, requestToken } from "./token-request.ts";

/** What the token object answers: a token to use, or when asking is worth it again. */
export type TokenAnswer = { ok: true; token: IssuedToken } | { ok: false; retryAt: number };

/** Why the control plane refused a token: Connect's Unauthenticated, or PermissionDenied. */
export type Rejection = "unauthenticated" | "permission_denied";

// E2B's API answers PermissionDenied both for a token it cannot verify and
// for a caller's wrong access token, which strangers send all day. So such
// an answer replaces only a token this old, and at most this often: a flood
// of refused requests cannot make us ask the token endpoint at will.
export const deniedTokenMinAgeMs = 30_000;
const deniedRefreshIntervalMs = 5 * 60_000;
// A token endpoint that failed is asked again after 1 s, doubling per
// failure up to 30 s. Not jittered: there is one token object.
const tokenBackoff: BackoffPolicy = { baseMs: 1_000, capMs: 30_000 };
/** The token's key in the object's storage. */
const tokenKey = "token";

/**
 * The edge's one OAuth2 client-credentials token (CONTROL_PLANE_AUTH=oauth2),
 * kept in a single Durable Object so that one request to the token endpoint
 * serves every catalog object that needs a token: their calls meet here, in
 * one object, where sharing the refresh in flight is safe. The token is also
 * stored (in this object's own storage, which nothing else reads), because
 * isolates keep copies and leave the object idle long enough to be evicted:
 * without it, each eviction would cost a token request.
 */
export class ControlPlaneToken extends DurableObject<Env> {
	#token: IssuedToken | undefined;
	#refreshing: Promise<TokenAnswer> | undefined;
	#failure: { retryAt: number; failures: number } | undefined;
	#lastDeniedRefreshAt = 0;

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		const stored = ctx.storage.kv.get<StoredToken>(tokenKey);
		// A token got with other settings (a new client, scope or endpoint) is not used.
		const settings = oauth2Settings(env);
		if (stored !== undefined && settings !== undefined && stored.settings === fingerprint(settings)) {
			this.#token = stored.token;
		}
	}

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
		if (current !== undefined && current.accessToken !== accessToken) {
			return now < current.expiresAt ? { ok: true, token: current } : null;
		}
		if (this.#refreshing !== undefined) return this.#different(await this.#refreshing, accessToken);
		if (rejection === "permission_denied") {
			const young = current !== undefined && now - current.obtainedAt < deniedTokenMinAgeMs;
			if (young || now - this.#lastDeniedRefreshAt < deniedRefreshIntervalMs) return null;
			this.#lastDeniedRefreshAt = now;
		}
		// Unauthenticated says the token itself is bad: it is not served again.
		if (rejection === "unauthenticated") this.#drop();
		return this.#different(await this.#refresh(now, true), accessToken);
	}

	#different(answer: TokenAnswer, rejected: string): TokenAnswer | null {
		return answer.ok && answer.token.accessToken === rejected ? null : answer;
	}

	#refresh(now: number, replacing = false): Promise<TokenAnswer> {
		if (this.#refreshing !== undefined) return this.#refreshing;
		if (this.#failure !== undefined && now < this.#failure.retryAt) {
			return Promise.resolve(this.#stillValid(now, replacing) ?? { ok: false, retryAt: this.#failure.retryAt });
		}
		this.#refreshing = this.#fetch(replacing).finally(() => {
			this.#refreshing = undefined;
		});
		return this.#refreshing;
	}

	/** The token in hand while it has not expired, for when no new one can be had; not one being replaced. */
	#stillValid(now: number, replacing: boolean): TokenAnswer | undefined {
		const token = this.#token;
		return !replacing && token !== undefined && now < token.expiresAt ? { ok: true, token } : undefined;
	}

	async #fetch(replacing: boolean): Promise<TokenAnswer> {
		const settings = oauth2Settings(this.env);
		if (settings === undefined) return { ok: false, retryAt: Date.now() + tokenBackoff.capMs };
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
			this.ctx.storage.kv.put(tokenKey, {
				token: outcome.token,
				settings: fingerprint(settings),
			} satisfies StoredToken);
			this.#failure = undefined;
			return { ok: true, token: outcome.token };
		}
		const failures = (this.#failure?.failures ?? 0) + 1;
		this.#failure = { retryAt: now + backoffCeiling(failures, tokenBackoff), failures };
		return this.#stillValid(now, replacing) ?? { ok: false, retryAt: this.#failure.retryAt };
	}

	#drop(): void {
		this.#token = undefined;
		this.ctx.storage.kv.delete(tokenKey);
	}
}

interface StoredToken {
	token: IssuedToken;
	/** The settings it was got with; see fingerprint. */
	settings: string;
}

/** The settings a token depends on; the client secret is left out, so that it is never stored. */
function fingerprint(settings: OAuth2Settings): string {
	return JSON.stringify([settings.tokenUrl, settings.clientId, settings.scope, settings.audience ?? null]);
}

function oauth2Settings(env: Env): OAuth2Settings | undefined {
	try {
		const auth = configFrom(env).controlPlaneAuth;
		return auth.mode === "oauth2" ? auth : undefined;
	} catch {
		return undefined;
	}
}
