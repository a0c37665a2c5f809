import { readUpTo } from "../bytes.ts";
import type { ControlPlaneAuth } from "../config.ts";
import { Deadline } from "../deadline.ts";

export type OAuth2Settings = Extract<ControlPlaneAuth, { mode: "oauth2" }>;

/** An access token as the token endpoint issued it, with when to replace it. */
export interface IssuedToken {
	accessToken: string;
	/** Epoch ms when it was received. */
	obtainedAt: number;
	/** Epoch ms after which it is replaced: shortly before it expires. */
	refreshAt: number;
	/** Epoch ms when it expires: until then it still serves if no replacement can be had. */
	expiresAt: number;
}

export type TokenRequestOutcome = { ok: true; token: IssuedToken } | { ok: false; reason: string };

// A token answer is a small JSON object; JWTs of a few KiB at most.
const maxAnswerBytes = 64 * 1024;
const maxAccessTokenLength = 16 * 1024;
// RFC 6750's b64token, which is what a bearer header can carry.
const bearerTokenPattern = /^[A-Za-z0-9\-._~+/]+=*$/;
// An answer without expires_in (RFC 6749 makes it optional) is trusted this long.
const assumedLifetimeMs = 5 * 60_000;
// A token is replaced this long before it expires, or after three quarters
// of its life if that is shorter: a call never carries one about to lapse.
const maxRefreshMarginMs = 60_000;

/**
 * Asks the token endpoint for a token with the client-credentials grant
 * (RFC 6749 §4.4), the client authenticating with HTTP Basic (§2.3.1), as
 * Go's clientcredentials package does first. Never throws. The reason of a
 * failure is for logs: it names what went wrong, never the secret or a token.
 */
export async function requestToken(settings: OAuth2Settings): Promise<TokenRequestOutcome> {
	const form = new URLSearchParams({ grant_type: "client_credentials", scope: settings.scope });
	if (settings.audience !== undefined) form.set("audience", settings.audience);
	const basic = btoa(`${formEncode(settings.clientId)}:${formEncode(settings.clientSecret)}`);
	const deadline = new Deadline(settings.tokenTimeoutMs);
	try {
		let response: Response;
		try {
			response = await fetch(settings.tokenUrl, {
				method: "POST",
				headers: {
					authorization: `Basic ${basic}`,
					"content-type": "application/x-www-form-urlencoded",
					accept: "application/json",
				},
				body: form.toString(),
				// A redirect must not carry the client's secret elsewhere.
				redirect: "manual",
				signal: deadline.signal,
			});
		} catch {
			return { ok: false, reason: deadline.passed ? "token endpoint timed out" : "token endpoint unreachable" };
		}
		const reader = response.body?.getReader();
		let head: { bytes: Uint8Array; complete: boolean };
		try {
			head =
				reader === undefined
					? { bytes: new Uint8Array(), complete: true }
					: await readUpTo(reader, maxAnswerBytes, deadline.expired);
		} catch {
			// The connection broke mid-answer.
			return { ok: false, reason: deadline.passed ? "token endpoint timed out" : "token endpoint answer cut off" };
		}
		if (!head.complete) {
			await reader?.cancel().catch(() => {});
			return {
				ok: false,
				reason: deadline.passed ? "token endpoint timed out" : "token endpoint answer too large",
			};
		}
		const text = new TextDecoder().decode(head.bytes);
		if (response.status !== 200) {
			return { ok: false, reason: `token endpoint answered ${response.status}${oauthErrorOf(text)}` };
		}
		return parseTokenAnswer(text, Date.now());
	} finally {
		deadline.clear();
	}
}

/** Reads RFC 6749 §5.1's JSON answer; anything else is garbage. */
export function parseTokenAnswer(text: string, now: number): TokenRequestOutcome {
	let answer: unknown;
	try {
		answer = JSON.parse(text);
	} catch {
		return { ok: false, reason: "token endpoint answer is not JSON" };
	}
	if (typeof answer !== "object" || answer === null)
		return { ok: false, reason: "token endpoint answer is not an object" };
	const { access_token: accessToken, token_type: tokenType, expires_in: expiresIn } = answer as Record<string, unknown>;
	if (typeof accessToken !== "string" || accessToken === "") {
		return { ok: false, reason: "token endpoint answer has no access_token" };
	}
	if (accessToken.length > maxAccessTokenLength || !bearerTokenPattern.test(accessToken)) {
		return { ok: false, reason: "token endpoint answer's access_token is not a bearer token" };
	}
	if (typeof tokenType !== "string" || tokenType.toLowerCase() !== "bearer") {
		return { ok: false, reason: "token endpoint answer's token_type is not Bearer" };
	}
	let lifetimeMs = assumedLifetimeMs;
	if (expiresIn !== undefined) {
		const seconds = typeof expiresIn === "string" ? Number(expiresIn) : expiresIn;
		if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds <= 0) {
			return { ok: false, reason: "token endpoint answer's expires_in is not a positive number" };
		}
		lifetimeMs = seconds * 1000;
	}
	const margin = Math.min(maxRefreshMarginMs, lifetimeMs / 4);
	return {
		ok: true,
		token: { accessToken, obtainedAt: now, refreshAt: now + lifetimeMs - margin, expiresAt: now + lifetimeMs },
	};
}

/** RFC 6749 §5.2's error code, for the log: " (invalid_client)", or nothing. */
function oauthErrorOf(text: string): string {
	try {
		const error = (JSON.parse(text) as { error?: unknown }).error;
		return typeof error === "string" && /^[a-z_]{1,64}$/.test(error) ? ` (${error})` : "";
	} catch {
		return "";
	}
}

/** application/x-www-form-urlencoded, as RFC 6749 §2.3.1 asks before Basic encoding. */
function formEncode(value: string): string {
	return encodeURIComponent(value).replace(/%20/g, "+");
}
