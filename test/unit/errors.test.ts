import { describe, expect, it } from "vitest";
import { ProxyError } from "../../src/errors/proxy-error.ts";
import { type ErrorCode, type ErrorDefinition, errorCodes } from "../../src/errors/registry.ts";
import { renderError, renderJsonError } from "../../src/errors/render.ts";
import { wantsHtml } from "../../src/rules/negotiate.ts";

const browserUa =
	"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36";
const browserNavigation = {
	"user-agent": browserUa,
	accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
	"sec-fetch-mode": "navigate",
};
const jsonClient = { "user-agent": "curl/8.5.0", accept: "*/*" };
// E2B's template_test.go's browser.
const chromeUa =
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/58.0.3029.110 Safari/537.3";

type Answer = "html" | "json";

/**
 * The negotiation table (src/rules/negotiate.ts). The first block is E2B's
 * own (TestHandleErrorContentNegotiation in
 * packages/shared/pkg/proxy/template/template_test.go, e2b-dev/infra), case
 * for case; the rest are ours.
 */
const table: [string, Record<string, string>, Answer][] = [
	["E2B: no user agent", {}, "json"],
	[
		"E2B: top-level navigation",
		{ "user-agent": chromeUa, "sec-fetch-mode": "navigate", accept: "text/html,application/xhtml+xml,*/*" },
		"html",
	],
	["E2B: bare browser user agent", { "user-agent": chromeUa }, "html"],
	["E2B: browser user agent accepting html", { "user-agent": chromeUa, accept: "text/html" }, "html"],
	["E2B: browser user agent accepting json", { "user-agent": chromeUa, accept: "application/json" }, "json"],
	["E2B: cross-origin fetch", { "user-agent": chromeUa, "sec-fetch-mode": "cors", accept: "*/*" }, "json"],
	["E2B: same-origin fetch", { "user-agent": chromeUa, "sec-fetch-mode": "same-origin", accept: "*/*" }, "json"],
	["E2B: websocket handshake", { "user-agent": chromeUa, "sec-fetch-mode": "websocket", accept: "*/*" }, "json"],
	["E2B: legacy xhr", { "user-agent": chromeUa, "x-requested-with": "XMLHttpRequest" }, "json"],
	[
		"E2B: navigation carrying x-requested-with",
		{ "user-agent": chromeUa, "sec-fetch-mode": "navigate", "x-requested-with": "XMLHttpRequest" },
		"html",
	],

	...["application/json", "Application/JSON", "application/json, */*;q=0.5", "application/json;charset=utf-8"].map(
		(accept): [string, Record<string, string>, Answer] => [
			`a browser whose Accept is ${JSON.stringify(accept)}`,
			{ "user-agent": browserUa, accept },
			"json",
		],
	),
	[
		"a browser that accepts text/html besides JSON",
		{ "user-agent": browserUa, accept: "text/html, application/json" },
		"html",
	],
	[
		"a browser that accepts TEXT/HTML besides JSON",
		{ "user-agent": browserUa, accept: "application/json, TEXT/HTML;q=0.1" },
		"html",
	],
	...["cors", "no-cors", "same-origin", "websocket", "CORS"].map((mode): [string, Record<string, string>, Answer] => [
		`a browser request with Sec-Fetch-Mode ${mode}`,
		{ ...browserNavigation, "sec-fetch-mode": mode },
		"json",
	]),
	["a browser navigation", browserNavigation, "html"],
	["a browser's nested navigation", { "user-agent": browserUa, "sec-fetch-mode": "nested-navigate" }, "html"],
	[
		"a NAVIGATE carrying X-Requested-With",
		{ ...browserNavigation, "sec-fetch-mode": "NAVIGATE", "x-requested-with": "x" },
		"html",
	],
	// Go's Header.Get gives "" for an empty header as for a missing one: only a value counts.
	["a browser with an empty X-Requested-With", { "user-agent": browserUa, "x-requested-with": "" }, "html"],
	["curl", jsonClient, "json"],
	["python-requests", { "user-agent": "python-requests/2.32.3" }, "json"],
	["Go", { "user-agent": "Go-http-client/1.1" }, "json"],
	["a non-browser that accepts HTML", { "user-agent": "curl/8.5.0", accept: "text/html" }, "json"],
	["Opera Presto", { "user-agent": "Opera/9.80 (X11; Linux x86_64) Presto/2.12.388 Version/12.16" }, "html"],
	["a lowercase mozilla", { "user-agent": "mozilla/5.0 (x11)" }, "html"],
	[
		"a UA that mentions Mozilla anywhere, as E2B's rule reads",
		{ "user-agent": "my-bot (compatible; Mozilla/5.0)" },
		"html",
	],
];

describe("wantsHtml, E2B's negotiation", () => {
	it.each(table)("answers %s with %s", (_label, headers, answer) => {
		const request = new Headers(headers);
		expect(wantsHtml((name) => request.get(name) ?? "") ? "html" : "json").toBe(answer);
	});

	it.each(table)("is what renderError answers %s with (%s)", (_label, headers, answer) => {
		const type = renderError(
			new ProxyError("sandbox_not_found", { sandboxId: "abc" }),
			new Headers(headers),
		).headers.get("content-type");
		expect(type).toBe(answer === "html" ? "text/html; charset=utf-8" : "application/json; charset=utf-8");
	});
});

describe("renderError", () => {
	it("renders JSON with exactly sandboxId, message, code and reason", async () => {
		const response = renderError(new ProxyError("sandbox_not_found", { sandboxId: "abc123" }), new Headers(jsonClient));
		expect(response.status).toBe(502);
		expect(response.headers.get("content-type")).toBe("application/json; charset=utf-8");
		expect(response.headers.get("cache-control")).toBe("no-store");
		expect(response.headers.get("x-content-type-options")).toBe("nosniff");
		expect(response.headers.has("retry-after")).toBe(false);
		expect(await response.json()).toStrictEqual({
			sandboxId: "abc123",
			message: "The sandbox was not found",
			code: 502,
			reason: "sandbox_not_found",
		});
	});

	it("ends every body with a newline, JSON and HTML alike, so that a shell prompt after curl starts on its own line", async () => {
		const error = new ProxyError("sandbox_not_found", { sandboxId: "abc123" });
		const bodies = {
			json: await renderError(error, new Headers(jsonClient)).text(),
			html: await renderError(error, new Headers(browserNavigation)).text(),
			"JSON for an API": await renderJsonError(error, { allow: "GET" }).text(),
		};
		for (const [kind, body] of Object.entries(bodies)) {
			expect(body.endsWith("\n"), kind).toBe(true);
			expect(body.endsWith("\n\n"), kind).toBe(false);
		}
		expect(bodies.json).toBe(
			'{"sandboxId":"abc123","message":"The sandbox was not found","code":502,"reason":"sandbox_not_found"}\n',
		);
		expect(bodies.html.endsWith("</html>\n")).toBe(true);
	});

	it("uses an empty sandboxId when the error has none, and a custom message when given", async () => {
		const error = new ProxyError("invalid_port", { message: 'The sandbox port must be ..., got "x"' });
		const body = await renderError(error, new Headers(jsonClient)).json();
		expect(body).toStrictEqual({
			sandboxId: "",
			message: 'The sandbox port must be ..., got "x"',
			code: 400,
			reason: "invalid_port",
		});
	});

	it("renders an HTML page for a browser navigation", async () => {
		const response = renderError(
			new ProxyError("sandbox_transitioning", { sandboxId: "abc123" }),
			new Headers(browserNavigation),
		);
		expect(response.status).toBe(409);
		expect(response.headers.get("content-type")).toBe("text/html; charset=utf-8");
		expect(response.headers.get("content-security-policy")).toContain("default-src 'none'");
		expect(response.headers.get("x-content-type-options")).toBe("nosniff");
		const html = await response.text();
		expect(html.startsWith("<!doctype html>")).toBe(true);
		expect(html).toContain("409");
		expect(html).toContain("The sandbox is still transitioning. Try again in a moment.");
		expect(html).toContain("abc123");
		expect(html).toContain("sandbox_transitioning");
	});

	it("escapes hostile text in the HTML page", async () => {
		const hostileId = `"><script>alert(1)</script>`;
		const hostileMessage = `<img src=x onerror='alert(2)'> & more`;
		const response = renderError(
			new ProxyError("invalid_sandbox_id", { sandboxId: hostileId, message: hostileMessage }),
			new Headers(browserNavigation),
		);
		const html = await response.text();
		expect(html).not.toContain("<script>");
		expect(html).not.toContain("<img");
		expect(html).not.toContain("onerror='");
		expect(html).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
		expect(html).toContain("&quot;&gt;");
		expect(html).toContain("&lt;img src=x onerror=&#39;alert(2)&#39;&gt; &amp; more");
	});

	it("keeps hostile text intact, as data, in JSON", async () => {
		const hostileId = `<script>"x"</script>`;
		const response = renderError(
			new ProxyError("invalid_sandbox_id", { sandboxId: hostileId }),
			new Headers(jsonClient),
		);
		expect((await response.json()) as { sandboxId: string }).toMatchObject({ sandboxId: hostileId });
	});

	it.each(Object.keys(errorCodes) as ErrorCode[])("renders %s with its registry status", async (code) => {
		const definition: ErrorDefinition = errorCodes[code];
		const error = new ProxyError(code, { sandboxId: "abc" });

		const jsonResponse = renderError(error, new Headers(jsonClient));
		expect(jsonResponse.status).toBe(definition.status);
		expect(await jsonResponse.json()).toStrictEqual({
			sandboxId: "abc",
			message: definition.message,
			code: definition.status,
			reason: code,
		});

		const htmlResponse = renderError(error, new Headers(browserNavigation));
		expect(htmlResponse.status).toBe(definition.status);
		expect(await htmlResponse.text()).toContain(definition.message.replaceAll("'", "&#39;"));

		// Retry-After goes with the transient failures (409, 429, 503, 504), and only with them.
		for (const response of [jsonResponse, htmlResponse]) {
			const retryAfter = response.headers.get("retry-after");
			if ([409, 429, 503, 504].includes(definition.status)) {
				expect(retryAfter).toMatch(/^[1-9]\d*$/);
			} else {
				expect(retryAfter).toBeNull();
			}
		}
	});
});

describe("the contract's messages", () => {
	it.each([
		["sandbox_not_found", 502, "The sandbox was not found"],
		[
			"resume_forbidden",
			403,
			"This sandbox can't be resumed with the credentials provided. Check your access token and try again.",
		],
		["sandbox_transitioning", 409, "The sandbox is still transitioning. Try again in a moment."],
		["resume_rate_limited", 429, undefined],
		["control_plane_unavailable", 503, "The sandbox service is temporarily unavailable"],
		["resume_timeout", 504, "Timed out waiting for the sandbox to resume"],
	] as const)("%s is %i with the contract's text", async (code, status, message) => {
		expect(errorCodes[code].status).toBe(status);
		if (message !== undefined) expect(errorCodes[code].message).toBe(message);
		const body = (await renderError(new ProxyError(code), new Headers(jsonClient)).json()) as Record<string, unknown>;
		expect(body.code).toBe(status);
		if (message !== undefined) expect(body.message).toBe(message);
	});

	it("takes a Retry-After that the catalog computed over the registry's", () => {
		const error = new ProxyError("control_plane_unavailable", { retryAfterSeconds: 17 });
		expect(renderError(error, new Headers(jsonClient)).headers.get("retry-after")).toBe("17");
		expect(
			renderError(new ProxyError("control_plane_unavailable"), new Headers(jsonClient)).headers.get("retry-after"),
		).toBe("5");
	});

	it("passes the control plane's rate-limit text on as the message", async () => {
		const error = new ProxyError("resume_rate_limited", { sandboxId: "abc", message: "slow down: 5 resumes/min" });
		const body = (await renderError(error, new Headers(jsonClient)).json()) as Record<string, unknown>;
		expect(body).toStrictEqual({
			sandboxId: "abc",
			message: "slow down: 5 resumes/min",
			code: 429,
			reason: "resume_rate_limited",
		});
	});
});
