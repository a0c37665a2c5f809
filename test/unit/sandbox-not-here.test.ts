import { describe, expect, it } from "vitest";
import { readNodeAnswer } from "../../src/forwarding/sandbox-not-here.ts";

const id = "abc123";
const target = { sandboxId: id, port: 3000 };
const e2bJson = JSON.stringify({ sandboxId: id, message: "The sandbox was not found", code: 502 });
// The markers of E2B's browser page (browser_sandbox_not_found.html); the rest is styling.
const e2bHtml = `<html lang="en"><head><meta charset="UTF-8"><title>Sandbox Not Found</title><style>.x{}</style></head>
<body><main class="error-card"><div class="error-header"><h1 class="error-title">Sandbox Not Found</h1>
<p class="error-message">The sandbox <span class="highlight" id="sandbox-id">${id}</span> wasn't found.</p></div></main></body></html>`;
const jsonType = { "content-type": "application/json; charset=utf-8" };
const htmlType = { "content-type": "text/html; charset=utf-8" };

function response(status: number, body: BodyInit | null, headers: Record<string, string>): Response {
	return new Response(body, { status, headers });
}

function streamOf(...parts: string[]): ReadableStream<Uint8Array> {
	const encoder = new TextEncoder();
	return new ReadableStream({
		start(controller) {
			for (const part of parts) controller.enqueue(encoder.encode(part));
			controller.close();
		},
	});
}

describe("the node's 'sandbox not here'", () => {
	it.each([
		["E2B's JSON", response(502, e2bJson, jsonType)],
		[
			"E2B's JSON with its field order changed and a field more",
			response(
				502,
				JSON.stringify({ code: 502, message: "The sandbox was not found", sandboxId: id, extra: 1 }),
				jsonType,
			),
		],
		["E2B's HTML page", response(502, e2bHtml, htmlType)],
		["E2B's HTML page in pieces", response(502, streamOf(e2bHtml.slice(0, 100), e2bHtml.slice(100)), htmlType)],
		["the header, whatever the body", response(502, "anything", { "x-e2b-sandbox-not-found": "1" })],
	])("is recognised in %s", async (_label, answer) => {
		expect(await readNodeAnswer(answer, target, "GET", true)).toEqual({ notHere: true });
	});

	it.each([
		["a 502 for another sandbox (JSON)", response(502, e2bJson.replace(id, "other"), jsonType)],
		["a 502 for another sandbox (HTML)", response(502, e2bHtml.replace(`>${id}<`, ">other<"), htmlType)],
		["a 502 for a sandbox whose ID contains this one", response(502, e2bHtml.replace(`>${id}<`, `>x${id}<`), htmlType)],
		["another message", response(502, e2bJson.replace("was not found", "is gone"), jsonType)],
		[
			"E2B's port-closed answer",
			response(
				502,
				JSON.stringify({
					sandboxId: id,
					message: "The sandbox is running but port is not open",
					port: 3000,
					code: 502,
				}),
				jsonType,
			),
		],
		["another code in the body", response(502, e2bJson.replace('"code":502', '"code":404'), jsonType)],
		["malformed JSON", response(502, `${e2bJson.slice(0, -1)}`, jsonType)],
		["JSON that is not an object", response(502, "[1,2]", jsonType)],
		["a plain-text 502", response(502, e2bJson, { "content-type": "text/plain" })],
		["a 502 without a content type", response(502, e2bJson, {})],
		["a compressed 502", response(502, e2bJson, { ...jsonType, "content-encoding": "gzip" })],
		["a 502 that announces more than is read", response(502, e2bJson, { ...jsonType, "content-length": "9000" })],
		["the same words with another status", response(404, e2bJson, jsonType)],
		["the header on another status", response(503, "x", { "x-e2b-sandbox-not-found": "1" })],
	])("is not taken from %s, which goes to the client untouched", async (_label, answer) => {
		const expectedBody = await answer.clone().arrayBuffer();
		const result = await readNodeAnswer(answer, target, "POST", true);
		expect(result.notHere).toBe(false);
		if (result.notHere) return;
		expect(result.response.status).toBe(answer.status);
		expect([...result.response.headers]).toEqual([...answer.headers]);
		expect(new Uint8Array(await result.response.arrayBuffer())).toEqual(new Uint8Array(expectedBody));
	});

	it("gives back a long streamed 502 whole, with every header, after reading its start", async () => {
		const head = e2bJson.slice(0, 20);
		const tail = "x".repeat(20_000);
		const headers = new Headers(jsonType);
		headers.append("set-cookie", "a=1");
		headers.append("set-cookie", "b=2");
		const answer = new Response(streamOf(head, tail.slice(0, 9000), tail.slice(9000)), {
			status: 502,
			statusText: "Bad Gateway",
			headers,
		});
		const result = await readNodeAnswer(answer, target, "GET", true);
		expect(result.notHere).toBe(false);
		if (result.notHere) return;
		expect(result.response.statusText).toBe("Bad Gateway");
		expect(result.response.headers.getSetCookie()).toEqual(["a=1", "b=2"]);
		expect(await result.response.text()).toBe(head + tail);
	});

	it("passes on a 502 whose body is slow to come, within about a second, whole", { timeout: 20_000 }, async () => {
		const encoder = new TextEncoder();
		let finish = () => {};
		const body = new ReadableStream<Uint8Array>({
			start(controller) {
				controller.enqueue(encoder.encode('{"status":'));
				finish = () => {
					controller.enqueue(encoder.encode("502}"));
					controller.close();
				};
			},
		});
		const started = Date.now();
		const result = await readNodeAnswer(response(502, body, jsonType), target, "GET", true);
		const waited = Date.now() - started;
		expect(result.notHere).toBe(false);
		// It gives up looking after a second; the body alone would never come.
		// The margin is for a loaded machine.
		expect(waited).toBeGreaterThanOrEqual(900);
		expect(waited).toBeLessThan(10_000);
		if (result.notHere) return;
		finish();
		expect(await result.response.text()).toBe('{"status":502}');
	});

	it("recognises E2B's JSON answer to HEAD by its length, which only this sandbox's answer has", async () => {
		const length = String(new TextEncoder().encode(e2bJson).byteLength);
		const head = (headers: Record<string, string>) =>
			readNodeAnswer(response(502, null, headers), target, "HEAD", true);
		expect(await head({ ...jsonType, "content-length": length })).toEqual({ notHere: true });
		expect((await head({ ...jsonType, "content-length": String(Number(length) + 1) })).notHere).toBe(false);
		expect((await head({ ...htmlType, "content-length": length })).notHere).toBe(false);
		expect((await head(jsonType)).notHere).toBe(false);
		expect(await head({ "x-e2b-sandbox-not-found": "1" })).toEqual({ notHere: true });
	});

	it("takes the development header for an app's own, unless trusted: E2B's nodes never send it", async () => {
		const answer = response(502, "the app's own", { "x-e2b-sandbox-not-found": "1" });
		const result = await readNodeAnswer(answer, target, "GET", false);
		expect(result.notHere).toBe(false);
		if (result.notHere) return;
		expect(await result.response.text()).toBe("the app's own");
		const head = await readNodeAnswer(response(502, null, { "x-e2b-sandbox-not-found": "1" }), target, "HEAD", false);
		expect(head.notHere).toBe(false);
	});

	it("leaves the body of any other status unread", async () => {
		const answer = response(200, streamOf("ok"), jsonType);
		const result = await readNodeAnswer(answer, target, "GET", true);
		expect(result).toEqual({ notHere: false, response: answer, portClosed: false });
		expect(answer.bodyUsed).toBe(false);
	});
});

describe("the node's 'port closed'", () => {
	// port_closed.go's fields, in its order, and the markers of browser_port_closed.html.
	const closedJson = JSON.stringify({
		sandboxId: id,
		message: "The sandbox is running but port is not open",
		port: 3000,
		code: 502,
	});
	const closedHtml = `<html><head><title>Closed Port Error</title></head><body><p class="error-message">The sandbox
<span class="highlight" id="sandbox-id">${id}</span> is running but there&#39s no service running on port
<span class="highlight" id="port-number">3000</span>.</p></body></html>`;

	it.each([
		["E2B's JSON", () => response(502, closedJson, jsonType)],
		["E2B's HTML page", () => response(502, closedHtml, htmlType)],
	])("is recognised in %s, for this sandbox and port, and its body still reaches the client", async (_, make) => {
		const result = await readNodeAnswer(make(), target, "GET", true);
		if (result.notHere) throw new Error("taken for 'not here'");
		expect(result.portClosed).toBe(true);
		expect(result.response.status).toBe(502);
		expect((await result.response.text()).length).toBeGreaterThan(0);
	});

	it.each([
		["another port", { sandboxId: id, port: 8080 }],
		["another sandbox", { sandboxId: "other1", port: 3000 }],
	])("is not taken for %s", async (_, other) => {
		const json = await readNodeAnswer(response(502, closedJson, jsonType), other, "GET", true);
		const html = await readNodeAnswer(response(502, closedHtml, htmlType), other, "GET", true);
		expect(json.notHere || json.portClosed).toBe(false);
		expect(html.notHere || html.portClosed).toBe(false);
	});

	it("is recognised for HEAD by the exact length of E2B's JSON", async () => {
		const length = String(new TextEncoder().encode(closedJson).byteLength);
		const head = (value: string) =>
			readNodeAnswer(response(502, null, { ...jsonType, "content-length": value }), target, "HEAD", true);
		expect(await head(length)).toMatchObject({ notHere: false, portClosed: true });
		expect(await head(String(Number(length) + 1))).toMatchObject({ notHere: false, portClosed: false });
	});
});
