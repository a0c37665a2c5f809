import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { catalogSecret, freshId } from "../e2e/fixture.ts";
import { fetchVia } from "../e2e/http-client.ts";
import { type NodeReach, type ProductionStack, sandboxDomain, startProductionStack } from "../e2e/production-stack.ts";
import { type AppNode, startAppNode } from "./apps/app-node.ts";
import { type OriginCheckApp, startOriginCheckApp } from "./apps/origin-check-app.ts";
import { startViteApp, type ViteApp } from "./apps/vite-app.ts";
import { launchChromium, screenshots } from "./chromium.ts";

// Real apps in a sandbox, in Debian's chromium, through the model of a
// deployed Worker (test/e2e/production-edge.ts): a Vite dev server, whose
// host check and HMR WebSocket must work behind the edge, and an app that
// refuses a WebSocket whose Origin is not its Host, as Jupyter and Streamlit
// do. Both need the Host that E2B's own edge gives a sandbox's app, the
// client's `<port>-<id>.<domain>`: Host-preserving forwarding ("D") gives it,
// and each of today's other options (A, B, C) gives the app a Host that at
// least one of them refuses.
// CHROMIUM_PATH overrides /usr/bin/chromium; SCREENSHOT_DIR keeps screenshots.

/** The apps' node: routes pushed with this orchestrator IP lead to it, under every option. */
const appNodeIp = "10.0.0.6";
const VITE_PORT = 5173;
const ORIGIN_APP_PORT = 8888;
const reaches: readonly NodeReach[] = ["A", "B", "C", "D"];
/** The Host the app gets under each option but D, which gives it the client's. */
const appHostUnder: Record<"A" | "B" | "C", string> = {
	A: `sandbox.n-${appNodeIp.replaceAll(".", "-")}.nodes.example.test:5007`,
	B: "localhost",
	C: `${appNodeIp}:5007`,
};

const stacks = new Map<NodeReach, ProductionStack>();
let originApp: OriginCheckApp;
let viteApp: ViteApp;
let appNode: AppNode;
let browser: Browser;

function stackFor(reach: NodeReach): ProductionStack {
	const stack = stacks.get(reach);
	if (stack === undefined) throw new Error(`no stack for option ${reach}`);
	return stack;
}

beforeAll(async () => {
	originApp = await startOriginCheckApp();
	// Vite's port joins once Vite is up: its HMR client port is the D Worker's.
	const appPorts = new Map([[ORIGIN_APP_PORT, originApp.port]]);
	appNode = await startAppNode(appPorts);
	const extraNodes = [{ ip: appNodeIp, port: appNode.node.port }];
	await Promise.all(
		reaches.map(async (reach) => {
			stacks.set(reach, await startProductionStack({ reach, extraNodes }));
		}),
	);
	viteApp = await startViteApp({
		clientPort: Number(stackFor("D").worker.url.port),
		allowedHosts: [`.${sandboxDomain}`],
	});
	appPorts.set(VITE_PORT, viteApp.port);
	// The sandbox domain resolves to the Worker's loopback address, as DNS sends it to Cloudflare.
	browser = await launchChromium([`--host-resolver-rules=MAP *.${sandboxDomain} 127.0.0.1`]);
});

afterAll(async () => {
	await browser?.close();
	await viteApp?.close();
	await Promise.all([...stacks.values()].map((stack) => stack.close()));
	await appNode?.close();
	await originApp?.close();
});

/** A sandbox on the apps' node, its route pushed to the Worker's catalog as E2B's control plane pushes it. */
async function appSandbox(stack: ProductionStack): Promise<string> {
	const id = freshId("app");
	appNode.addSandbox(id);
	const response = await fetchVia(stack.worker.url, `edge.localhost:${stack.worker.url.port}`, `/v1/sandboxes/${id}`, {
		method: "PUT",
		headers: { authorization: `Bearer ${catalogSecret}`, "content-type": "application/json" },
		body: JSON.stringify({ orchestrator_ip: appNodeIp, execution_id: "x1", ttl_seconds: 3600 }),
	});
	expect(response.status).toBe(204);
	return id;
}

/** A new page that keeps the URLs of the WebSockets it opens and what its console said. */
async function watchedPage(): Promise<{ page: Page; sockets: string[]; console: string[] }> {
	const page = await browser.newPage();
	const sockets: string[] = [];
	const logged: string[] = [];
	page.on("websocket", (socket) => sockets.push(socket.url()));
	page.on("console", (message) => logged.push(`${message.type()}: ${message.text()}`));
	return { page, sockets, console: logged };
}

describe("a Vite dev server in a sandbox (allowedHosts: ['.sandbox.example.test'], HMR through the page's origin)", () => {
	it("D: Chromium loads the app through the edge, its HMR WebSocket connects through the edge, and an edit arrives by HMR", async () => {
		const stack = stackFor("D");
		const id = await appSandbox(stack);
		const host = stack.sandboxHost(id, VITE_PORT);
		const { page, sockets, console: logged } = await watchedPage();
		const response = await page.goto(`http://${host}/`, { waitUntil: "domcontentloaded" });
		expect(response?.status()).toBe(200);
		await expect
			.poll(() => page.locator("#message").textContent(), { timeout: 20_000 })
			.toBe("Hello from Vite in a sandbox");
		// A round trip over the HMR socket: the page's sandbox:ping, the dev server's sandbox:pong.
		await expect.poll(() => page.locator("#hmr").textContent(), { timeout: 20_000 }).toBe("connected");
		// The message Vite's server sends the moment a client connects arrived too.
		await expect.poll(() => logged, { timeout: 5_000 }).toContain("debug: [vite] connected.");
		// The socket went to the page's own origin (clientPort leaves Vite's client no direct fallback),
		// and the dev server's handshake had the client's host.
		expect(sockets).toEqual([expect.stringMatching(new RegExp(`^ws://${host.replaceAll(".", "\\.")}/\\?token=`))]);
		expect(viteApp.hmrHandshakeHosts()).toContain(host);
		expect(stack.edge.hops.filter((hop) => hop.url.startsWith(`http://${host}/?token=`))).toEqual([
			expect.objectContaining({ host, outcome: expect.stringMatching(/^origin 127\.0\.0\.1:/) }),
		]);
		await page.screenshot({ path: join(screenshots, "vite-app-through-edge.png") });

		// An edit to message.js reaches the page over that socket, without a reload.
		await page.evaluate(() => {
			(globalThis as { notReloaded?: boolean }).notReloaded = true;
		});
		viteApp.setMessage("Edited, and delivered by HMR through the edge");
		await expect
			.poll(() => page.locator("#message").textContent(), { timeout: 20_000 })
			.toBe("Edited, and delivered by HMR through the edge");
		expect(await page.evaluate(() => (globalThis as { notReloaded?: boolean }).notReloaded)).toBe(true);
		expect(logged.filter((line) => line.startsWith("error:"))).toEqual([]);
		await page.close();
	});

	it("A: Vite refuses the page, for the Host it gets is the node's DNS-only name", async () => {
		const stack = stackFor("A");
		const id = await appSandbox(stack);
		const { page } = await watchedPage();
		const response = await page.goto(`http://${stack.sandboxHost(id, VITE_PORT)}/`, { waitUntil: "domcontentloaded" });
		expect(response?.status()).toBe(403);
		const hostname = appHostUnder.A.replace(/:\d+$/, "");
		expect(await page.locator("body").textContent()).toContain(
			`Blocked request. This host ("${hostname}") is not allowed.`,
		);
		await page.close();
	});
});

describe("an app that checks a WebSocket's Origin against its Host (as Jupyter and Streamlit do)", () => {
	/** Opens the app in Chromium; resolves with the page's WebSocket status once it settles, and the handshake the app saw. */
	async function openOriginApp(stack: ProductionStack, screenshot?: string) {
		const id = await appSandbox(stack);
		const host = stack.sandboxHost(id, ORIGIN_APP_PORT);
		const { page, sockets } = await watchedPage();
		const response = await page.goto(`http://${host}/`, { waitUntil: "domcontentloaded" });
		expect(response?.status()).toBe(200);
		expect(await page.title()).toBe("Origin-checking app");
		await expect
			.poll(() => page.locator("#status").textContent(), { timeout: 20_000 })
			.toMatch(/^(connected|refused)$/);
		const status = await page.locator("#status").textContent();
		const reply = await page.locator("#reply").textContent();
		if (screenshot !== undefined) await page.screenshot({ path: join(screenshots, screenshot) });
		await page.close();
		const handshakes = originApp.handshakes().filter((h) => h.origin.includes(id));
		return { host, status, reply, sockets, handshakes };
	}

	it("D: the app gets the browser's own host, so the WebSocket is accepted and answers", async () => {
		const seen = await openOriginApp(stackFor("D"), "origin-check-app-through-edge.png");
		expect(seen.status).toBe("connected");
		expect(seen.sockets).toEqual([`ws://${seen.host}/ws`]);
		expect(seen.handshakes).toEqual([{ host: seen.host, origin: `http://${seen.host}`, accepted: true }]);
		expect(seen.reply).toBe(`echo: hello from ${seen.host} (Host ${seen.host})`);
	});

	it.each(["A", "B", "C"] as const)(
		"%s: the app gets a Host other than the browser's Origin, and refuses the WebSocket",
		async (reach) => {
			const seen = await openOriginApp(stackFor(reach));
			expect(seen.status).toBe("refused");
			expect(seen.handshakes).toEqual([{ host: appHostUnder[reach], origin: `http://${seen.host}`, accepted: false }]);
		},
	);
});
