// Bundle: what `wrangler deploy --dry-run --outdir` builds, its gzip size,
// and the isolate's start: a CPU profile of the Worker's startup phase from
// `wrangler check startup` (workerd on this machine, inspector attached),
// for the proxy and for the pass-through Worker alike.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import type { CaseResult, Context } from "../harness/context.ts";
import { infoRow, type Row, row } from "../harness/report.ts";
import { median, spread } from "../harness/stats.ts";
import { passThroughSource, root, wranglerBin } from "../harness/workers.ts";

const gzipCeilingBytes = 100 * 1000;
const startMs = (ms: number) => (ms === 0 ? "0 ms (nothing sampled)" : `${ms.toFixed(1)} ms`);

interface CpuProfile {
	nodes: { id: number; callFrame: { functionName: string; url: string }; children?: number[] }[];
	startTime: number;
	endTime: number;
	samples: number[];
	timeDeltas: number[];
}

export interface StartupProfile {
	/** From the profile's start to its end. */
	windowMs: number;
	/** Sampled time not idle: the runtime's own start, the Worker's top level, and GC. */
	activeMs: number;
	/** Sampled time in the Worker's script evaluating its top level, and everything it called. */
	scriptMs: number;
	garbageCollectionMs: number;
	/** Where the script's time went, by function (self time), the largest first. */
	top: { name: string; ms: number }[];
}

/** Reads a V8 CPU profile of a Worker's startup (the first sample's time, before sampling began, is not counted). */
export function readStartupProfile(path: string): StartupProfile {
	const profile = JSON.parse(readFileSync(path, "utf8")) as CpuProfile;
	const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
	const self = new Map<number, number>();
	profile.samples.forEach((id, i) => {
		if (i === 0) return;
		self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
	});
	// The script's top level: the root's children that are the script itself, not the runtime's modules.
	const root = profile.nodes[0];
	const scriptRoots = (root?.children ?? [])
		.map((id) => nodes.get(id))
		.filter(
			(node) => node !== undefined && node.callFrame.url !== "" && !node.callFrame.url.startsWith("node-internal:"),
		);
	const inScript = new Set<number>();
	const visit = (id: number) => {
		inScript.add(id);
		for (const child of nodes.get(id)?.children ?? []) visit(child);
	};
	for (const node of scriptRoots) if (node !== undefined) visit(node.id);
	const nameOf = (id: number) => {
		const frame = nodes.get(id)?.callFrame;
		if (frame === undefined) return "?";
		return frame.functionName === "" ? `(anonymous) ${frame.url.split("/").at(-1) ?? ""}` : frame.functionName;
	};
	let activeMicros = 0;
	let scriptMicros = 0;
	let gcMicros = 0;
	const byName = new Map<string, number>();
	for (const [id, micros] of self) {
		const name = nameOf(id);
		if (name !== "(idle)") activeMicros += micros;
		if (name === "(garbage collector)") gcMicros += micros;
		if (!inScript.has(id)) continue;
		scriptMicros += micros;
		byName.set(name, (byName.get(name) ?? 0) + micros);
	}
	const top = [...byName.entries()]
		.sort((a, b) => b[1] - a[1])
		.slice(0, 5)
		.map(([name, micros]) => ({ name, ms: micros / 1000 }));
	return {
		windowMs: (profile.endTime - profile.startTime) / 1000,
		activeMs: activeMicros / 1000,
		scriptMs: scriptMicros / 1000,
		garbageCollectionMs: gcMicros / 1000,
		top,
	};
}

/** Profiles the startup of the Worker whose wrangler.toml is in `cwd` (the command takes no --config). */
function checkStartup(outfile: string, cwd: string): StartupProfile {
	execFileSync(process.execPath, [wranglerBin, "check", "startup", "--outfile", outfile], {
		cwd,
		stdio: ["ignore", "ignore", "inherit"],
		env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
	});
	return readStartupProfile(outfile);
}

export async function bundle(context: Context): Promise<CaseResult> {
	const started = performance.now();
	const script = readFileSync(context.build.scriptPath);
	const gzipBytes = gzipSync(script).length;
	const rows: Row[] = [
		infoRow(
			"bundle",
			"gzip size (zlib default level)",
			`${(gzipBytes / 1024).toFixed(1)} KiB (${gzipBytes} B)`,
			"≤ 100 KB (judged as 100,000 B)",
			gzipBytes <= gzipCeilingBytes ? "met" : `MISSED by ${gzipBytes - gzipCeilingBytes} B`,
		),
		infoRow("bundle", "size", `${(script.length / 1024).toFixed(1)} KiB`),
		infoRow(
			"bundle",
			"workerd start to ready (Miniflare): proxy",
			`${(context.proxy.startSeconds * 1000).toFixed(0)} ms`,
		),
		infoRow(
			"bundle",
			"workerd start to ready (Miniflare): pass-through",
			`${(context.passThrough.startSeconds * 1000).toFixed(0)} ms`,
		),
	];
	const notes = [`bundle: wrangler deploy --dry-run says "${context.build.wranglerSizeLine}".`];
	const data: Record<string, unknown> = {
		bytes: script.length,
		gzipBytes,
		wranglerSizeLine: context.build.wranglerSizeLine,
		startToReadyMs: { proxy: context.proxy.startSeconds * 1000, passThrough: context.passThrough.startSeconds * 1000 },
	};
	if (context.profile.startupProfiles > 0) {
		const buildDir = context.build.dir;
		// The proxy's several times (its start is short and this machine noisy); the pass-through's, once.
		const proxies = Array.from({ length: context.profile.startupProfiles }, (_, i) =>
			checkStartup(join(buildDir, `startup-proxy-${i + 1}.cpuprofile`), root),
		);
		const medianOf = (pick: (p: StartupProfile) => number) => median(proxies.map(pick));
		const proxy = proxies.find((p) => p.scriptMs === medianOf((q) => q.scriptMs)) ?? proxies[0];
		if (proxy === undefined) throw new Error("no startup profile");
		const passDir = join(buildDir, "pass-through");
		mkdirSync(passDir, { recursive: true });
		writeFileSync(join(passDir, "index.js"), passThroughSource);
		writeFileSync(
			join(passDir, "wrangler.toml"),
			'name = "bench-pass-through"\nmain = "index.js"\ncompatibility_date = "2026-11-01"\ncompatibility_flags = ["nodejs_compat"]\n',
		);
		const pass = checkStartup(join(buildDir, "startup-pass-through.cpuprofile"), passDir);
		rows.push(
			row(
				"bundle",
				"isolate start, script's top level, CPU: proxy",
				spread(proxies.map((p) => p.scriptMs)),
				startMs,
				"reported",
			),
			infoRow("bundle", "isolate start, script's top level, CPU: pass-through", startMs(pass.scriptMs)),
			row("bundle", "isolate start, whole startup phase, CPU: proxy", spread(proxies.map((p) => p.activeMs)), startMs),
			infoRow("bundle", "isolate start, whole startup phase, CPU: pass-through", startMs(pass.activeMs)),
		);
		notes.push(
			`bundle: isolate start is read from \`wrangler check startup\`'s CPU profile of each Worker's startup phase (workerd on this machine, inspector attached, about 1 ms sampling): the script's top level is the time sampled in the Worker's module evaluating and all it calls; the whole phase adds the runtime's own work and GC (idle excluded; proxy window ${proxy.windowMs.toFixed(0)} ms). The proxy's top level, by function (self time, ms): ${proxy.top.map((entry) => `${entry.name} ${entry.ms.toFixed(1)}`).join(", ")}.`,
		);
		data.startup = { proxy: proxies, passThrough: pass };
	}
	return {
		name: "bundle",
		rows,
		checks: [{ what: "bundle: built, with a gzip size", expected: 1, actual: gzipBytes > 0 ? 1 : 0 }],
		notes,
		data,
		seconds: (performance.now() - started) / 1000,
	};
}
