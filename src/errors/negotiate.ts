const jsonFetchModes = new Set(["cors", "no-cors", "same-origin", "websocket"]);

/**
 * Whether an error should be JSON rather than an HTML page. This follows
 * E2B's proxy: programmatic requests get JSON, browser navigations get HTML,
 * and anything unidentifiable that does not look like a browser gets JSON.
 */
export function wantsJson(headers: Headers): boolean {
	const accept = headers.get("accept")?.toLowerCase() ?? "";
	if (accept.includes("application/json") && !accept.includes("text/html")) return true;

	const fetchMode = headers.get("sec-fetch-mode")?.toLowerCase() ?? "";
	if (jsonFetchModes.has(fetchMode)) return true;
	if (headers.has("x-requested-with") && fetchMode !== "navigate") return true;

	return !looksLikeBrowser(headers.get("user-agent") ?? "");
}

// E2B's proxy uses this pattern; CLIs and SDKs (curl, python-requests, node, Go) match none of it.
const browserUserAgent = /mozilla|chrome|safari|firefox|edge|opera|msie/i;

function looksLikeBrowser(userAgent: string): boolean {
	return browserUserAgent.test(userAgent);
}
