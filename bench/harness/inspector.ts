// A CPU profile of the proxy's isolate, through workerd's inspector
// (Miniflare's inspectorPort) and the DevTools protocol: where the
// JavaScript time of a case goes. Time workerd spends outside JavaScript
// (its own HTTP handling, SQLite, the runtime's APIs) shows up as
// "(program)".
import WebSocket from "ws";

interface Target {
	id: string;
	title: string;
	webSocketDebuggerUrl: string;
}

export interface ProfileNode {
	id: number;
	callFrame: { functionName: string; url: string; lineNumber: number };
	children?: number[];
}

export interface CpuProfile {
	nodes: ProfileNode[];
	startTime: number;
	endTime: number;
	samples: number[];
	timeDeltas: number[];
}

export interface Profiler {
	stop(): Promise<CpuProfile>;
}

/** Starts sampling the isolate of the Worker named `workerName` (Miniflare's "core:user:<name>"; "" when unnamed). */
export async function startProfiler(inspectorUrl: URL, workerName: string): Promise<Profiler> {
	const response = await fetch(new URL("/json/list", `http://${inspectorUrl.host}`));
	const targets = (await response.json()) as Target[];
	const target = targets.find((t) => t.title.endsWith(`core:user:${workerName}`));
	if (target === undefined) {
		throw new Error(`no inspector target for ${workerName}: ${targets.map((t) => t.title).join(", ")}`);
	}
	const socket = new WebSocket(target.webSocketDebuggerUrl);
	await new Promise<void>((resolve, reject) => {
		socket.once("open", () => resolve());
		socket.once("error", reject);
	});
	let nextId = 0;
	const pending = new Map<number, (result: unknown) => void>();
	socket.on("message", (data) => {
		const message = JSON.parse(String(data)) as { id?: number; result?: unknown };
		if (message.id !== undefined) pending.get(message.id)?.(message.result);
	});
	const call = (method: string, params: Record<string, unknown> = {}) =>
		new Promise<unknown>((resolve) => {
			nextId += 1;
			pending.set(nextId, resolve);
			socket.send(JSON.stringify({ id: nextId, method, params }));
		});
	await call("Profiler.enable");
	await call("Profiler.setSamplingInterval", { interval: 200 });
	await call("Profiler.start");
	return {
		async stop() {
			const result = (await call("Profiler.stop")) as { profile: CpuProfile };
			socket.close();
			return result.profile;
		},
	};
}

export interface Hotspot {
	name: string;
	/** Samples that landed in the function itself. */
	samples: number;
	/** Its part of the samples taken while the isolate was busy. */
	share: number;
}

/**
 * Self samples by function (and file), the most first. Counted, not
 * weighted by time: when the isolate leaves JavaScript for the runtime, the
 * sampler cannot take a sample until it comes back, and the next sample
 * then carries the whole gap (seconds, at times), which would charge it to
 * whichever function happened to run first.
 */
export function hotspots(profile: CpuProfile, count = 15): { samples: number; busySamples: number; top: Hotspot[] } {
	const names = new Map(
		profile.nodes.map((node) => {
			const { functionName, url, lineNumber } = node.callFrame;
			const file = url === "" ? "" : ` ${url.split("/").at(-1)}:${lineNumber + 1}`;
			return [node.id, `${functionName === "" ? "(anonymous)" : functionName}${file}`];
		}),
	);
	const self = new Map<string, number>();
	for (const id of profile.samples) {
		const name = names.get(id) ?? "?";
		self.set(name, (self.get(name) ?? 0) + 1);
	}
	const busy = profile.samples.length - (self.get("(idle)") ?? 0);
	const top = [...self.entries()]
		.filter(([name]) => name !== "(idle)")
		.sort((a, b) => b[1] - a[1])
		.slice(0, count)
		.map(([name, samples]) => ({ name, samples, share: busy === 0 ? 0 : samples / busy }));
	return { samples: profile.samples.length, busySamples: busy, top };
}
