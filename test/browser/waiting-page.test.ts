import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type E2eStack, freshId, startE2eStack } from "../e2e/fixture.ts";
import { launchChromium, screenshots } from "./chromium.ts";

// The waiting page in Debian's chromium: it appears while a slow wake goes
// on, then the app loads by itself; a failed wake shows its error.

let env: E2eStack;
let browser: Browser;

beforeAll(async () => {
	// Wakes held long by the tests below; RESUME_TIMEOUT_MS past them.
	env = await startE2eStack({
		resumeDelayMs: 2_500,
		workerVars: { WAITING_PAGE_AFTER_MS: "500", RESUME_TIMEOUT_MS: "30000" },
	});
	browser = await launchChromium();
});
afterAll(async () => {
	await browser?.close();
	await env?.close();
});

async function pausedSandbox(): Promise<string> {
	const id = freshId("br");
	await env.admin.create({ id });
	await env.admin.pause(id);
	return id;
}

function appUrl(id: string): string {
	// Chromium resolves every *.localhost name to the loopback address itself.
	return `http://3000-${id}.localhost:${env.worker.url.port}/`;
}

describe("a browser opening a paused sandbox", () => {
	it("sees the waiting page follow the wake, then the app, with one resume", async () => {
		const id = await pausedSandbox();
		// A wake of 6.5 s: the page (after 0.5 s) loads, and shows it going on,
		// well before it ends, even on a loaded machine.
		await env.admin.setFault({ sandboxId: id, delayMs: 4_000, times: 1 });
		const page = await browser.newPage();
		const violations: string[] = [];
		page.on("console", (message) => {
			if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
		});
		await page.goto(appUrl(id), { waitUntil: "domcontentloaded" });
		expect(await page.title()).toBe(`Waking sandbox ${id}`);
		await expect
			.poll(() => page.locator("#phase").textContent(), { timeout: 10_000 })
			.toMatch(/Resuming the sandbox: \d+ s so far/);
		await page.screenshot({ path: join(screenshots, "waiting-page.png") });

		// The page reloads itself once the sandbox is ready: the app's own page.
		// (Polled as a whole: while the reload is under way, the content cannot be read.)
		const appLoaded = async () => {
			try {
				const html = await page.content();
				return html.includes(id) && !html.includes("Waking sandbox");
			} catch {
				return false;
			}
		};
		await expect.poll(appLoaded, { timeout: 30_000 }).toBe(true);
		expect(env.stack.controlPlane.calls().filter((call) => call.sandboxId === id)).toHaveLength(1);
		expect(violations).toEqual([]);
		await page.close();
	});

	it("sees the waiting page turn into an error when the wake fails", async () => {
		const id = await pausedSandbox();
		// Slow enough that the page (after 0.5 s) loads first, even on a loaded machine.
		await env.admin.setFault({ sandboxId: id, delayMs: 4_000, code: "NotFound", times: 1 });
		const page = await browser.newPage();
		await page.goto(appUrl(id), { waitUntil: "domcontentloaded" });
		expect(await page.title()).toBe(`Waking sandbox ${id}`);
		await expect
			.poll(() => page.locator("#title").textContent(), { timeout: 20_000 })
			.toBe("The sandbox could not be woken");
		expect(await page.locator("#phase").textContent()).toBe("The sandbox was not found (sandbox_not_found)");
		await page.screenshot({ path: join(screenshots, "waiting-page-failed.png") });

		// Trying again meets the edge's own error page for the sandbox.
		const retry = await page.goto(appUrl(id), { waitUntil: "domcontentloaded" });
		expect(retry?.status()).toBe(502);
		expect(await page.content()).toContain("The sandbox was not found");
		await page.close();
	});
});
