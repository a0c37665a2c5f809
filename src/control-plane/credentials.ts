import { ProxyError } from "../errors/proxy-error.ts";
import type { ResumeCredentials } from "../resume-types.ts";

// Far beyond any real token; a longer header is refused rather than sent on.
const maxAccessTokenLength = 4096;

const accessTokenHeaders = ["e2b-traffic-access-token", "x-access-token"] as const;

/** Refuses a request whose access-token header is far longer than any real token. */
export function checkAccessTokens(headers: Headers): void {
	for (const name of accessTokenHeaders) accessToken(headers, name);
}

/**
 * The caller's own credentials, which a resume carries to the control plane
 * so that it can refuse a caller who may not wake the sandbox: the traffic
 * access token, and envd's X-Access-Token (sent as e2b-envd-access-token).
 */
export function resumeCredentials(headers: Headers, port: number): ResumeCredentials {
	const trafficAccessToken = accessToken(headers, "e2b-traffic-access-token");
	const envdAccessToken = accessToken(headers, "x-access-token");
	return {
		port,
		...(trafficAccessToken === undefined ? {} : { trafficAccessToken }),
		...(envdAccessToken === undefined ? {} : { envdAccessToken }),
	};
}

function accessToken(headers: Headers, name: string): string | undefined {
	const token = headers.get(name) ?? undefined;
	if (token !== undefined && token.length > maxAccessTokenLength) {
		throw new ProxyError("invalid_access_token", {
			message: `The ${name} header is longer than ${maxAccessTokenLength} characters`,
		});
	}
	return token;
}
