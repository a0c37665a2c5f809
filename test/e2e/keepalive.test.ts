import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiSecret, catalogSecret, type E2eStack, freshId, sandboxHost, startE2eStack } from "./fixture.ts";
import { fetchVia } from "./http-client.ts";
import { until } from "./until.ts";

// Traffic keepalive against the development control plane, which pauses a
// sandbox at its end time unless KeepAliveSandbox pushes that back, as E2B's
// does. The control plane writes each route to the edge's catalog with its
// team_id and traffic_keepalive, as E2B's does.

const intervalMs = 1_000;
let env: E2eStack;

beforeAll(async () => {
	env = await startE2eStack({
		resumeDelayMs: 100,
		workerVars: { TRAFFIC_KEEPALIVE_INTERVAL_MS: String(intervalMs) },
	});
});
afterAll(async () => {
	await env?.close();
});

function keepAliveCallsFor(sandboxId: string) {
	return env.stack.controlPlane.keepAliveCalls().filter((call) => call.sandboxId === sandboxId);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A running sandbox whose route the control plane has pushed to the edge. */
async function runningSandbox(options: { trafficKeepalive: boolean; timeoutMs: number; public?: boolean }) {
	const id = freshId("ka");
	const view = await env.admin.create({ id, ...options });
	await until("the catalog push", async () => ((await catalogEntry(id)) === undefined ? undefined : true));
	return { id, view };
}

async function catalogEntry(id: string): Promise<Record<string, unknown> | undefined> {
	const response = await fetchVia(env.worker.url, "edge.localhost", `/v1/sandboxes/${id}`, {
		headers: { authorization: `Bearer ${catalogSecret}` },
	});
	return response.status === 200 ? response.json() : undefined;
}

async function get(id: string, headers: Record<string, string> = {}) {
	return fetchVia(env.worker.url, sandboxHost(id), "/", { headers });
}

describe("traffic keepalive", () => {
	it("keeps a sandbox in use awake across its timeout, with one call per interval however much traffic", async () => {
		// Three intervals: the calls come once per interval, and a loaded machine
		// may delay one by a good part of an interval.
		const timeoutMs = 3_000;
		const { id, view } = await runningSandbox({ trafficKeepalive: true, timeoutMs });
		const started = Date.now();
		let requests = 0;
		// Three timeouts of steady traffic, with a burst of 100 requests now and
		// then, and at least 500 requests however long a loaded machine takes.
		while (Date.now() - started < 3 * timeoutMs || requests <= 500) {
			const burst = requests % 10 === 0 ? 100 : 1;
			const responses = await Promise.all(Array.from({ length: burst }, () => get(id)));
			expect(responses.every((r) => r.status === 200)).toBe(true);
			requests += burst;
			await sleep(100);
		}
		const elapsed = Date.now() - started;
		const sandbox = await env.admin.get(id);
		expect(sandbox.state).toBe("running");
		expect(sandbox.endTime ?? 0).toBeGreaterThan(Date.now());
		// No resume was ever needed: it never paused.
		expect(env.stack.controlPlane.calls().filter((call) => call.sandboxId === id)).toHaveLength(0);

		const calls = keepAliveCallsFor(id);
		expect(requests).toBeGreaterThan(500);
		// At least one per timeout, or it would have paused; at most one per interval.
		expect(calls.length).toBeGreaterThanOrEqual(Math.floor(elapsed / timeoutMs));
		expect(calls.length).toBeLessThanOrEqual(Math.ceil(elapsed / intervalMs) + 1);
		// Timed where the calls arrive: a loaded machine may deliver one late
		// and the next on time, so the gap between arrivals can be shorter than
		// the interval between the object's decisions (one per interval).
		for (const [a, b] of calls.slice(1).map((call, i) => [calls[i]?.at ?? 0, call.at])) {
			expect((b ?? 0) - (a ?? 0)).toBeGreaterThanOrEqual(intervalMs / 2);
		}
		// As a resume: the edge's credential, the team, and the request's port.
		expect(calls[0]?.teamId).toBe(view.teamId);
		expect(calls[0]?.headers["x-e2b-client-proxy-auth"]).toBe(apiSecret);
		expect(calls[0]?.headers["e2b-sandbox-request-port"]).toBe("3000");
	});

	it("lets an idle sandbox pause at its timeout, and calls nothing for a sandbox without keepalive", async () => {
		const idle = await runningSandbox({ trafficKeepalive: true, timeoutMs: 1_000 });
		const without = await runningSandbox({ trafficKeepalive: false, timeoutMs: 60_000 });
		for (let i = 0; i < 5; i++) expect((await get(without.id)).status).toBe(200);
		await until("the idle sandbox to pause", async () =>
			(await env.admin.get(idle.id)).state === "paused" ? true : undefined,
		);
		expect(keepAliveCallsFor(idle.id)).toHaveLength(0);
		expect(keepAliveCallsFor(without.id)).toHaveLength(0);
		// Its route went with the pause, as E2B's catalog delete does.
		expect(await catalogEntry(idle.id)).toBeUndefined();
	});

	it("carries the caller's traffic token, as a resume does", async () => {
		const { id, view } = await runningSandbox({ trafficKeepalive: true, timeoutMs: 60_000, public: false });
		const token = view.trafficAccessToken ?? "";
		expect((await get(id, { "e2b-traffic-access-token": token })).status).toBe(200);
		const call = await until("the keepalive call", async () => keepAliveCallsFor(id)[0]);
		expect(call.headers["e2b-traffic-access-token"]).toBe(token);
		const logged = new RegExp(`"event":"keepalive","sandboxId":"${id}","outcome":"ok"`);
		await until("the keepalive's log line", async () => (logged.test(env.worker.logText()) ? true : undefined));
	});

	it("turns keepalive off for the entry when the control plane refuses, until the route is pushed again", async () => {
		const { id } = await runningSandbox({ trafficKeepalive: true, timeoutMs: 60_000 });
		expect((await get(id)).status).toBe(200);
		await until("the first keepalive call", async () => keepAliveCallsFor(id)[0]);
		// E2B's policy can change after the catalog entry was written: then
		// KeepAliveSandbox answers FailedPrecondition.
		await env.admin.update(id, { trafficKeepalive: false });
		await sleep(intervalMs + 100);
		expect((await get(id)).status).toBe(200);
		await until("the refused call", async () => (keepAliveCallsFor(id).length === 2 ? true : undefined));
		await until("keepalive off in the catalog", async () =>
			(await catalogEntry(id))?.traffic_keepalive === false ? true : undefined,
		);
		for (let round = 0; round < 3; round++) {
			await sleep(intervalMs + 100);
			expect((await get(id)).status).toBe(200);
		}
		await sleep(300);
		expect(keepAliveCallsFor(id)).toHaveLength(2);
		expect(env.worker.logText()).toMatch(
			new RegExp(`"event":"keepalive","sandboxId":"${id}","outcome":"off","reason":"FailedPrecondition"`),
		);
	});

	it("does not let a stranger without the traffic token call it, turn it off or take the owner's turn", async () => {
		const { id, view } = await runningSandbox({ trafficKeepalive: true, timeoutMs: 60_000, public: false });
		// The node refuses the stranger's requests: they are not traffic, and make no call.
		expect((await get(id, { "e2b-traffic-access-token": "a-strangers-guess" })).status).toBe(403);
		expect((await get(id)).status).toBe(403);
		// The owner's request, in the same interval, makes the interval's call, with the owner's token.
		expect((await get(id, { "e2b-traffic-access-token": view.trafficAccessToken ?? "" })).status).toBe(200);
		const call = await until("the owner's call", async () => keepAliveCallsFor(id)[0]);
		expect(call.headers["e2b-traffic-access-token"]).toBe(view.trafficAccessToken);
		expect(keepAliveCallsFor(id)).toHaveLength(1);
		const ok = new RegExp(`"event":"keepalive","sandboxId":"${id}","outcome":"ok"`);
		await until("the owner's log line", async () => (ok.test(env.worker.logText()) ? true : undefined));
		expect((await catalogEntry(id))?.traffic_keepalive).toBe(true);
	});

	it("tries again at the next interval after a failure that is not a refusal", async () => {
		const { id } = await runningSandbox({ trafficKeepalive: true, timeoutMs: 60_000 });
		await env.admin.setFault({ rpc: "KeepAliveSandbox", sandboxId: id, code: "Unavailable", times: 1 });
		expect((await get(id)).status).toBe(200);
		await until("the failed call", async () => keepAliveCallsFor(id)[0]);
		await sleep(intervalMs + 100);
		expect((await get(id)).status).toBe(200);
		await until("the next call", async () => (keepAliveCallsFor(id).length === 2 ? true : undefined));
		expect((await catalogEntry(id))?.traffic_keepalive).toBe(true);
		const logged = new RegExp(`"event":"keepalive","sandboxId":"${id}","outcome":"failed","reason":"Unavailable"`);
		await until("the failure's log line", async () => (logged.test(env.worker.logText()) ? true : undefined));
	});
});
