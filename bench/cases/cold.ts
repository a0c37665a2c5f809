// Wakes: requests for paused sandboxes, all sent at one instant, against
// the floor: the same requests through the pass-through Worker to a node
// that waits D before it answers, D being the control plane's resume time.
// Routes come from ResumeSandbox alone here (the control plane's catalog
// writes are off), so each wake is one RPC, counted at the control plane.
import type { Agent } from "node:http";
import { maxConcurrentCalls } from "../../dev/call-overlap.ts";
import { type BurstRequest, type BurstResult, burst, firstBytesMs, warmAgent } from "../harness/clients.ts";
import { type CaseResult, type Context, rpcsFor, sandboxHost } from "../harness/context.ts";
import { atMost, fixed, infoRow, ms, type Row, row, signedMs } from "../harness/report.ts";
import { percentile, spread, sum, tally } from "../harness/stats.ts";

const now = () => performance.timeOrigin + performance.now();

async function createPaused(context: Context, ids: readonly string[]): Promise<void> {
	// Created paused: it has a snapshot, so ResumeSandbox resumes it (after D).
	// No ports: a resume starts no servers, so that it takes D and no more.
	for (const id of ids) await context.stack.controlPlane.sandboxes.create({ id, state: "paused", ports: [] });
}

async function removeAll(context: Context, ids: readonly string[]): Promise<void> {
	for (const id of ids) await context.stack.controlPlane.sandboxes.remove(id);
}

async function agents(context: Context, count: number): Promise<{ proxy: Agent; floor: Agent; destroy(): void }> {
	const [proxy, floor] = await Promise.all([
		warmAgent(context.proxy, count, context.hotHost, "/bench"),
		warmAgent(context.passThrough, count, context.hotHost, "/bench"),
	]);
	return {
		proxy,
		floor,
		destroy() {
			proxy.destroy();
			floor.destroy();
		},
	};
}

function floorRequests(context: Context, count: number): BurstRequest[] {
	const path = `/wait?ms=${context.profile.resumeDelayMs}`;
	return Array.from({ length: count }, () => ({ host: context.hotHost, path }));
}

/** Runs the proxy's burst and the floor's, in an order that alternates by round. */
async function pair(
	round: number,
	proxyBurst: () => Promise<BurstResult>,
	floorBurst: () => Promise<BurstResult>,
): Promise<{ proxy: BurstResult; floor: BurstResult }> {
	if (round % 2 === 0) {
		const proxy = await proxyBurst();
		return { proxy, floor: await floorBurst() };
	}
	const floor = await floorBurst();
	return { proxy: await proxyBurst(), floor };
}

function coldNotes(D: number): string[] {
	return [
		`cold: D = ${D} ms is the development control plane's resume time (its resumeDelayMs); the floor is the same requests, at the same instant, through the pass-through Worker to a node that waits D (GET /wait?ms=${D}). Routes come from ResumeSandbox alone (the control plane's catalog writes are off), each sandbox is created paused with a snapshot, and RPCs are counted at the control plane. The client's connections are opened beforehand (a request each to the hot route), so that neither side pays a burst of TCP handshakes.`,
	];
}

export async function coldOne(context: Context): Promise<CaseResult> {
	const started = performance.now();
	const { rounds, requests } = context.profile.coldOne;
	const D = context.profile.resumeDelayMs;
	const perRound: {
		proxyP50: number;
		proxyP99: number;
		floorP50: number;
		floorP99: number;
		rpcs: number;
		ok: number;
		statuses: Record<string, number>;
		rpcStartMs: number;
		rpcMs: number;
		firstAnswerAfterRpcMs: number;
	}[] = [];
	for (let round = 0; round < rounds; round++) {
		const id = context.freshId("coldone");
		await createPaused(context, [id]);
		const pool = await agents(context, requests);
		try {
			const client = context.freshClientIp();
			const wake = Array.from({ length: requests }, () => ({
				host: sandboxHost(id),
				path: "/bench",
				headers: { "cf-connecting-ip": client },
			}));
			let sentAt = 0;
			const { proxy, floor } = await pair(
				round,
				() => {
					sentAt = now();
					return burst(context.proxy, wake, pool.proxy);
				},
				() => burst(context.passThrough, floorRequests(context, requests), pool.floor),
			);
			const calls = rpcsFor(context, [id]);
			const first = calls[0];
			const proxyFirstBytes = firstBytesMs(proxy);
			const floorFirstBytes = firstBytesMs(floor);
			const statuses = tally(proxy.answers.map((a) => a.status));
			perRound.push({
				proxyP50: percentile(proxyFirstBytes, 50),
				proxyP99: percentile(proxyFirstBytes, 99),
				floorP50: percentile(floorFirstBytes, 50),
				floorP99: percentile(floorFirstBytes, 99),
				rpcs: calls.length,
				ok: statuses["200"] ?? 0,
				statuses,
				rpcStartMs: first === undefined ? Number.NaN : first.at - sentAt,
				rpcMs: first?.finishedAt === undefined ? Number.NaN : first.finishedAt - first.at,
				firstAnswerAfterRpcMs:
					first?.finishedAt === undefined ? Number.NaN : sentAt + (proxyFirstBytes[0] ?? 0) - first.finishedAt,
			});
		} finally {
			pool.destroy();
			await removeAll(context, [id]);
		}
	}
	const name = `cold, one sandbox (${requests} requests, D = ${D} ms)`;
	const of = (pick: (r: (typeof perRound)[number]) => number) => spread(perRound.map(pick));
	const ok = sum(perRound.map((r) => r.ok));
	const rows: Row[] = [
		row(
			name,
			"first byte p50 over the floor's",
			of((r) => r.proxyP50 - r.floorP50),
			signedMs,
			"≤ +20 ms",
			atMost(20, ms),
		),
		row(
			name,
			"first byte p99 over the floor's",
			of((r) => r.proxyP99 - r.floorP99),
			signedMs,
			"≤ +100 ms",
			atMost(100, ms),
		),
		row(
			name,
			"first byte p50: proxy",
			of((r) => r.proxyP50),
			ms,
		),
		row(
			name,
			"first byte p50: floor",
			of((r) => r.floorP50),
			ms,
		),
		row(
			name,
			"first byte p99: proxy",
			of((r) => r.proxyP99),
			ms,
		),
		row(
			name,
			"first byte p99: floor",
			of((r) => r.floorP99),
			ms,
		),
		row(
			name,
			"ResumeSandbox calls per wake",
			of((r) => r.rpcs),
			fixed(0),
			"1",
			(v) => ({ met: v === 1, by: `${v - 1} calls` }),
		),
		infoRow(
			name,
			"requests answered 200",
			`${ok} / ${rounds * requests}`,
			"all",
			ok === rounds * requests ? "met" : "MISSED",
		),
		row(
			name,
			"first request sent → RPC received",
			of((r) => r.rpcStartMs),
			ms,
		),
		row(
			name,
			"RPC received → answered (D)",
			of((r) => r.rpcMs),
			ms,
		),
		row(
			name,
			"RPC answered → first byte of the first answer",
			of((r) => r.firstAnswerAfterRpcMs),
			ms,
		),
	];
	return {
		name: "cold, one sandbox",
		rows,
		notes: coldNotes(D),
		checks: [
			{ what: "cold one: ResumeSandbox calls", expected: rounds, actual: sum(perRound.map((r) => r.rpcs)) },
			{ what: "cold one: answers 200", expected: rounds * requests, actual: ok },
		],
		data: { rounds, requests, resumeDelayMs: D, perRound },
		seconds: (performance.now() - started) / 1000,
	};
}

export async function coldMany(context: Context): Promise<CaseResult> {
	const started = performance.now();
	const { rounds, sandboxes, requestsPerSandbox } = context.profile.coldMany;
	const D = context.profile.resumeDelayMs;
	const total = sandboxes * requestsPerSandbox;
	const perRound: {
		proxyBatchMs: number;
		floorBatchMs: number;
		proxyP50: number;
		floorP50: number;
		rpcs: number;
		sandboxesWithOneRpc: number;
		maxConcurrentRpcs: number;
		rpcStartSpreadMs: number;
		ok: number;
		statuses: Record<string, number>;
	}[] = [];
	for (let round = 0; round < rounds; round++) {
		const ids = Array.from({ length: sandboxes }, () => context.freshId("coldmany"));
		await createPaused(context, ids);
		const pool = await agents(context, total);
		try {
			// Each sandbox's requests come from a client of its own, as from its
			// own user: one client waking 100 sandboxes would meet the per-client
			// budget (30 per 10 s), which is the abuse case's subject.
			const clients = ids.map(() => context.freshClientIp());
			const wake: BurstRequest[] = [];
			for (let r = 0; r < requestsPerSandbox; r++) {
				ids.forEach((id, i) => {
					wake.push({ host: sandboxHost(id), path: "/bench", headers: { "cf-connecting-ip": clients[i] ?? "" } });
				});
			}
			const { proxy, floor } = await pair(
				round,
				() => burst(context.proxy, wake, pool.proxy),
				() => burst(context.passThrough, floorRequests(context, total), pool.floor),
			);
			const calls = rpcsFor(context, ids);
			const perId = tally(calls.map((call) => call.sandboxId));
			const statuses = tally(proxy.answers.map((a) => a.status));
			perRound.push({
				proxyBatchMs: proxy.batchMs,
				floorBatchMs: floor.batchMs,
				proxyP50: percentile(firstBytesMs(proxy), 50),
				floorP50: percentile(firstBytesMs(floor), 50),
				rpcs: calls.length,
				sandboxesWithOneRpc: ids.filter((id) => perId[id] === 1).length,
				maxConcurrentRpcs: maxConcurrentCalls(calls),
				rpcStartSpreadMs: Math.max(...calls.map((c) => c.at)) - Math.min(...calls.map((c) => c.at)),
				ok: statuses["200"] ?? 0,
				statuses,
			});
		} finally {
			pool.destroy();
			await removeAll(context, ids);
		}
	}
	const name = `cold, many sandboxes (${sandboxes} × ${requestsPerSandbox}, D = ${D} ms)`;
	const of = (pick: (r: (typeof perRound)[number]) => number) => spread(perRound.map(pick));
	const ok = sum(perRound.map((r) => r.ok));
	const rows: Row[] = [
		row(
			name,
			"batch done, over the floor's",
			of((r) => r.proxyBatchMs - r.floorBatchMs),
			signedMs,
			`≤ +${0.5 * D} ms (0.5 × D)`,
			atMost(0.5 * D, ms),
		),
		row(
			name,
			"batch done: proxy",
			of((r) => r.proxyBatchMs),
			ms,
		),
		row(
			name,
			"batch done: floor",
			of((r) => r.floorBatchMs),
			ms,
		),
		row(
			name,
			"first byte p50: proxy",
			of((r) => r.proxyP50),
			ms,
		),
		row(
			name,
			"first byte p50: floor",
			of((r) => r.floorP50),
			ms,
		),
		row(
			name,
			"ResumeSandbox calls",
			of((r) => r.rpcs),
			fixed(0),
			`${sandboxes}, one per sandbox`,
			(v) => ({
				met: v === sandboxes && perRound.every((r) => r.sandboxesWithOneRpc === sandboxes),
				by: `${v - sandboxes} calls`,
			}),
		),
		row(
			name,
			"most ResumeSandbox calls in flight at once",
			of((r) => r.maxConcurrentRpcs),
			fixed(0),
			`${sandboxes}`,
			(v) => ({
				met: v === sandboxes,
				by: `${sandboxes - v} fewer`,
			}),
		),
		row(
			name,
			"RPCs received, first to last",
			of((r) => r.rpcStartSpreadMs),
			ms,
		),
		infoRow(
			name,
			"requests answered 200",
			`${ok} / ${rounds * total}`,
			"all",
			ok === rounds * total ? "met" : "MISSED",
		),
	];
	return {
		name: "cold, many sandboxes",
		rows,
		notes: [
			"cold, many: each sandbox's requests come from a client address of its own (CF-Connecting-IP), as from its own user: the budgets stay wrangler.toml's, and one client waking 100 sandboxes would meet the per-client one (30 per 10 s). Batch done: from the first request sent to the last answer's end.",
		],
		checks: [
			{
				what: "cold many: ResumeSandbox calls",
				expected: rounds * sandboxes,
				actual: sum(perRound.map((r) => r.rpcs)),
			},
			{
				what: "cold many: sandboxes woken with exactly one call",
				expected: rounds * sandboxes,
				actual: sum(perRound.map((r) => r.sandboxesWithOneRpc)),
			},
			{ what: "cold many: answers 200", expected: rounds * total, actual: ok },
		],
		data: { rounds, sandboxes, requestsPerSandbox, resumeDelayMs: D, perRound },
		seconds: (performance.now() - started) / 1000,
	};
}
