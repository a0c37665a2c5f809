// WebSocket: round trips on one socket through each Worker, one after
// another (each message is sent when the last echo has come back).
import { type EchoResult, echoes } from "../harness/clients.ts";
import type { CaseResult, Context } from "../harness/context.ts";
import { atLeast, fixed, ratio, row } from "../harness/report.ts";
import { spread, sum } from "../harness/stats.ts";

export async function webSocket(context: Context): Promise<CaseResult> {
	const started = performance.now();
	const { rounds, echoes: count } = context.profile.webSocket;
	const pass: EchoResult[] = [];
	const proxy: EchoResult[] = [];
	const echoesBefore = (await context.node.counts()).echoes;
	for (let round = 0; round < rounds; round++) {
		const order = round % 2 === 0 ? ([pass, proxy] as const) : ([proxy, pass] as const);
		for (const list of order) {
			const worker = list === pass ? context.passThrough : context.proxy;
			list.push(await echoes(worker, context.hotHost, count));
		}
	}
	const echoedByNode = (await context.node.counts()).echoes - echoesBefore;
	const rate = (r: EchoResult) => r.echoes / r.seconds;
	const name = `WebSocket (${count} echo round trips, one socket)`;
	return {
		name: "WebSocket",
		rows: [
			row(
				name,
				"round trips per second vs pass-through",
				spread(proxy.map((r, i) => rate(r) / rate(pass[i] ?? r))),
				ratio,
				"≥ 0.9×",
				atLeast(0.9),
			),
			row(name, "round trips per second: proxy", spread(proxy.map(rate)), fixed(0)),
			row(name, "round trips per second: pass-through", spread(pass.map(rate)), fixed(0)),
			row(
				name,
				"workerd CPU per round trip vs pass-through",
				spread(proxy.map((r, i) => r.cpuSeconds / (pass[i]?.cpuSeconds ?? r.cpuSeconds))),
				ratio,
			),
		],
		checks: [
			{
				what: "WebSocket: echoes through the pass-through",
				expected: rounds * count,
				actual: sum(pass.map((r) => r.echoes)),
			},
			{
				what: "WebSocket: echoes through the proxy",
				expected: rounds * count,
				actual: sum(proxy.map((r) => r.echoes)),
			},
			{ what: "WebSocket: messages echoed by the node", expected: 2 * rounds * count, actual: echoedByNode },
		],
		data: {
			rounds,
			echoes: count,
			perRound: proxy.map((r, i) => ({ proxyPerSecond: rate(r), passThroughPerSecond: rate(pass[i] ?? r) })),
		},
		seconds: (performance.now() - started) / 1000,
	};
}
