import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { catalogSecret, type E2eStack, freshId, sandboxHost, startE2eStack } from "./fixture.ts";
import { fetchVia } from "./http-client.ts";
import { until } from "./until.ts";

// A private sandbox with traffic keepalive, its owner using it steadily and a
// stranger sending tokenless requests alongside: the stranger's refused
// requests are not traffic, so every KeepAliveSandbox call carries the
// owner's token, and the sandbox never pauses under its owner.

const intervalMs = 1_000;
const timeoutMs = 2_500;
let env: E2eStack;

beforeAll(async () => {
	env = await startE2eStack({ resumeDelayMs: 100, workerVars: { TRAFFIC_KEEPALIVE_INTERVAL_MS: String(intervalMs) } });
});
afterAll(async () => {
	await env?.close();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function privateSandbox() {
	const id = freshId("kas");
	const view = await env.admin.create({ id, trafficKeepalive: true, timeoutMs, public: false });
	await until("the catalog push", async () => {
		const response = await fetchVia(env.worker.url, "edge.localhost", `/v1/sandboxes/${id}`, {
			headers: { authorization: `Bearer ${catalogSecret}` },
		});
		return response.status === 200 ? true : undefined;
	});
	return { id, token: view.trafficAccessToken ?? "" };
}

describe("traffic keepalive with a stranger at the door", () => {
	it("never pauses a private sandbox in use: the stranger's refused requests make no keepalive call", async () => {
		const { id, token } = await privateSandbox();
		const owner = { "e2b-traffic-access-token": token };
		const started = Date.now();
		const ownerStatuses: number[] = [];
		const strangerStatuses: number[] = [];
		let stop = false;
		// The stranger: a tokenless request every 150 ms, one with a guessed token every other time.
		const stranger = (async () => {
			for (let i = 0; !stop; i++) {
				const headers: Record<string, string> = i % 2 === 0 ? {} : { "e2b-traffic-access-token": "a-guess" };
				strangerStatuses.push((await fetchVia(env.worker.url, sandboxHost(id), "/", { headers })).status);
				await sleep(150);
			}
		})();
		// The owner: a request every 250 ms, over three of the sandbox's timeouts,
		// and until the stranger has sent more than 10 however slowly they go.
		while (Date.now() - started < 3 * timeoutMs || strangerStatuses.length <= 10) {
			ownerStatuses.push((await fetchVia(env.worker.url, sandboxHost(id), "/", { headers: owner })).status);
			await sleep(250);
		}
		stop = true;
		await stranger;

		expect(strangerStatuses.length).toBeGreaterThan(10);
		expect(new Set(strangerStatuses)).toEqual(new Set([403]));
		expect(ownerStatuses.every((status) => status === 200)).toBe(true);
		// Never paused, so never woken.
		expect((await env.admin.get(id)).state).toBe("running");
		expect(env.stack.controlPlane.calls().filter((call) => call.sandboxId === id)).toHaveLength(0);
		const calls = env.stack.controlPlane.keepAliveCalls().filter((call) => call.sandboxId === id);
		expect(calls.length).toBeGreaterThanOrEqual(2);
		for (const call of calls) expect(call.headers["e2b-traffic-access-token"]).toBe(token);
	});
});
