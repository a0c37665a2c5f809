/**
 * One JSON line per event, which Workers Logs and `wrangler tail` index by
 * field. Callers pass only values that are safe to keep: never the API
 * secret, access tokens or request bodies.
 */
export function logEvent(event: string, fields: Record<string, string | number | boolean | undefined>): void {
	console.log(JSON.stringify({ event, ...fields }));
}
