// What the runtime process costs, read from Linux's /proc: CPU time and
// resident memory of one workerd process (all its threads).
import { readdirSync, readFileSync, writeFileSync } from "node:fs";

const clockTicksPerSecond = 100;

function statFields(pid: number): string[] {
	const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
	// The command name may hold spaces; the fields after it are plain.
	return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/** workerd processes whose parent is this process (Miniflare spawns one per instance). */
export function workerdChildren(): Set<number> {
	const pids = new Set<number>();
	for (const entry of readdirSync("/proc")) {
		if (!/^\d+$/.test(entry)) continue;
		try {
			const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
			const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
			if (stat.includes("(workerd)") && Number(fields[1]) === process.pid) pids.add(Number(entry));
		} catch {
			// The process ended while we looked.
		}
	}
	return pids;
}

/** User plus system CPU seconds of a process, all threads included (utime + stime in /proc/<pid>/stat). */
export function cpuSecondsOf(pid: number): number {
	const fields = statFields(pid);
	return (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond;
}

function statusKiB(pid: number, field: "VmRSS" | "VmHWM"): number {
	const status = readFileSync(`/proc/${pid}/status`, "utf8");
	const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
	if (match === null) throw new Error(`no ${field} in /proc/${pid}/status`);
	return Number(match[1]);
}

/** Resident set size in bytes (VmRSS in /proc/<pid>/status). */
export function rssBytesOf(pid: number): number {
	return statusKiB(pid, "VmRSS") * 1024;
}

/**
 * Watches a process's resident memory while something runs: samples VmRSS
 * every `intervalMs`, and also resets the kernel's peak (writing 5 to
 * /proc/<pid>/clear_refs) so that VmHWM afterwards is the true peak between
 * the samples. Growth is the peak less the resident size at the start.
 */
export function watchMemory(pid: number, intervalMs = 10): { stop(): MemoryGrowth } {
	const startBytes = rssBytesOf(pid);
	let peakSampled = startBytes;
	let hwmReset = false;
	try {
		writeFileSync(`/proc/${pid}/clear_refs`, "5");
		hwmReset = true;
	} catch {
		// Not permitted here: the samples alone give the peak.
	}
	const timer = setInterval(() => {
		try {
			peakSampled = Math.max(peakSampled, rssBytesOf(pid));
		} catch {
			// The process is gone; stop() will say so.
		}
	}, intervalMs);
	return {
		stop() {
			clearInterval(timer);
			const endBytes = rssBytesOf(pid);
			const peakKernel = hwmReset ? statusKiB(pid, "VmHWM") * 1024 : 0;
			const peakBytes = Math.max(peakSampled, endBytes, peakKernel);
			return { startBytes, peakBytes, endBytes, growthBytes: peakBytes - startBytes, kernelPeak: hwmReset };
		},
	};
}

export interface MemoryGrowth {
	startBytes: number;
	peakBytes: number;
	endBytes: number;
	/** Peak less start. */
	growthBytes: number;
	/** Whether the peak includes the kernel's VmHWM (reset at the start), not just the samples. */
	kernelPeak: boolean;
}
