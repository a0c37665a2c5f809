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

	// Issue 16: one IPv6 subscriber rotating through its /64.
	const v6Ids = Array.from({ length: 1000 }, () => freshId("v6"));
	const v6Client = (i: number) => ({
		accept: "application/json",
		"cf-connecting-ip": `2001:db8:16:1:${(i % 512).toString(16)}:${((i * 7919) % 65536).toString(16)}::1`,
	});
	await flood("1,000 random IDs from 512 addresses of one IPv6 /64, concurrency 50", v6Ids, 1000, 50, (i) =>
		fetchVia(env.worker.url, sandboxHost(v6Ids[i] ?? ""), "/", { headers: v6Client(i) }),
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

	// Issue 16: GETs with 1 MiB bodies, one every 200 ms, beside a bystander's
	// requests to the same running sandbox: the bystander's failures are counted.
	{
		const id = freshId("bystander");
		await env.admin.create({ id });
		const body = Buffer.alloc(1024 * 1024, 0x61);
		const client = newClient();
		let stop = false;
		const hostile: Promise<{ status: number }>[] = [];
		const sender = (async () => {
			while (!stop) {
				hostile.push(
					fetchVia(env.worker.url, sandboxHost(id), "/", { headers: client, body }).catch(() => ({ status: 0 })),
				);
				await new Promise((resolve) => setTimeout(resolve, 200));
			}
		})();
		const bystander: Record<number, number> = {};
		for (let i = 0; i < 200; i++) {
			const response = await fetchVia(env.worker.url, sandboxHost(id), `/headers?i=${i}`);
			bystander[response.status] = (bystander[response.status] ?? 0) + 1;
		}
		stop = true;
		await sender;
		const hostileStatuses: Record<number, number> = {};
		for (const { status } of await Promise.all(hostile)) hostileStatuses[status] = (hostileStatuses[status] ?? 0) + 1;
		figures[`a bystander's 200 requests, beside ${hostile.length} GETs with 1 MiB bodies`] = {
			requests: 200,
			rpcs: env.stack.controlPlane.calls().filter((call) => call.sandboxId === id).length,
			statuses: bystander,
		};
		figures["  those GETs with bodies"] = { requests: hostile.length, rpcs: 0, statuses: hostileStatuses };
	}

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
