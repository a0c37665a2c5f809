// Isolate start: what a new isolate costs its first requests. Each trial
// starts a fresh proxy (a new workerd) on Durable Object storage that
// already holds a sandbox's route, and a fresh pass-through Worker, and
// times each one's start and first requests; then, in the same fresh proxy,
// a first wake and a second, to see what the first one pays for loading
// the control-plane client.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CaseResult, type Context, putRoute, rpcsFor, sandboxHost, send } from "../harness/context.ts";
import { infoRow, ms, type Row, row, signedMs } from "../harness/report.ts";
import { spread, sum } from "../harness/stats.ts";
import { type RunningWorker, startPassThrough, startProxy } from "../harness/workers.ts";

const now = () => performance.timeOrigin + performance.now();
const requestsPerWorker = 3;

/** GETs one after another, each timed to its full answer: the first pays for the new isolate, the later ones are its cache's. */
async function firstRequests(worker: RunningWorker, host: string): Promise<{ ms: number[]; ok: number }> {
	const times: number[] = [];
	let ok = 0;
	for (let i = 0; i < requestsPerWorker; i++) {
		const sent = performance.now();
		const answer = await send(worker.url, host, "/bench?q=1");
		times.push(performance.now() - sent);
		if (answer.status === 200) ok++;
	}
	return { ms: times, ok };
}

/** One request for a paused sandbox: from sending it to the control plane receiving ResumeSandbox. */
async function wake(context: Context, proxy: RunningWorker): Promise<{ rpcMs: number; rpcs: number; ok: number }> {
	const id = context.freshId("start");
	// As in cold.ts: paused with a snapshot and no ports, so that the resume takes D and no more.
	await context.stack.controlPlane.sandboxes.create({ id, state: "paused", ports: [] });
	try {
		// A client address of its own, so that no budget of an earlier request is in the way.
		const headers = { "cf-connecting-ip": context.freshClientIp() };
		const sentAt = now();
		const answer = await send(proxy.url, sandboxHost(id), "/bench", { headers });
		const calls = rpcsFor(context, [id]);
		return { rpcMs: (calls[0]?.at ?? Number.NaN) - sentAt, rpcs: calls.length, ok: answer.status === 200 ? 1 : 0 };
	} finally {
		await context.stack.controlPlane.sandboxes.remove(id);
	}
}

export async function isolateStart(context: Context): Promise<CaseResult> {
	const started = performance.now();
	const { trials } = context.profile.isolateStart;
	const D = context.profile.resumeDelayMs;
	const id = context.freshId("start");
	const host = sandboxHost(id);
	// The case's own storage, which its proxies share: the route is written
	// once, and each fresh proxy finds it in its object's SQLite file.
	const storageDir = mkdtempSync(
		join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "sandbox-edge-proxy-bench-start-"),
	);
	const freshProxy = (name: string) =>
		startProxy({
			name,
			scriptPath: context.build.scriptPath,
			controlPlaneUrl: context.stack.controlPlaneUrl,
			nodeOriginTemplate: `http://{ip}:${context.node.port}`,
			// No Cache API tier: the first request asks the sandbox's object, as
			// a new isolate does where the location has no entry.
			vars: { LOCATION_CACHE_TTL_MS: "0" },
			storageDir,
		});
	const perTrial: {
		proxy: { startMs: number; requestsMs: number[]; wakes: { rpcMs: number; rpcs: number; ok: number }[] };
		passThrough: { startMs: number; requestsMs: number[] };
		ok: number;
	}[] = [];
	try {
		const seeder = await freshProxy("proxy, writing the route");
		try {
			await putRoute(seeder, id, "127.0.0.1");
		} finally {
			await seeder.dispose();
		}
		for (let trial = 0; trial < trials; trial++) {
			let ok = 0;
			const proxySide = async () => {
				const proxy = await freshProxy(`proxy, fresh start ${trial + 1}`);
				try {
					const requests = await firstRequests(proxy, host);
					// One after the other: the second finds the client's modules loaded by the first.
					const wakes = [await wake(context, proxy), await wake(context, proxy)];
					ok += requests.ok + sum(wakes.map((w) => w.ok));
					return { startMs: proxy.startSeconds * 1000, requestsMs: requests.ms, wakes };
				} finally {
					await proxy.dispose();
				}
			};
			const passSide = async () => {
				const pass = await startPassThrough({
					name: `pass-through, fresh start ${trial + 1}`,
					nodeOrigin: context.node.origin,
				});
				try {
					const requests = await firstRequests(pass, host);
					ok += requests.ok;
					return { startMs: pass.startSeconds * 1000, requestsMs: requests.ms };
				} finally {
					await pass.dispose();
				}
			};
			// The order alternates by trial, so that neither side always starts on a machine the other just left.
			if (trial % 2 === 0) {
				const proxy = await proxySide();
				perTrial.push({ proxy, passThrough: await passSide(), ok });
			} else {
				const passThrough = await passSide();
				perTrial.push({ proxy: await proxySide(), passThrough, ok });
			}
		}
	} finally {
		rmSync(storageDir, { recursive: true, force: true });
	}
	const name = `isolate start (${trials} trial${trials === 1 ? "" : "s"}, D = ${D} ms)`;
	const of = (pick: (t: (typeof perTrial)[number]) => number) => spread(perTrial.map(pick));
	const request = (side: "proxy" | "passThrough", i: number) => of((t) => t[side].requestsMs[i] ?? Number.NaN);
	const wakeMs = (i: number) => of((t) => t.proxy.wakes[i]?.rpcMs ?? Number.NaN);
	const ok = sum(perTrial.map((t) => t.ok));
	const expectedOk = trials * (2 * requestsPerWorker + 2);
	const wakesWithOneRpc = sum(perTrial.map((t) => t.proxy.wakes.filter((w) => w.rpcs === 1).length));
	const rows: Row[] = [
		row(
			name,
			"start to ready: proxy",
			of((t) => t.proxy.startMs),
			ms,
			"reported",
		),
		row(
			name,
			"start to ready: pass-through",
			of((t) => t.passThrough.startMs),
			ms,
			"reported",
		),
		row(name, "first request: proxy", request("proxy", 0), ms, "reported"),
		row(name, "first request: pass-through", request("passThrough", 0), ms, "reported"),
		row(
			name,
			"first request added over pass-through",
			of((t) => (t.proxy.requestsMs[0] ?? Number.NaN) - (t.passThrough.requestsMs[0] ?? Number.NaN)),
			signedMs,
			"reported",
		),
		row(name, "second request: proxy", request("proxy", 1), ms, "reported"),
		row(name, "second request: pass-through", request("passThrough", 1), ms, "reported"),
		row(name, "first wake in a new isolate: request sent → RPC received", wakeMs(0), ms, "reported"),
		row(name, "second wake in the same isolate: request sent → RPC received", wakeMs(1), ms, "reported"),
		row(
			name,
			"first wake over second (loading the control-plane client)",
			of((t) => (t.proxy.wakes[0]?.rpcMs ?? Number.NaN) - (t.proxy.wakes[1]?.rpcMs ?? Number.NaN)),
			signedMs,
			"reported",
		),
		infoRow(name, "requests answered 200", `${ok} / ${expectedOk}`, "all", ok === expectedOk ? "met" : "MISSED"),
	];
	return {
		name: "isolate start",
		rows,
		notes: [
			`isolate start: each trial starts a fresh proxy (a new workerd through Miniflare, on Durable Object storage that already holds the sandbox's route, LOCATION_CACHE_TTL_MS=0 so that its first request asks the sandbox's object, not a Cache API entry) and a fresh pass-through Worker, in an order that alternates by trial. Start to ready is from \`new Miniflare\` to ready: workerd's own start and the script's evaluation, since workerd evaluates a Worker's top level at startup; in production Cloudflare evaluates it when it makes the isolate, on the first request's path or during the TLS handshake, so there the top level is part of the first request. A request is timed to its full answer, on a connection of its own. The first request pays for the new isolate's first run of its code (and, for the proxy, the object's start and its SQLite read); the second is served from the isolate's cache. A wake is a request for a paused sandbox from a client address of its own, timed from sending it to the control plane receiving ResumeSandbox; the first wake in the isolate loads the control-plane client's modules, the second finds them loaded, and the difference is what that load costs the first wake.`,
		],
		checks: [
			{ what: "isolate start: answers 200", expected: expectedOk, actual: ok },
			{
				what: "isolate start: wakes with exactly one ResumeSandbox call",
				expected: trials * 2,
				actual: wakesWithOneRpc,
			},
		],
		data: { trials, resumeDelayMs: D, perTrial },
		seconds: (performance.now() - started) / 1000,
	};
}
