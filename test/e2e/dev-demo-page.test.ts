import { runInNewContext } from "node:vm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { type E2eStack, freshId, sandboxHost, startE2eStack } from "./fixture.ts";
import { fetchVia } from "./http-client.ts";
import { until } from "./until.ts";

// The demo sandbox's page (dev/demo-page.ts), as a browser tab gets it
// through the edge: when its sandbox pauses, its WebSocket reconnects, with a
// growing delay, and the reconnect wakes the sandbox.
let e2e: E2eStack;

beforeAll(async () => {
	e2e = await startE2eStack();
}, 60_000);
afterAll(async () => {
	await e2e?.close();
});

async function page(sandboxId: string): Promise<string> {
	const response = await fetchVia(e2e.worker.url, sandboxHost(sandboxId), "/");
	expect(response.status).toBe(200);
	return response.text;
}

/** The page's own script, run as a tab would run it, with just enough of a browser around it. */
function runPage(html: string, sandboxId: string) {
	const script = /<script>([\s\S]*)<\/script>/.exec(html)?.[1];
	if (script === undefined) throw new Error("the page has no script");
	const elements = new Map<
		string,
		{ textContent: string; value: string; listeners: Map<string, (event: unknown) => void> }
	>();
	const element = (id: string) => {
		let found = elements.get(id);
		if (found === undefined) {
			found = { textContent: "", value: id === "ws-input" ? "hello" : "", listeners: new Map() };
			elements.set(id, found);
		}
		return {
			get textContent() {
				return found.textContent;
			},
			set textContent(text: string) {
				found.textContent = String(text);
			},
			get value() {
				return found.value;
			},
			addEventListener: (type: string, listener: (event: unknown) => void) => found.listeners.set(type, listener),
		};
	};
	const sockets: WebSocket[] = [];
	// A browser's WebSocket, to the page's own host through the edge.
	class BrowserWebSocket extends WebSocket {
		constructor(url: string) {
			const { pathname } = new URL(url);
			super(`ws://127.0.0.1:${e2e.worker.url.port}${pathname}`, { headers: { host: sandboxHost(sandboxId) } });
			sockets.push(this);
		}
	}
	const timers = new Set<ReturnType<typeof setTimeout>>();
	runInNewContext(script, {
		document: { getElementById: element },
		location: { protocol: "http:", host: `${sandboxHost(sandboxId)}:${e2e.worker.url.port}` },
		WebSocket: BrowserWebSocket,
		// Browsers' own reconnecting EventSource is not under test here.
		EventSource: class {},
		setTimeout: (callback: () => void, ms: number) => {
			const timer = setTimeout(() => {
				timers.delete(timer);
				callback();
			}, ms);
			timers.add(timer);
			return timer;
		},
		clearTimeout: (timer: ReturnType<typeof setTimeout> | undefined) => {
			if (timer !== undefined) timers.delete(timer);
			clearTimeout(timer);
		},
	});
	return {
		text: (id: string) => elements.get(id)?.textContent ?? "",
		setText: (id: string, text: string) => {
			element(id).textContent = text;
		},
		send: () => elements.get("ws-form")?.listeners.get("submit")?.({ preventDefault() {} }),
		sockets,
		close() {
			for (const timer of timers) clearTimeout(timer);
			for (const socket of sockets) {
				socket.onclose = null;
				socket.terminate();
			}
		},
	};
}

describe("the demo page", () => {
	it("holds the reconnect: its WebSocket retries with a growing delay and says so", async () => {
		const sandboxId = freshId("page");
		await e2e.admin.create({ id: sandboxId });
		const html = await page(sandboxId);
		expect(html).toContain("setTimeout(wsConnect, delay)");
		expect(html).toContain("WS_RETRY_FIRST_MS * 2 ** wsRetries");
		expect(html).toContain("reconnecting in ");
	});

	it("reconnects its WebSocket after the sandbox pauses, which wakes the sandbox through the edge", async () => {
		const sandboxId = freshId("page");
		await e2e.admin.create({ id: sandboxId });
		const tab = runPage(await page(sandboxId), sandboxId);
		try {
			await until("the page's WebSocket opens", () => tab.text("ws-status") === "open");
			tab.send();
			await until("the echo", () => tab.text("ws-echo") === "hello");

			await e2e.admin.pause(sandboxId);
			await until("the page sees its WebSocket close", () => tab.text("ws-status").startsWith("closed"));
			expect(tab.text("ws-status")).toMatch(/reconnecting in 0\.5 s, which wakes it/);

			await until("the page reconnects", () => tab.text("ws-status").startsWith("open again after"));
			expect((await e2e.admin.get(sandboxId)).state).toBe("running");
			// The reconnect was the request that woke it: one ResumeSandbox call, from the edge.
			expect(e2e.stack.controlPlane.calls().filter((call) => call.sandboxId === sandboxId)).toHaveLength(1);
			expect(tab.sockets.length).toBeGreaterThanOrEqual(2);

			// And it works again: the new socket echoes.
			tab.setText("ws-echo", "");
			tab.send();
			await until("the echo through the new socket", () => tab.text("ws-echo") === "hello");
		} finally {
			tab.close();
		}
	}, 60_000);
});
