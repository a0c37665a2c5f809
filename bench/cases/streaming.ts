// Streaming: a long download and a long upload through each Worker, one at
// a time, with the workerd process's resident memory watched throughout
// (VmRSS sampled every 10 ms, and VmHWM after resetting it through
// /proc/<pid>/clear_refs): growth is the peak less the size at the start.
import { download, type TransferResult, upload } from "../harness/clients.ts";
import type { CaseResult, Context } from "../harness/context.ts";
import { atLeast, fixed, mib, type Row, ratio, row, spreadText } from "../harness/report.ts";
import { spread } from "../harness/stats.ts";
import type { RunningWorker } from "../harness/workers.ts";

const memoryCeiling = 32 * 1024 ** 2;

export async function streaming(context: Context): Promise<CaseResult> {
	const started = performance.now();
	const { rounds, bytes } = context.profile.streaming;
	const runs = {
		download: { pass: [] as TransferResult[], proxy: [] as TransferResult[] },
		upload: { pass: [] as TransferResult[], proxy: [] as TransferResult[] },
	};
	const move = (direction: "download" | "upload", worker: RunningWorker) =>
		direction === "download" ? download(worker, context.hotHost, bytes) : upload(worker, context.hotHost, bytes);
	for (let round = 0; round < rounds; round++) {
		for (const direction of ["download", "upload"] as const) {
			const order = round % 2 === 0 ? (["pass", "proxy"] as const) : (["proxy", "pass"] as const);
			for (const who of order) {
				const worker = who === "pass" ? context.passThrough : context.proxy;
				runs[direction][who].push(await move(direction, worker));
			}
		}
	}
	const size = bytes >= 1024 ** 3 ? `${bytes / 1024 ** 3} GiB` : `${bytes / 1024 ** 2} MiB`;
	const rows: Row[] = [];
	const checks: CaseResult["checks"] = [];
	const rate = (t: TransferResult) => bytes / 1024 ** 2 / t.seconds;
	for (const direction of ["download", "upload"] as const) {
		const { pass, proxy } = runs[direction];
		const name = `streaming: ${size} ${direction}`;
		const growth = spread(proxy.map((t) => t.memory.growthBytes));
		rows.push(
			row(
				name,
				"throughput vs pass-through",
				spread(proxy.map((t, i) => rate(t) / rate(pass[i] ?? t))),
				ratio,
				"≥ 0.9×",
				atLeast(0.9),
			),
			row(name, "MiB/s: proxy", spread(proxy.map(rate)), fixed(0)),
			row(name, "MiB/s: pass-through", spread(pass.map(rate)), fixed(0)),
			{
				case: name,
				measure: "workerd memory growth: proxy (worst round judged)",
				value: mib(growth.median),
				spread: spreadText(growth, mib),
				target: "< 32 MiB",
				verdict: growth.max < memoryCeiling ? "met" : `MISSED by ${mib(growth.max - memoryCeiling)}`,
			},
			row(name, "workerd memory growth: pass-through", spread(pass.map((t) => t.memory.growthBytes)), mib),
			row(
				name,
				"workerd CPU per MiB vs pass-through",
				spread(proxy.map((t, i) => t.cpuSeconds / (pass[i]?.cpuSeconds ?? t.cpuSeconds))),
				ratio,
			),
		);
		for (const [who, list] of [
			["pass-through", pass],
			["proxy", proxy],
		] as const) {
			checks.push({
				what: `streaming: ${direction} bytes through the ${who}`,
				expected: rounds * bytes,
				actual: list.reduce((total, t) => total + t.bytes, 0),
			});
		}
	}
	return {
		name: "streaming",
		rows,
		checks,
		notes: [
			"streaming: workerd memory is read from /proc/<workerd pid>/status: VmRSS sampled every 10 ms during the transfer, and VmHWM (the kernel's peak, reset through /proc/<pid>/clear_refs when the transfer starts); growth is the peak less VmRSS at the start.",
		],
		data: {
			rounds,
			bytes,
			runs: Object.fromEntries(
				Object.entries(runs).map(([direction, sides]) => [
					direction,
					Object.fromEntries(
						Object.entries(sides).map(([who, list]) => [
							who,
							list.map((t) => ({
								seconds: t.seconds,
								mibPerSecond: rate(t),
								cpuSeconds: t.cpuSeconds,
								memory: t.memory,
							})),
						]),
					),
				]),
			),
		},
		seconds: (performance.now() - started) / 1000,
	};
}
