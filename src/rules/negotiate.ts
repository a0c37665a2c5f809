// Whether an error is answered with an HTML page or with JSON, decided as
// E2B's orchestrator proxy decides it (wantsHtml in
// packages/shared/pkg/proxy/template/template.go, e2b-dev/infra), for the
// Worker's own errors (src/errors/render.ts) and for the development node's
// answers (dev/node-answers.ts), which the Worker recognises by their bytes.
// See src/rules/sandbox-hosts.ts for why this is its own directory.

/** A request header's value as Go's Header.Get gives it: "" when it is absent. */
export type HeaderOf = (name: "accept" | "sec-fetch-mode" | "x-requested-with" | "user-agent") => string;

// E2B's browserRegex; CLIs and SDKs (curl, python-requests, node, Go) match none of it.
const browserUserAgent = /mozilla|chrome|safari|firefox|edge|opera|msie/i;

/**
 * Intent first: a request that prefers JSON, or that page scripts made (a
 * fetch carries the browser's own User-Agent), gets JSON. Only then is the
 * User-Agent sniffed: a browser's gets the page, anything else JSON.
 */
export function wantsHtml(header: HeaderOf): boolean {
	if (prefersJson(header) || isScriptInitiated(header)) return false;
	return browserUserAgent.test(header("user-agent"));
}

/** The Accept header asks for JSON over HTML. */
function prefersJson(header: HeaderOf): boolean {
	const accept = header("accept").toLowerCase();
	return accept.includes("application/json") && !accept.includes("text/html");
}

/**
 * Page scripts made the request rather than a navigation: Sec-Fetch-Mode is
 * set by the browser itself, and a navigation's outranks any header the
 * caller can set; X-Requested-With (a value, not just the name) covers older clients.
 */
function isScriptInitiated(header: HeaderOf): boolean {
	switch (header("sec-fetch-mode").toLowerCase()) {
		case "cors":
		case "no-cors":
		case "same-origin":
		case "websocket":
			return true;
		case "navigate":
			return false;
	}
	return header("x-requested-with") !== "";
}
