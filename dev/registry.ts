// The control plane's in-memory record of sandboxes and their lifecycle. The
// dev node reads it through SandboxDirectory, standing in for the placement
// data a real orchestrator would push to its nodes.

import { randomBytes, randomInt, randomUUID } from "node:crypto";
import { sleep as sleepUnlessAborted } from "../bridge/backoff.ts";
import { isE2bSandboxId, maxDnsLabelLength } from "../src/rules/sandbox-hosts.ts";
import type { CatalogSink } from "./catalog-writer.ts";
import { createDeadlines } from "./deadlines.ts";
import type { RunningSandbox, SandboxRuntime } from "./demo-sandbox.ts";
import { parseUuid } from "./ids.ts";
import { maskRequestHostProblem } from "./mask-request-host.ts";
import {
	type CreateSandboxInput,
	DEMO_PORTS,
	DEV_TEAM_ID,
	type Log,
	MAX_PORT_OPEN_DELAY_MS,
	type OnTimeout,
	type SandboxChanges,
	type SandboxState,
	type SandboxView,
	silent,
} from "./model.ts";

/** What the dev node needs to know to route a request. */
export interface SandboxDirectory {
	/** Sandbox port -> local port, or undefined when the sandbox is not running here. */
	lookup(sandboxId: string): ReadonlyMap<number, number> | undefined;
	/** The token a private sandbox's traffic must carry; undefined for a public one. */
	trafficAccessToken(sandboxId: string): string | undefined;
	/** E2B's MaskRequestHost as set at create, `${PORT}` unreplaced; undefined (or "") for none. */
	maskRequestHost(sandboxId: string): string | undefined;
}

export interface RegistryOptions {
	runtime: SandboxRuntime;
	orchestratorIp?: string;
	resumeDelayMs?: number;
	pauseDelayMs?: number;
	/** A sandbox's longest life, which is how long its catalog entry lives; default 1. */
	maxLengthInHours?: number;
	/** The team of sandboxes created without one; a UUID, default DEV_TEAM_ID. */
	teamId?: string;
	log?: Log;
}

export interface Delays {
	resumeDelayMs: number;
	pauseDelayMs: number;
}

export interface ResumeOptions {
	/** This run's timeout instead of the sandbox's own (E2B's connect gives one); its own stays for later runs. */
	timeoutMs?: number;
}

export interface SandboxRegistry extends SandboxDirectory {
	readonly orchestratorIp: string;
	/** The team of sandboxes created without one (a canonical UUID). */
	readonly teamId: string;
	/** A sandbox's longest life, in ms: the bound of timeouts and keepalives, and its catalog entry's TTL. */
	readonly maxLengthMs: number;
	create(input?: CreateSandboxInput): Promise<SandboxView>;
	get(sandboxId: string): SandboxView | undefined;
	list(): SandboxView[];
	/** Sets "pausing" synchronously, stops the servers, and resolves once "paused". */
	pause(sandboxId: string): Promise<SandboxView>;
	/** Resolves once running; concurrent calls share one resume (the first call's options apply). */
	resume(sandboxId: string, options?: ResumeOptions): Promise<SandboxView>;
	kill(sandboxId: string): Promise<SandboxView>;
	remove(sandboxId: string): Promise<void>;
	/** Changes what may change without a new catalog entry; the catalog is not written. */
	update(sandboxId: string, changes: SandboxChanges): SandboxView;
	/** Whether the team exists: the stack's own, or one a sandbox was created in. */
	hasTeam(teamId: string): boolean;
	/**
	 * E2B's KeepAliveFor(timeout, allowShorter = false) with the sandbox's
	 * timeout: its end time becomes max(end time, now + timeout), within its
	 * longest life. 404 unless running or pausing, 409 while pausing, 400 past
	 * its longest life. A sandbox without a timeout has nothing to move.
	 */
	keepAlive(sandboxId: string): SandboxView;
	/**
	 * E2B's KeepAliveFor(timeout, allowShorter) with a timeout of the caller's
	 * (its REST API's connect and set-timeout): the end time becomes now +
	 * timeout, within its longest life; without allowShorter only if that is
	 * later. A running sandbox without an end time has one at infinity. 404
	 * unless running or pausing, 409 while pausing, 400 past its longest life.
	 */
	keepAliveFor(sandboxId: string, timeoutMs: number, allowShorter: boolean): SandboxView;
	/**
	 * Resolves once the sandbox is no longer pausing, or after `ms`, or when
	 * `signal` aborts, with the sandbox as it then is.
	 */
	waitWhilePausing(sandboxId: string, ms: number, signal: AbortSignal): Promise<SandboxView | undefined>;
	/** Where starts and stops are reported; undefined stops the reports (catalog writes off). */
	attachCatalog(catalog: CatalogSink | undefined): void;
	delays(): Delays;
	setDelays(delays: Partial<Delays>): void;
	close(): Promise<void>;
}

export type RegistryErrorStatus = 400 | 404 | 409 | 503;

export class RegistryError extends Error {
	readonly status: RegistryErrorStatus;
	constructor(status: RegistryErrorStatus, message: string) {
		super(message);
		this.name = "RegistryError";
		this.status = status;
	}
}

interface SandboxRecord {
	id: string;
	state: SandboxState;
	autoResume: boolean;
	public: boolean;
	trafficAccessToken?: string;
	envdAccessToken?: string;
	ports: number[];
	portOpenDelayMs: number;
	createdAt: number;
	teamId: string;
	trafficKeepalive: boolean;
	timeoutMs?: number | undefined;
	onTimeout: OnTimeout;
	templateId?: string | undefined;
	metadata?: Record<string, string> | undefined;
	allowInternetAccess?: boolean | undefined;
	maskRequestHost?: string | undefined;
	/** When its current or last run started (epoch ms); kept after it stops, unlike startedAt. */
	lastStartedAt?: number | undefined;
	/** When its last pause began (epoch ms). */
	pausedAt?: number | undefined;
	/** When it pauses by itself: set at each start or resume, moved by keepalives, gone when stopped. */
	endTime?: number | undefined;
	/** The current run's ID, as E2B's execution ID: new at each start or resume, gone when stopped. */
	executionId?: string | undefined;
	startedAt?: Date | undefined;
	/** Set by the first pause: only a sandbox with a snapshot can be resumed. */
	hasSnapshot: boolean;
	/** Told when the state changes, for calls waiting out a pause. */
	stateWaiters: Set<() => void>;
	running?: RunningSandbox | undefined;
	resuming?: Promise<SandboxView> | undefined;
	pausing?: Promise<void> | undefined;
	/** Bumped by pause and kill so a transition in flight knows it lost. */
	generation: number;
}

// "65535-" + id must fit one DNS label.
const MAX_ID_LENGTH = maxDnsLabelLength - "65535-".length;
const ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

function randomId(): string {
	let id = "";
	for (let i = 0; i < 12; i++) id += ID_ALPHABET[randomInt(ID_ALPHABET.length)];
	return id;
}

function token(): string {
	return randomBytes(16).toString("hex");
}

function describePorts(r: SandboxRecord, ports: ReadonlyMap<number, number>): string {
	const listening = [...ports].map(([sandboxPort, local]) => `${sandboxPort}->:${local}`).join(" ");
	return r.portOpenDelayMs > 0 ? `${listening}; the app's ports open in ${r.portOpenDelayMs}ms` : listening;
}

export function createRegistry(options: RegistryOptions): SandboxRegistry {
	const { runtime } = options;
	const orchestratorIp = options.orchestratorIp ?? "127.0.0.1";
	const log = options.log ?? silent;
	const delays: Delays = {
		resumeDelayMs: options.resumeDelayMs ?? 1000,
		pauseDelayMs: options.pauseDelayMs ?? 300,
	};
	const records = new Map<string, SandboxRecord>();
	const shutdown = new AbortController();
	const maxLengthInHours = options.maxLengthInHours ?? 1;
	const maxLengthMs = maxLengthInHours * 3_600_000;
	const defaultTeamId = parseUuid(options.teamId ?? DEV_TEAM_ID);
	if (defaultTeamId === undefined) throw new Error(`teamId must be a UUID (got "${options.teamId}")`);
	const teams = new Set([defaultTeamId]);
	let catalog: CatalogSink | undefined;
	const deadlines = createDeadlines(onEndTime);

	function setState(r: SandboxRecord, state: SandboxState): void {
		r.state = state;
		for (const wake of r.stateWaiters) wake();
		r.stateWaiters.clear();
	}

	/**
	 * A new run: a new execution ID, pushed to the catalog before the caller
	 * hears of it, as E2B does; and its end time, timeout from now.
	 */
	async function publish(r: SandboxRecord, runTimeoutMs = r.timeoutMs): Promise<void> {
		r.executionId = randomUUID();
		r.startedAt = new Date();
		r.lastStartedAt = r.startedAt.getTime();
		if (runTimeoutMs !== undefined) {
			r.endTime = r.startedAt.getTime() + runTimeoutMs;
			deadlines.set(r.id, r.endTime);
		}
		await catalog?.put({
			sandboxId: r.id,
			orchestratorIp,
			executionId: r.executionId,
			startedAt: r.startedAt,
			maxLengthInHours,
			teamId: r.teamId,
			trafficKeepalive: r.trafficKeepalive,
		});
	}

	/** The run is over: its route is deleted by its execution ID, so a newer run's route survives. */
	async function unpublish(r: SandboxRecord): Promise<void> {
		const executionId = r.executionId;
		r.executionId = undefined;
		r.startedAt = undefined;
		r.endTime = undefined;
		deadlines.clear(r.id);
		if (executionId !== undefined) await catalog?.remove(r.id, executionId);
	}

	/**
	 * Its timer fired. Keepalives move the end time without touching the
	 * timer, so a moved end time only re-arms it; one that stands pauses the
	 * sandbox, catalog DELETE and all, as a pause by hand does.
	 */
	function onEndTime(id: string): void {
		const r = records.get(id);
		if (r === undefined || r.endTime === undefined || r.state !== "running") return;
		if (Date.now() < r.endTime) {
			deadlines.set(id, r.endTime);
			return;
		}
		if (r.onTimeout === "kill") {
			log(`sandbox ${id} reached its end time -> kill (its onTimeout)`);
			registry.kill(id).catch((error: unknown) => {
				log(`sandbox ${id} kill at its end time failed: ${error instanceof Error ? error.message : String(error)}`);
			});
			return;
		}
		log(`sandbox ${id} reached its end time (timeout ${r.timeoutMs}ms) -> auto-pause`);
		registry.pause(id).catch((error: unknown) => {
			log(`sandbox ${id} auto-pause failed: ${error instanceof Error ? error.message : String(error)}`);
		});
	}

	/** Resolves false instead of rejecting when the registry closes, so no timer outlives close(). */
	function sleep(ms: number): Promise<boolean> {
		return sleepUnlessAborted(ms, shutdown.signal);
	}

	function view(r: SandboxRecord): SandboxView {
		const v: SandboxView = {
			id: r.id,
			state: r.state,
			autoResume: r.autoResume,
			public: r.public,
			secure: r.envdAccessToken !== undefined,
			ports: [...r.ports],
			resuming: r.resuming !== undefined,
			hasSnapshot: r.hasSnapshot,
			teamId: r.teamId,
			trafficKeepalive: r.trafficKeepalive,
			onTimeout: r.onTimeout,
			createdAt: r.createdAt,
		};
		if (r.timeoutMs !== undefined) v.timeoutMs = r.timeoutMs;
		if (r.lastStartedAt !== undefined) v.startedAt = r.lastStartedAt;
		if (r.pausedAt !== undefined && (r.state === "paused" || r.state === "pausing")) v.pausedAt = r.pausedAt;
		if (r.templateId !== undefined) v.templateId = r.templateId;
		if (r.metadata !== undefined) v.metadata = { ...r.metadata };
		if (r.allowInternetAccess !== undefined) v.allowInternetAccess = r.allowInternetAccess;
		if (r.maskRequestHost !== undefined) v.maskRequestHost = r.maskRequestHost;
		if (r.endTime !== undefined) v.endTime = r.endTime;
		if (r.executionId !== undefined) v.executionId = r.executionId;
		if (r.trafficAccessToken !== undefined) v.trafficAccessToken = r.trafficAccessToken;
		if (r.envdAccessToken !== undefined) v.envdAccessToken = r.envdAccessToken;
		if (r.running !== undefined) v.localPorts = Object.fromEntries(r.running.ports);
		if (r.portOpenDelayMs > 0) v.portOpenDelayMs = r.portOpenDelayMs;
		return v;
	}

	function mustGet(id: string): SandboxRecord {
		const r = records.get(id);
		if (r === undefined) throw new RegistryError(404, `sandbox ${id} not found`);
		return r;
	}

	function ensureOpen(): void {
		if (shutdown.signal.aborted) throw new RegistryError(503, "the control plane is shutting down");
	}

	async function stopServers(r: SandboxRecord): Promise<void> {
		const running = r.running;
		r.running = undefined;
		await running?.close();
	}

	function startRuntime(r: SandboxRecord): Promise<RunningSandbox> {
		return runtime.start(r.id, r.ports, { portOpenDelayMs: r.portOpenDelayMs, envdAccessToken: r.envdAccessToken });
	}

	async function startServers(r: SandboxRecord): Promise<void> {
		const running = await startRuntime(r);
		r.running = running;
		log(`sandbox ${r.id} -> running on ${orchestratorIp} (${describePorts(r, running.ports)})`);
		await publish(r);
	}

	async function performResume(r: SandboxRecord, options: ResumeOptions): Promise<SandboxView> {
		const generation = r.generation;
		log(`sandbox ${r.id} paused -> resuming (${delays.resumeDelayMs}ms)`);
		const slept = await sleep(delays.resumeDelayMs);
		if (!slept) throw new RegistryError(503, "the control plane is shutting down");
		if (r.generation !== generation || r.state !== "paused") {
			throw new RegistryError(r.state === "killed" ? 404 : 409, `sandbox ${r.id} changed state during resume`);
		}
		const running = await startRuntime(r);
		if (r.generation !== generation || shutdown.signal.aborted) {
			await running.close();
			throw new RegistryError(409, `sandbox ${r.id} changed state during resume`);
		}
		r.running = running;
		setState(r, "running");
		log(`sandbox ${r.id} resuming -> running on ${orchestratorIp} (${describePorts(r, running.ports)})`);
		await publish(r, options.timeoutMs ?? r.timeoutMs);
		return view(r);
	}

	function validateCreate(input: CreateSandboxInput): void {
		if (input.id !== undefined) {
			if (!isE2bSandboxId(input.id)) {
				throw new RegistryError(400, "id must match ^[a-z0-9]+$");
			}
			if (input.id.length > MAX_ID_LENGTH) {
				throw new RegistryError(400, `id must be at most ${MAX_ID_LENGTH} characters`);
			}
			if (records.has(input.id)) throw new RegistryError(409, `sandbox ${input.id} already exists`);
		}
		for (const port of input.ports ?? []) {
			if (!DEMO_PORTS.includes(port)) {
				throw new RegistryError(400, `ports must be a subset of ${DEMO_PORTS.join(", ")}`);
			}
		}
		const delay = input.portOpenDelayMs;
		if (delay !== undefined && !(Number.isInteger(delay) && delay >= 0 && delay <= MAX_PORT_OPEN_DELAY_MS)) {
			throw new RegistryError(400, `portOpenDelayMs must be an integer from 0 to ${MAX_PORT_OPEN_DELAY_MS}`);
		}
		if (input.teamId !== undefined && parseUuid(input.teamId) === undefined) {
			throw new RegistryError(400, "teamId must be a UUID");
		}
		const timeout = input.timeoutMs;
		if (timeout !== undefined && !(Number.isInteger(timeout) && timeout >= 1 && timeout <= maxLengthMs)) {
			throw new RegistryError(400, `timeoutMs must be an integer from 1 to ${maxLengthMs} (its longest life)`);
		}
		if (input.onTimeout !== undefined && input.onTimeout !== "pause" && input.onTimeout !== "kill") {
			throw new RegistryError(400, 'onTimeout must be "pause" or "kill"');
		}
		if (input.maskRequestHost !== undefined) {
			if (typeof input.maskRequestHost !== "string") throw new RegistryError(400, "maskRequestHost must be a string");
			const problem = maskRequestHostProblem(input.maskRequestHost);
			if (problem !== undefined) throw new RegistryError(400, problem);
		}
	}

	function notFound(id: string): RegistryError {
		// E2B's utils.SandboxNotFoundMsg.
		return new RegistryError(404, `Sandbox "${id}" doesn't exist or you don't have access to it`);
	}

	const registry: SandboxRegistry = {
		orchestratorIp,
		teamId: defaultTeamId,
		maxLengthMs,

		async create(input = {}) {
			ensureOpen();
			validateCreate(input);
			let id = input.id;
			while (id === undefined || records.has(id)) id = randomId();
			const r: SandboxRecord = {
				id,
				state: input.state ?? "running",
				autoResume: input.autoResume ?? true,
				public: input.public ?? true,
				ports: [...new Set(input.ports ?? DEMO_PORTS)],
				portOpenDelayMs: input.portOpenDelayMs ?? 0,
				createdAt: Date.now(),
				teamId: input.teamId === undefined ? defaultTeamId : (parseUuid(input.teamId) ?? defaultTeamId),
				trafficKeepalive: input.trafficKeepalive ?? false,
				timeoutMs: input.timeoutMs,
				onTimeout: input.onTimeout ?? "pause",
				templateId: input.templateId,
				metadata: input.metadata === undefined ? undefined : { ...input.metadata },
				allowInternetAccess: input.allowInternetAccess,
				maskRequestHost: input.maskRequestHost,
				// A sandbox created paused or pausing stands for one that ran before.
				hasSnapshot: input.state === "paused" || input.state === "pausing",
				stateWaiters: new Set(),
				generation: 0,
			};
			if (!r.public) r.trafficAccessToken = token();
			if (input.secure === true) r.envdAccessToken = token();
			records.set(id, r);
			const flags = [r.public ? "public" : "private", r.autoResume ? "auto-resume" : "no auto-resume"];
			if (input.secure === true) flags.push("secure");
			if (r.trafficKeepalive) flags.push("traffic keepalive");
			if (r.timeoutMs !== undefined) flags.push(`timeout ${r.timeoutMs}ms`);
			if (r.onTimeout === "kill") flags.push("killed at its end time");
			if (r.maskRequestHost) flags.push(`Host masked as ${r.maskRequestHost}`);
			teams.add(r.teamId);
			log(`sandbox ${id} created ${r.state} (${flags.join(", ")})`);
			if (r.state === "running") {
				try {
					await startServers(r);
				} catch (error) {
					records.delete(id);
					throw error;
				}
			}
			return view(r);
		},

		get(id) {
			const r = records.get(id);
			return r === undefined ? undefined : view(r);
		},

		list() {
			return [...records.values()].map(view);
		},

		lookup(id) {
			const r = records.get(id);
			return r?.state === "running" ? r.running?.ports : undefined;
		},

		trafficAccessToken(id) {
			return records.get(id)?.trafficAccessToken;
		},

		maskRequestHost(id) {
			return records.get(id)?.maskRequestHost;
		},

		async pause(id) {
			ensureOpen();
			const r = mustGet(id);
			if (r.state === "killed") throw new RegistryError(409, `sandbox ${id} is killed`);
			if (r.resuming !== undefined) throw new RegistryError(409, `sandbox ${id} is resuming`);
			if (r.state === "paused") return view(r);
			if (r.pausing !== undefined) {
				await r.pausing;
				return view(r);
			}
			const from = r.state;
			setState(r, "pausing");
			r.hasSnapshot = true;
			r.pausedAt = Date.now();
			const generation = ++r.generation;
			log(`sandbox ${id} ${from} -> pausing (${delays.pauseDelayMs}ms)`);
			const pausing = (async () => {
				await unpublish(r);
				await stopServers(r);
				const slept = await sleep(delays.pauseDelayMs);
				if (slept && r.generation === generation && r.state === "pausing") {
					setState(r, "paused");
					log(`sandbox ${id} pausing -> paused`);
				}
			})();
			r.pausing = pausing;
			try {
				await pausing;
			} finally {
				if (r.pausing === pausing) r.pausing = undefined;
			}
			return view(r);
		},

		resume(id, options = {}) {
			try {
				ensureOpen();
				const r = mustGet(id);
				if (r.state === "running") return Promise.resolve(view(r));
				if (r.state === "killed") throw new RegistryError(404, `sandbox ${id} is killed`);
				if (r.state === "pausing") throw new RegistryError(409, "sandbox is still transitioning");
				if (r.resuming === undefined) {
					const resuming = performResume(r, options);
					r.resuming = resuming;
					const done = () => {
						if (r.resuming === resuming) r.resuming = undefined;
					};
					resuming.then(done, done);
				}
				return r.resuming;
			} catch (error) {
				return Promise.reject(error);
			}
		},

		async kill(id) {
			const r = mustGet(id);
			if (r.state === "killed") return view(r);
			const from = r.state;
			setState(r, "killed");
			r.hasSnapshot = false;
			r.generation++;
			runtime.forget(id);
			await unpublish(r);
			await stopServers(r);
			log(`sandbox ${id} ${from} -> killed`);
			return view(r);
		},

		async remove(id) {
			const r = mustGet(id);
			setState(r, "killed");
			r.generation++;
			records.delete(id);
			runtime.forget(id);
			await unpublish(r);
			await stopServers(r);
			log(`sandbox ${id} deleted`);
		},

		update(id, changes) {
			const r = mustGet(id);
			if (changes.trafficKeepalive !== undefined && changes.trafficKeepalive !== r.trafficKeepalive) {
				r.trafficKeepalive = changes.trafficKeepalive;
				log(`sandbox ${id} traffic keepalive ${r.trafficKeepalive ? "on" : "off"} (catalog entry unchanged)`);
			}
			return view(r);
		},

		hasTeam(teamId) {
			return teams.has(teamId);
		},

		keepAlive(id) {
			const r = records.get(id);
			if (r === undefined || r.state === "killed" || r.state === "paused") throw notFound(id);
			// E2B's utils.SandboxChangingStateMsg, for a sandbox that is not running.
			if (r.state !== "running") throw new RegistryError(409, `Sandbox "${id}" is being paused`);
			if (r.endTime === undefined || r.timeoutMs === undefined || r.startedAt === undefined) return view(r);
			const now = Date.now();
			const lived = now - r.startedAt.getTime();
			if (lived > maxLengthMs) throw new RegistryError(400, "Max instance length exceeded");
			const endTime = now + Math.min(maxLengthMs - lived, r.timeoutMs);
			if (endTime > r.endTime) r.endTime = endTime;
			return view(r);
		},

		keepAliveFor(id, timeoutMs, allowShorter) {
			const r = records.get(id);
			if (r === undefined || r.state === "killed" || r.state === "paused") throw notFound(id);
			if (r.state !== "running") throw new RegistryError(409, `Sandbox "${id}" is being paused`);
			const now = Date.now();
			const lived = r.startedAt === undefined ? 0 : now - r.startedAt.getTime();
			if (lived > maxLengthMs) throw new RegistryError(400, "Max instance length exceeded");
			const endTime = now + Math.max(0, Math.min(maxLengthMs - lived, timeoutMs));
			const current = r.endTime ?? Number.POSITIVE_INFINITY;
			if (!allowShorter && endTime < current) return view(r);
			r.endTime = endTime;
			// A later end time re-arms the timer when it fires; an earlier one (or a first one) needs it now.
			if (endTime < current) deadlines.set(id, endTime);
			return view(r);
		},

		async waitWhilePausing(id, ms, signal) {
			const r = records.get(id);
			if (r === undefined || r.state !== "pausing") return r === undefined ? undefined : view(r);
			await new Promise<void>((resolve) => {
				const done = () => {
					clearTimeout(timer);
					signal.removeEventListener("abort", done);
					shutdown.signal.removeEventListener("abort", done);
					r.stateWaiters.delete(done);
					resolve();
				};
				const timer = setTimeout(done, ms);
				signal.addEventListener("abort", done, { once: true });
				shutdown.signal.addEventListener("abort", done, { once: true });
				r.stateWaiters.add(done);
			});
			return view(r);
		},

		attachCatalog(next) {
			catalog = next;
		},

		delays() {
			return { ...delays };
		},

		setDelays(next) {
			if (next.resumeDelayMs !== undefined) delays.resumeDelayMs = next.resumeDelayMs;
			if (next.pauseDelayMs !== undefined) delays.pauseDelayMs = next.pauseDelayMs;
		},

		async close() {
			shutdown.abort();
			deadlines.close();
			await Promise.all([...records.values()].map(stopServers));
			runtime.close?.();
		},
	};
	return registry;
}
