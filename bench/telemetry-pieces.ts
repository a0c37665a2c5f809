// What each piece of the hot path's telemetry costs per request, in workerd:
// the trace object, the log line (sampled, and on every request), the
// metrics call, and Server-Timing; and, for scale, the whole hot path of the
// proxy and of the pass-through with a node that answers from JavaScript. bench/telemetry/pieces-worker.ts runs a
// piece n times in one request; the time of a request that runs nothing n
// times is taken off, so what is left is the piece's own. Wall time is the
// isolate's CPU here: the loop does no I/O.
//
//   npm run bench:telemetry
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { unstable_startWorker } from "wrangler";
import { median } from "./harness/stats.ts";
import { root } from "./harness/workers.ts";

const n = 20_000;
const repeats = 5;
// A line per request goes through workerd's log pipe to Miniflare: fewer of them, so that a run stays short.
const loggedN = 2_000;

const dir = join(root, "bench/.build/telemetry");
mkdirSync(dir, { recursive: true });
const configPath = join(dir, "wrangler.toml");
writeFileSync(
	configPath,
	[
		'name = "bench-telemetry-pieces"',
		`main = "${join(root, "bench/telemetry/pieces-worker.ts")}"`,
		'compatibility_date = "2026-11-01"',
		'compatibility_flags = ["nodejs_compat"]',
		"[[analytics_engine_datasets]]",
		'binding = "METRICS"',
		'dataset = "sandbox_edge_proxy"',
		"",
	].join("\n"),
);

const worker = await unstable_startWorker({
	config: configPath,
	dev: {
		server: { hostname: "127.0.0.1", port: 0 },
		logLevel: "none",
		watch: false,
		persist: false,
		inspector: false,
		structuredLogsHandler: () => {},
	} as NonNullable<Parameters<typeof unstable_startWorker>[0]["dev"]>,
});
try {
	await worker.ready;
	const url = await worker.url;
	const pieces = (await (await fetch(new URL("/pieces", url))).json()) as string[];
	const timeOf = async (piece: string, count: number): Promise<number> => {
		const started = performance.now();
		const response = await fetch(new URL(`/run?piece=${encodeURIComponent(piece)}&n=${count}`, url), {
			headers: { "cf-ray": "8f1e2d3c4b5a6978-AMS" },
		});
		const text = await response.text();
		if (response.status !== 200) throw new Error(`${piece}: ${response.status} ${text}`);
		return performance.now() - started;
	};
	const perRequestMicros = async (piece: string): Promise<number> => {
		const count = piece.startsWith("log line, every") ? loggedN : n;
		await timeOf(piece, count); // warm: the first run compiles
		const rounds: number[] = [];
		for (let i = 0; i < repeats; i++) {
			// The empty loop's time, in the same round: what a request costs with no piece in it.
			const nothing = await timeOf("nothing", count);
			rounds.push(((await timeOf(piece, count)) - nothing) / count);
		}
		return median(rounds) * 1000;
	};
	const rows: string[] = ["| piece | µs per request (median of 5) |", "|---|---|"];
	for (const piece of pieces.filter((p) => p !== "nothing")) {
		const micros = await perRequestMicros(piece);
		rows.push(`| ${piece} | ${micros.toFixed(2)} |`);
	}
	console.log(
		`telemetry pieces: ${n.toLocaleString("en-US")} runs per request (${loggedN.toLocaleString("en-US")} for a line on every request), the empty loop's time taken off; ${new Date().toISOString()}\n`,
	);
	console.log(rows.join("\n"));
	console.log(
		"\nThe trace is made and filled in by every telemetry piece; each such row includes it, so what a piece adds is its row less the trace's. The whole paths run the Worker's fetch handler with the node answering at once from JavaScript (a NODES binding): the Worker's own code, without the runtime's HTTP work, which `npm run bench` measures.",
	);
} finally {
	await worker.dispose();
}
