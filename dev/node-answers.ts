// The dev node's own answers, shaped as E2B's orchestrator proxy gives them
// (packages/shared/pkg/proxy/template in e2b-dev/infra): the same statuses,
// the same JSON fields in the same order, an HTML page when the client looks
// like a browser, and no header of our own unless asked for one. The edge
// recognises "not here" from exactly these bytes, so they must not drift.

import type { IncomingHttpHeaders } from "node:http";
import { wantsHtml as e2bWantsHtml } from "../src/rules/negotiate.ts";

export interface NodeAnswer {
	status: number;
	contentType: string;
	body: string;
	headers: Record<string, string>;
}

/** The header an edge may also take as "not here"; E2B's nodes never send it. */
export const NOT_HERE_HEADER = "x-e2b-sandbox-not-found";

function first(value: string | string[] | undefined): string {
	return (Array.isArray(value) ? value[0] : value) ?? "";
}

/** E2B's choice between its HTML page and JSON (src/rules/negotiate.ts), on Node's headers. */
export function wantsHtml(headers: IncomingHttpHeaders): boolean {
	return e2bWantsHtml((name) => first(headers[name]));
}

function escapeHtml(text: string): string {
	return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title: string, message: string): string {
	return `<html lang="en">
<head>
    <meta charset="UTF-8">
    <title>${title}</title>
</head>
<body>
    <main class="error-card">
        <h1 class="error-title">${title}</h1>
        <p class="error-message">${message}</p>
    </main>
</body>
</html>`;
}

function answer(status: number, json: Record<string, unknown>, html: string, asHtml: boolean): NodeAnswer {
	return asHtml
		? { status, contentType: "text/html; charset=utf-8", body: html, headers: {} }
		: { status, contentType: "application/json; charset=utf-8", body: JSON.stringify(json), headers: {} };
}

/** The sandbox is not on this node: given before anything is dialed. */
export function sandboxNotFound(sandboxId: string, asHtml: boolean, withHeader: boolean): NodeAnswer {
	const id = escapeHtml(sandboxId);
	const result = answer(
		502,
		{ sandboxId, message: "The sandbox was not found", code: 502 },
		page("Sandbox Not Found", `The sandbox <span class="highlight" id="sandbox-id">${id}</span> wasn't found.`),
		asHtml,
	);
	if (withHeader) result.headers[NOT_HERE_HEADER] = "1";
	return result;
}

/** Anything that goes wrong once the sandbox is dialed: E2B's node always says the port is closed. */
export function portClosed(sandboxId: string, port: number, asHtml: boolean): NodeAnswer {
	return answer(
		502,
		{ sandboxId, message: "The sandbox is running but port is not open", port, code: 502 },
		page(
			"Closed Port Error",
			// browser_port_closed.html's markers, which an edge reads.
			`The sandbox <span class="highlight" id="sandbox-id">${escapeHtml(sandboxId)}</span> is running but there&#39s no service running on port <span class="highlight" id="port-number">${port}</span>.`,
		),
		asHtml,
	);
}

/** A private sandbox's traffic without its token, or with the wrong one. */
export function trafficTokenRefused(sandboxId: string, header: string, missing: boolean, asHtml: boolean): NodeAnswer {
	const message = missing
		? `Sandbox is secured with traffic access token. Token header '${header}' is missing`
		: `Sandbox is secured with traffic access token. Provided token in header '${header}' is invalid`;
	return answer(403, { sandboxId, message, code: 403 }, page("Forbidden", escapeHtml(message)), asHtml);
}

/** A request that names no sandbox properly: E2B answers with Go's http.Error, plain text for browsers too. */
export function badRequest(message: string): NodeAnswer {
	return {
		status: 400,
		contentType: "text/plain; charset=utf-8",
		body: `${message}\n`,
		headers: { "x-content-type-options": "nosniff" },
	};
}
