// Issue 16's keepalive case, measured as it was reported: traffic keepalive
// every 5 s, a private sandbox that pauses after 8 s without one, its owner
// sending a request a second with its traffic token for 60 s; beside it, the
// same with a stranger sending one tokenless request per interval. Counted:
// the sandbox's pauses (each one woken again by the owner's next request:
// a ResumeSandbox call), and the KeepAliveSandbox calls with and without the
// owner's token.
//
//   npm run bench:keepalive-theft           60 s
//   KEEPALIVE_THEFT_SECONDS=20 npm run bench:keepalive-theft
import { catalogSecret, freshId, sandboxHost, startE2eStack } from "../test/e2e/fixture.ts";
import { fetchVia } from "../test/e2e/http-client.ts";

const seconds = Number(process.env.KEEPALIVE_THEFT_SECONDS ?? 60);
const intervalMs = 5_000;
const timeoutMs = 8_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const env = await startE2eStack({
	resumeDelayMs: 1_000,
	workerVars: { TRAFFIC_KEEPALIVE_INTERVAL_MS: String(intervalMs) },
});

async function privateSandbox(): Promise<{ id: string; token: string }> {
	const id = freshId("theft");
	const view = await env.admin.create({ id, trafficKeepalive: true, timeoutMs, public: false });
	for (let tries = 0; tries < 50; tries++) {
		const entry = await fetchVia(env.worker.url, "edge.localhost", `/v1/sandboxes/${id}`, {
			headers: { authorization: `Bearer ${catalogSecret}` },
		});
		if (entry.status === 200) break;
		await sleep(100);
	}
	return { id, token: view.trafficAccessToken ?? "" };
}

async function scenario(withStranger: boolean) {
	const { id, token } = await privateSandbox();
	const started = Date.now();
	let stop = false;
	const stranger = (async () => {
		while (withStranger && !stop) {
			await fetchVia(env.worker.url, sandboxHost(id), "/", { headers: { "cf-connecting-ip": "203.0.113.66" } });
			await sleep(intervalMs);
		}
	})();
	const ownerStatuses: Record<number, number> = {};
	let slowest = 0;
	while (Date.now() - started < seconds * 1000) {
		const sent = Date.now();
		const response = await fetchVia(env.worker.url, sandboxHost(id), "/", {
			headers: { "e2b-traffic-access-token": token, "cf-connecting-ip": "203.0.113.7" },
		});
		slowest = Math.max(slowest, Date.now() - sent);
		ownerStatuses[response.status] = (ownerStatuses[response.status] ?? 0) + 1;
		await sleep(Math.max(0, 1000 - (Date.now() - sent)));
	}
	stop = true;
	await stranger;
	const calls = env.stack.controlPlane.keepAliveCalls().filter((call) => call.sandboxId === id);
	return {
		scenario: withStranger ? "owner and stranger" : "owner alone",
		"pauses (wakes needed)": env.stack.controlPlane.calls().filter((call) => call.sandboxId === id).length,
		"KeepAliveSandbox calls": calls.length,
		"calls with the owner's token": calls.filter((call) => call.headers["e2b-traffic-access-token"] === token).length,
		"calls without a token": calls.filter((call) => call.headers["e2b-traffic-access-token"] === undefined).length,
		"owner's statuses": JSON.stringify(ownerStatuses),
		"owner's slowest request (ms)": slowest,
	};
}

try {
	console.table(await Promise.all([scenario(false), scenario(true)]));
} finally {
	await env.close();
}
