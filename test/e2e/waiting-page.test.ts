import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type E2eStack, freshId, sandboxHost, startE2eStack } from "./fixture.ts";
import { fetchVia } from "./http-client.ts";
import { until } from "./until.ts";

// A browser navigation that waits long for a wake gets a page that follows
// the wake; every other client is held until the sandbox answers, as before.
// test/browser/ drives the page itself in a real browser.

let env: E2eStack;
const navigation = {
	accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
	"sec-fetch-mode": "navigate",
	"sec-fetch-dest": "document",
};

beforeAll(async () => {
	env = await startE2eStack({ resumeDelayMs: 1_500, workerVars: { WAITING_PAGE_AFTER_MS: "300" } });
});
afterAll(async () => {
	await env?.close();
});

async function pausedSandbox(): Promise<string> {
	const id = freshId("wp");
	await env.admin.create({ id });
	await env.admin.pause(id);
	return id;
}

function callsFor(sandboxId: string) {
	return env.stack.controlPlane.calls().filter((call) => call.sandboxId === sandboxId);
}

async function wakeStatus(id: string): Promise<Record<string, unknown>> {
	const response = await fetchVia(env.worker.url, sandboxHost(id), "/.well-known/sandbox-edge/wake");
	expect(response.status).toBe(200);
	expect(response.headers["cache-control"]).toBe("no-store");
	return response.json();
}

describe("the waiting page", () => {
	it("answers a slow wake's navigation with a self-contained page, while the wake goes on and the page can follow it", async () => {
		const id = await pausedSandbox();
		// A wake of 3.5 s (RESUME_TIMEOUT_MS is 5 s): the page (after 0.3 s) and
		// the look at the wake below come while it goes on, even on a loaded machine.
		await env.admin.setFault({ sandboxId: id, delayMs: 2_000, times: 1 });
		const page = await fetchVia(env.worker.url, sandboxHost(id), "/", { headers: navigation });
		// Before the wake ended: its call is still at the control plane.
		expect(callsFor(id).every((call) => call.finishedAt === undefined)).toBe(true);
		expect(page.status).toBe(503);
		expect(page.headers["content-type"]).toMatch(/^text\/html/);
		expect(page.headers["cache-control"]).toBe("no-store");
		const csp = String(page.headers["content-security-policy"]);
		expect(csp).toContain("default-src 'none'");
		expect(csp).toContain("connect-src 'self'");
		const nonce = /script-src 'nonce-([^']+)'/.exec(csp)?.[1];
		expect(page.text).toContain(`<script nonce="${nonce}">`);
		// Nothing from anywhere else: no URL with a scheme in it.
		expect(page.text).not.toMatch(/(src|href)="?https?:/);
		expect(page.text).toContain("/.well-known/sandbox-edge/wake");

		expect(await wakeStatus(id)).toMatchObject({ phase: "waking", forMs: expect.any(Number) });
		await until("the wake to end", async () => (await wakeStatus(id)).phase === "ready");
		const app = await fetchVia(env.worker.url, sandboxHost(id), "/", { headers: navigation });
		expect(app.status).toBe(200);
		expect(app.text).toContain(id);
		// One wake, though the navigation left before it ended.
		expect(callsFor(id)).toHaveLength(1);
		const logged = env.worker.logText();
		expect(logged).toMatch(new RegExp(`"sandboxId":"${id}","port":3000,"status":503,[^}]*"page":"waiting"`));
	});

	it("holds everyone else until the sandbox answers: fetch, API clients, HEAD", async () => {
		const id = await pausedSandbox();
		const [fetchCall, apiCall, head] = await Promise.all([
			fetchVia(env.worker.url, sandboxHost(id), "/", { headers: { accept: "text/html", "sec-fetch-mode": "cors" } }),
			fetchVia(env.worker.url, sandboxHost(id), "/headers", { headers: { accept: "application/json" } }),
			fetchVia(env.worker.url, sandboxHost(id), "/", { method: "HEAD", headers: navigation }),
		]);
		expect([fetchCall.status, apiCall.status, head.status]).toEqual([200, 200, 200]);
	});

	it("says how a failed wake ended, and a stranger's question wakes nothing", async () => {
		const failing = await pausedSandbox();
		// Slow enough that the page (after 0.3 s) comes first, even on a loaded machine.
		await env.admin.setFault({ sandboxId: failing, delayMs: 2_000, code: "NotFound", times: 1 });
		const page = await fetchVia(env.worker.url, sandboxHost(failing), "/", { headers: navigation });
		expect(page.status).toBe(503);
		const failed = await until("the failure", async () => {
			const status = await wakeStatus(failing);
			return status.phase === "failed" ? status : undefined;
		});
		expect(failed).toMatchObject({ reason: "sandbox_not_found", status: 502, message: "The sandbox was not found" });

		const untouched = await pausedSandbox();
		expect(await wakeStatus(untouched)).toEqual({ phase: "idle" });
		expect(callsFor(untouched)).toHaveLength(0);
	});
});
