/** How a request's credentials for the catalog API compare with CATALOG_SECRET. */
export type BearerCheck = "ok" | "missing" | "wrong";

const bearerPattern = /^Bearer[ \t]+([^ \t]+)[ \t]*$/i;

/**
 * Checks `Authorization: Bearer <token>` against the secret in constant time:
 * both are hashed first, so that neither their contents nor their lengths
 * show in how long the comparison takes.
 */
export async function checkBearer(authorization: string | null, secret: string): Promise<BearerCheck> {
	const token = authorization === null ? null : bearerPattern.exec(authorization)?.[1];
	if (token === undefined || token === null) return "missing";
	const [given, expected] = await Promise.all([digest(token), digest(secret)]);
	return crypto.subtle.timingSafeEqual(given, expected) ? "ok" : "wrong";
}

function digest(text: string): Promise<ArrayBuffer> {
	return crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
}
