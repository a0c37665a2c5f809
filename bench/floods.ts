// The flood cases of issue 6: how many ResumeSandbox calls each kind of
// unwanted traffic makes the edge send, counted at the development control
// plane. Runs the Worker in workerd, as the e2e tests do, with wrangler.toml's
// budgets. It uses only what the e2e fixture has had since the catalog API,
// so it can be copied into an older checkout to measure "before".
//
//   npm run bench:floods
import { freshId, sandboxHost, startE2eStack, startWorker } from "../test/e2e/fixture.ts";
import { fetchVia } from "../test/e2e/http-client.ts";

const env = await startE2eStack({ resumeDelayMs: 100, nodeStripsNotHereHeader: false });
const figures: Record<string, { requests: number; rpcs: number; statuses: Record<number, number> }> = {};
try {
	const rpcsFor = (ids: readonly string[]) => {
		const wanted = new Set(ids);
		return env.stack.controlPlane.calls().filter((call) => wanted.has(call.sandboxId)).length;
	};
	let clients = 0;
	// Each case from an address of its own, so that the cases do not share the per-client budget.
	const newClient = () => ({ accept: "application/json", "cf-connecting-ip": `198.51.100.${++clients}` });

	async function flood(
		name: string,
		ids: readonly string[],
		requests: number,
		concurrency: number,
		send: (i: number) => Promise<{ status: number }>,
	): Promise<void> {
		const statuses: Record<number, number> = {};
		let next = 0;
		await Promise.all(
			Array.from({ length: concurrency }, async () => {
				while (next < requests) {
					const response = await send(next++);
					statuses[response.status] = (statuses[response.status] ?? 0) + 1;
				}
			}),
		);
		figures[name] = { requests, rpcs: rpcsFor(ids), statuses };
	}

	const randomIds = Array.from({ length: 500 }, () => freshId("random"));
	const client1 = newClient();
	await flood("500 random IDs, concurrency 50", randomIds, 500, 50, (i) =>
		fetchVia(env.worker.url, sandboxHost(randomIds[i] ?? ""), "/", { headers: client1 }),
	);

	const unknown = freshId("unknown");
	const client2 = newClient();
	await flood("one unknown ID, sequential", [unknown], 500, 1, () =>
		fetchVia(env.worker.url, sandboxHost(unknown), "/", { headers: client2 }),
	);

	for (const [name, token] of [
		["a private paused sandbox without its token", () => undefined],
		["a private paused sandbox, a different wrong token each time", (i: number) => `wrong-${i}`],
	] as const) {
		const id = freshId("private");
		await env.admin.create({ id, public: false });
		await env.admin.pause(id);
		const client = newClient();
		await flood(name, [id], 200, 1, (i) => {
			const value = token(i);
			const headers = value === undefined ? client : { ...client, "e2b-traffic-access-token": value };
			return fetchVia(env.worker.url, sandboxHost(id), "/", { headers });
		});
	}

	const forger = freshId("forger");
	await env.admin.create({ id: forger });
	const client3 = newClient();
	await flood("an app answering 502 with the not-here header", [forger], 100, 1, () =>
		fetchVia(env.worker.url, sandboxHost(forger), "/status/502?header=X-E2b-Sandbox-Not-Found:1", {
			headers: client3,
		}),
	);

	const down = await startWorker({ ...env.vars, NODE_ORIGIN_TEMPLATE: "http://{ip}:9" });
	try {
		const id = freshId("down");
		await env.admin.create({ id });
		await env.admin.pause(id);
		const client = newClient();
		await flood("a paused sandbox whose node is down, sequential", [id], 50, 1, () =>
			fetchVia(down.url, sandboxHost(id), "/", { headers: client }),
		);
	} finally {
		await down.close();
	}
} finally {
	await env.close();
}

console.table(
	Object.entries(figures).map(([flood, { requests, rpcs, statuses }]) => ({
		flood,
		requests,
		"ResumeSandbox calls": rpcs,
		statuses: JSON.stringify(statuses),
	})),
);
