// process.Process as envd serves it (packages/envd/internal/services/process):
// Start runs a command for real, on the host, in the sandbox's scratch root,
// and streams a start event with its pid, its stdout and stderr as they come,
// and an end event with its exit status. Connect re-attaches to a running
// process (or answers the exit of one that ended in the last 30 s), List,
// SendSignal, SendInput and CloseStdin act on the live ones. PTYs (Start with
// a pty, Update) and StreamInput are not served: Node has no PTY without a
// native module, so Start with a pty and those two RPCs answer Unimplemented.

import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { stat } from "node:fs/promises";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
	CloseStdinResponseSchema,
	ListResponseSchema,
	type Process,
	type ProcessConfig,
	ProcessConfigSchema,
	type ProcessEvent,
	type ProcessEvent_EndEvent,
	ProcessEvent_EndEventSchema,
	ProcessEventSchema,
	ProcessInfoSchema,
	type ProcessSelector,
	SendInputResponseSchema,
	SendSignalResponseSchema,
	Signal,
} from "../../src/gen/envd/process/process_pb.ts";
import type { Log } from "../model.ts";
import { hostPath, PathError, sandboxPath } from "./paths.ts";
import type { RpcUser } from "./rpc-user.ts";

export interface ProcessContext {
	/** The sandbox's root on the host, a real path. */
	root: string;
	userOf(context: HandlerContext): RpcUser;
	/** Variables every process gets (envd's defaults, set by /init), before the request's own. */
	env: Readonly<Record<string, string>>;
	log: Log;
}

export interface ProcessTable {
	service: Partial<ServiceImpl<typeof Process>>;
	/** Kills every process (its whole process group) and waits for them to end. */
	close(): Promise<void>;
}

// envd keeps a process's end event this long after it exits, for a late Connect.
const TERMINATED_RETENTION_MS = 30_000;
// envd's default when the client sends no Keepalive-Ping-Interval (the SDK sends 50 s).
const DEFAULT_KEEPALIVE_MS = 90_000;
// A subscriber that falls this many events behind pauses the process's output
// (envd's multiplexed channel blocks likewise); it resumes once every
// subscriber is back under the low mark.
const HIGH_WATER_EVENTS = 64;
const LOW_WATER_EVENTS = 16;
const CLOSE_WAIT_MS = 5_000;

interface Subscriber {
	queue: ProcessEvent[];
	wake: (() => void) | undefined;
}

interface LiveProcess {
	pid: number;
	tag: string | undefined;
	config: ProcessConfig;
	child: ChildProcess;
	stdin: ChildProcess["stdin"];
	subscribers: Set<Subscriber>;
	paused: boolean;
	end: ProcessEvent_EndEvent | undefined;
	closed: Promise<void>;
}

interface RetainedExit {
	pid: number;
	tag: string | undefined;
	end: ProcessEvent_EndEvent;
	timer: NodeJS.Timeout;
}

// Go's syscall.Signal.String() for the signals a command is likely to die of.
const GO_SIGNAL_NAMES: Readonly<Record<string, string>> = {
	SIGHUP: "hangup",
	SIGINT: "interrupt",
	SIGQUIT: "quit",
	SIGILL: "illegal instruction",
	SIGTRAP: "trace/breakpoint trap",
	SIGABRT: "aborted",
	SIGBUS: "bus error",
	SIGFPE: "floating point exception",
	SIGKILL: "killed",
	SIGUSR1: "user defined signal 1",
	SIGSEGV: "segmentation fault",
	SIGUSR2: "user defined signal 2",
	SIGPIPE: "broken pipe",
	SIGALRM: "alarm clock",
	SIGTERM: "terminated",
};

/** envd's end event, from Go's os.ProcessState: exit code -1 and "signal: …" for a signal. */
export function endEventOf(code: number | null, signal: NodeJS.Signals | null): ProcessEvent_EndEvent {
	const exited = code !== null;
	const status = exited ? `exit status ${code}` : `signal: ${GO_SIGNAL_NAMES[signal ?? ""] ?? signal}`;
	return create(ProcessEvent_EndEventSchema, {
		exitCode: exited ? code : -1,
		exited,
		status,
		// cmd.Wait()'s error, an *exec.ExitError whose text is the status; none for a clean exit.
		...(code === 0 ? {} : { error: status }),
	});
}

function keepaliveMsOf(context: HandlerContext): number {
	const seconds = Number.parseInt(context.requestHeader.get("keepalive-ping-interval") ?? "", 10);
	return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : DEFAULT_KEEPALIVE_MS;
}

const KEEPALIVE_EVENT = create(ProcessEventSchema, { event: { case: "keepalive", value: {} } });

function killGroup(proc: LiveProcess, signal: NodeJS.Signals): void {
	try {
		// Start puts each command in its own process group: its children go too.
		process.kill(-proc.pid, signal);
	} catch {
		proc.child.kill(signal);
	}
}

export function processService(ctx: ProcessContext): ProcessTable {
	const live = new Map<number, LiveProcess>();
	const terminated = new Map<number, RetainedExit>();

	function deliver(proc: LiveProcess, event: ProcessEvent): void {
		for (const subscriber of proc.subscribers) {
			subscriber.queue.push(event);
			subscriber.wake?.();
		}
		if (!proc.paused && [...proc.subscribers].some((s) => s.queue.length >= HIGH_WATER_EVENTS)) {
			proc.paused = true;
			proc.child.stdout?.pause();
			proc.child.stderr?.pause();
		}
	}

	function relieve(proc: LiveProcess): void {
		if (proc.paused && [...proc.subscribers].every((s) => s.queue.length <= LOW_WATER_EVENTS)) {
			proc.paused = false;
			proc.child.stdout?.resume();
			proc.child.stderr?.resume();
		}
	}

	/**
	 * The start event, then the subscriber's events until the end event, with a
	 * keepalive after each quiet interval. However the stream ends (the client
	 * may go away at any yield), the subscriber is dropped.
	 */
	async function* follow(
		proc: LiveProcess,
		subscriber: Subscriber,
		context: HandlerContext,
	): AsyncGenerator<{ event: ProcessEvent }> {
		const keepaliveMs = keepaliveMsOf(context);
		const signal = context.signal;
		let keepalive: NodeJS.Timeout | undefined;
		const armKeepalive = () => {
			clearTimeout(keepalive);
			keepalive = setTimeout(() => {
				subscriber.queue.push(KEEPALIVE_EVENT);
				subscriber.wake?.();
			}, keepaliveMs);
		};
		try {
			yield { event: create(ProcessEventSchema, { event: { case: "start", value: { pid: proc.pid } } }) };
			armKeepalive();
			for (;;) {
				const event = subscriber.queue.shift();
				if (event !== undefined) {
					relieve(proc);
					yield { event };
					if (event.event.case === "end") return;
					armKeepalive();
					continue;
				}
				if (signal.aborted) throw signal.reason;
				await new Promise<void>((resolve) => {
					const done = () => {
						subscriber.wake = undefined;
						signal.removeEventListener("abort", done);
						resolve();
					};
					subscriber.wake = done;
					signal.addEventListener("abort", done, { once: true });
				});
			}
		} finally {
			clearTimeout(keepalive);
			proc.subscribers.delete(subscriber);
			relieve(proc);
		}
	}

	function find(selector: ProcessSelector | undefined): LiveProcess | undefined {
		const s = selector?.selector;
		if (s?.case === "pid") return live.get(s.value);
		if (s?.case === "tag") return [...live.values()].find((p) => p.tag === s.value);
		throw new ConnectError(`invalid input type ${String(s?.case)}`, Code.Unimplemented);
	}

	function notFound(selector: ProcessSelector | undefined): ConnectError {
		const s = selector?.selector;
		const what = s?.case === "tag" ? `tag ${s.value}` : `pid ${String(s?.value)}`;
		return new ConnectError(`process with ${what} not found`, Code.NotFound);
	}

	function mustFind(selector: ProcessSelector | undefined): LiveProcess {
		const proc = find(selector);
		if (proc === undefined) throw notFound(selector);
		return proc;
	}

	function retained(selector: ProcessSelector | undefined): RetainedExit | undefined {
		const s = selector?.selector;
		if (s?.case === "pid") return terminated.get(s.value);
		if (s?.case === "tag") return [...terminated.values()].find((r) => r.tag === s.value);
		return undefined;
	}

	function retain(proc: LiveProcess, end: ProcessEvent_EndEvent): void {
		const previous = terminated.get(proc.pid);
		if (previous !== undefined) clearTimeout(previous.timer);
		const entry: RetainedExit = {
			pid: proc.pid,
			tag: proc.tag,
			end,
			timer: setTimeout(() => {
				if (terminated.get(proc.pid) === entry) terminated.delete(proc.pid);
			}, TERMINATED_RETENTION_MS),
		};
		entry.timer.unref();
		terminated.set(proc.pid, entry);
	}

	async function startProcess(
		config: ProcessConfig,
		tag: string | undefined,
		stdinEnabled: boolean,
		user: RpcUser,
		timeoutMs: number | undefined,
		subscriber: Subscriber,
	): Promise<LiveProcess> {
		const command = [config.cmd, ...config.args].join(" ");
		let cwdPath: string;
		let cwd: string;
		let home: string;
		try {
			cwdPath = sandboxPath(config.cwd ?? "", user.home);
			cwd = await hostPath(ctx.root, cwdPath, true);
			home = await hostPath(ctx.root, user.home, true);
		} catch (error) {
			if (error instanceof PathError) throw new ConnectError(error.message, Code.InvalidArgument);
			throw error;
		}
		try {
			await stat(cwd);
		} catch {
			throw new ConnectError(`cwd '${cwdPath}' does not exist`, Code.InvalidArgument);
		}
		const env: Record<string, string> = {
			// envd takes only PATH from its own environment.
			PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
			HOME: home,
			USER: user.name,
			LOGNAME: user.name,
			...ctx.env,
			...config.envs,
		};
		const child = spawn(config.cmd, config.args, {
			cwd,
			env,
			stdio: [stdinEnabled ? "pipe" : "ignore", "pipe", "pipe"],
			// Its own process group, so that a kill reaches the command's children too.
			detached: true,
		});
		if (child.pid === undefined) {
			const [error] = (await once(child, "error")) as [Error];
			throw new ConnectError(`error starting process '${command}': ${error.message}`, Code.InvalidArgument);
		}
		const pid = child.pid;
		let closedResolve: () => void = () => {};
		const proc: LiveProcess = {
			pid,
			tag,
			config: create(ProcessConfigSchema, {
				cmd: config.cmd,
				args: config.args,
				envs: config.envs,
				...(config.cwd === undefined ? {} : { cwd: config.cwd }),
			}),
			child,
			stdin: child.stdin,
			subscribers: new Set([subscriber]),
			paused: false,
			end: undefined,
			closed: new Promise<void>((resolve) => {
				closedResolve = resolve;
			}),
		};
		// A previous process's retained exit under this pid or tag is not this one's.
		const stale = terminated.get(pid);
		if (stale !== undefined) {
			clearTimeout(stale.timer);
			terminated.delete(pid);
		}
		if (tag !== undefined) {
			for (const [otherPid, r] of terminated) {
				if (r.tag === tag) {
					clearTimeout(r.timer);
					terminated.delete(otherPid);
				}
			}
		}
		live.set(pid, proc);
		const output = (name: "stdout" | "stderr") => (chunk: Buffer) => {
			// As envd: output nobody is subscribed to is dropped.
			if (proc.subscribers.size === 0) return;
			deliver(
				proc,
				create(ProcessEventSchema, { event: { case: "data", value: { output: { case: name, value: chunk } } } }),
			);
		};
		child.stdout?.on("data", output("stdout"));
		child.stderr?.on("data", output("stderr"));
		child.stdin?.on("error", () => {});
		child.on("error", (error) => ctx.log(`envd: process ${pid}: ${error.message}`));
		const killTimer =
			timeoutMs !== undefined && timeoutMs > 0
				? setTimeout(() => {
						ctx.log(`envd: process ${pid} timed out after ${timeoutMs}ms; killing it`);
						killGroup(proc, "SIGKILL");
					}, timeoutMs)
				: undefined;
		// "close": the process has exited and its stdout and stderr are closed, as envd's Wait waits for both.
		child.once("close", (code, signal) => {
			clearTimeout(killTimer);
			const end = endEventOf(code, signal);
			proc.end = end;
			retain(proc, end);
			if (live.get(pid) === proc) live.delete(pid);
			deliver(proc, create(ProcessEventSchema, { event: { case: "end", value: end } }));
			ctx.log(`envd: process ${pid} ended: ${end.status}`);
			closedResolve();
		});
		ctx.log(`envd: process ${pid} started: ${command}`);
		return proc;
	}

	const service: Partial<ServiceImpl<typeof Process>> = {
		async *start(req, context) {
			if (req.pty !== undefined) {
				throw new ConnectError("PTYs are not supported by the development envd", Code.Unimplemented);
			}
			const user = ctx.userOf(context);
			const config = req.process ?? create(ProcessConfigSchema, {});
			const subscriber: Subscriber = { queue: [], wake: undefined };
			const proc = await startProcess(
				config,
				req.tag,
				// Optional for backwards compatibility: absent means stdin is open.
				req.stdin ?? true,
				user,
				context.timeoutMs(),
				subscriber,
			);
			yield* follow(proc, subscriber, context);
		},

		async *connect(req, context) {
			const proc = find(req.process);
			if (proc === undefined) {
				// Gone: the exit of one that ended in the last 30 s, as envd serves it, or NotFound.
				const exit = retained(req.process);
				if (exit === undefined) throw notFound(req.process);
				yield { event: create(ProcessEventSchema, { event: { case: "start", value: { pid: exit.pid } } }) };
				yield { event: create(ProcessEventSchema, { event: { case: "end", value: exit.end } }) };
				return;
			}
			const subscriber: Subscriber = { queue: [], wake: undefined };
			proc.subscribers.add(subscriber);
			yield* follow(proc, subscriber, context);
		},

		list() {
			return create(ListResponseSchema, {
				processes: [...live.values()].map((p) =>
					create(ProcessInfoSchema, { config: p.config, pid: p.pid, ...(p.tag === undefined ? {} : { tag: p.tag }) }),
				),
			});
		},

		sendSignal(req) {
			const proc = mustFind(req.process);
			let signal: NodeJS.Signals;
			if (req.signal === Signal.SIGKILL) signal = "SIGKILL";
			else if (req.signal === Signal.SIGTERM) signal = "SIGTERM";
			else throw new ConnectError(`invalid signal: ${req.signal}`, Code.Unimplemented);
			// As envd's SendSignal, output is no longer read once the process is told to die, so
			// that a child holding its pipes open does not hold back the end event.
			proc.child.stdout?.destroy();
			proc.child.stderr?.destroy();
			killGroup(proc, signal);
			return create(SendSignalResponseSchema, {});
		},

		async sendInput(req) {
			const proc = mustFind(req.process);
			const input = req.input?.input;
			if (input?.case === "pty") {
				throw new ConnectError(
					"error writing to tty: tty not assigned to process — input should be written to the stdin, not the tty",
					Code.Internal,
				);
			}
			if (input?.case !== "stdin") {
				throw new ConnectError(`invalid input type ${String(input?.case)}`, Code.Unimplemented);
			}
			const stdin = proc.stdin;
			if (stdin === null || stdin.writableEnded) {
				throw new ConnectError("error writing to stdin: stdin not enabled or closed", Code.Internal);
			}
			await new Promise<void>((resolve, reject) =>
				stdin.write(input.value, (error) =>
					error
						? reject(
								new ConnectError(
									`error writing to stdin: error writing to stdin of process '${proc.pid}': ${error.message}`,
									Code.Internal,
								),
							)
						: resolve(),
				),
			);
			return create(SendInputResponseSchema, {});
		},

		closeStdin(req) {
			const proc = mustFind(req.process);
			proc.stdin?.end();
			proc.stdin = null;
			return create(CloseStdinResponseSchema, {});
		},
	};

	return {
		service,
		async close() {
			const procs = [...live.values()];
			for (const proc of procs) killGroup(proc, "SIGKILL");
			const timeout = new Promise<void>((resolve) => setTimeout(resolve, CLOSE_WAIT_MS).unref());
			await Promise.race([Promise.all(procs.map((p) => p.closed)), timeout]);
			for (const r of terminated.values()) clearTimeout(r.timer);
			terminated.clear();
		},
	};
}
