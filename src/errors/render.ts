import { wantsHtml } from "../rules/negotiate.ts";
import type { ProxyError } from "./proxy-error.ts";

export interface ErrorBody {
	sandboxId: string;
	message: string;
	code: number;
	reason: string;
}

export function errorBody(error: ProxyError): ErrorBody {
	return {
		sandboxId: error.sandboxId ?? "",
		message: error.message,
		code: error.status,
		reason: error.code,
	};
}

/** The response for an error the proxy raises itself, negotiated as E2B's proxy does (src/rules/negotiate.ts). */
export function renderError(error: ProxyError, requestHeaders: Headers): Response {
	if (!wantsHtml((name) => requestHeaders.get(name) ?? "")) return renderJsonError(error);
	const body = errorBody(error);
	const headers = errorHeaders(error);
	headers.set("content-type", "text/html; charset=utf-8");
	headers.set("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'");
	return new Response(errorPage(body), { status: body.code, headers });
}

/** The error as JSON, whoever asks: for APIs that no browser navigates to. */
export function renderJsonError(error: ProxyError, extraHeaders: Record<string, string> = {}): Response {
	const headers = errorHeaders(error);
	for (const [name, value] of Object.entries(extraHeaders)) headers.set(name, value);
	headers.set("content-type", "application/json; charset=utf-8");
	// Ends with a newline, as the HTML page does, so that a terminal's prompt
	// after `curl` starts on a line of its own.
	return new Response(`${JSON.stringify(errorBody(error))}\n`, { status: error.status, headers });
}

function errorHeaders(error: ProxyError): Headers {
	const headers = new Headers({
		"cache-control": "no-store",
		"x-content-type-options": "nosniff",
	});
	if (error.retryAfterSeconds !== undefined) headers.set("retry-after", String(error.retryAfterSeconds));
	return headers;
}

function errorPage(body: ErrorBody): string {
	const title = `${body.code} · ${escapeHtml(body.message)}`;
	const sandbox = body.sandboxId ? `<p class="meta">Sandbox <code>${escapeHtml(body.sandboxId)}</code></p>` : "";
	return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<style>
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;background:#0f1115;color:#e6e6e6;display:flex;min-height:100vh;margin:0;align-items:center;justify-content:center}
main{max-width:36rem;padding:2rem}
h1{font-size:1.25rem;margin:0 0 .75rem}
.code{color:#ff8800;font-weight:600;margin-right:.5rem}
.meta{color:#9aa0a6;font-size:.875rem}
code{background:#1c1f26;padding:.1rem .3rem;border-radius:4px}
</style>
</head>
<body>
<main>
<h1><span class="code">${body.code}</span>${escapeHtml(body.message)}</h1>
${sandbox}
<p class="meta">Reason: <code>${escapeHtml(body.reason)}</code></p>
</main>
</body>
</html>
`;
}

const htmlEscapes: Record<string, string> = {
	"&": "&amp;",
	"<": "&lt;",
	">": "&gt;",
	'"': "&quot;",
	"'": "&#39;",
};

export function escapeHtml(text: string): string {
	return text.replace(/[&<>"']/g, (char) => htmlEscapes[char] ?? char);
}
