import { DurableObject } from "cloudflare:workers";
import { type Config, ConfigError, configFrom, defaults } from "../config.ts";
import { edgeAuth } from "../control-plane/edge-auth.ts";
import { type ControlPlaneClient, createControlPlaneClient } from "../control-plane/sandbox-service.ts";
import { logEvent } from "../log.ts";
import type { ResumeCredentials, ResumeFailure } from "../resume-types.ts";
import { FailureMemory, type RememberedFailure, type SandboxWideFailures } from "./failure-memory.ts";
import { checkResumeBudget } from "./resume-budget.ts";
import { type CatalogEntry, type CatalogWrite, type LookupResult, type Route, sameRoute } from "./route.ts";
import { RouteStore } from "./route-store.ts";

/**
 * The route catalog for one sandbox (addressed by `getByName(sandboxId)`).
 * The control plane writes it through the catalog API; on a miss it calls
 * ResumeSandbox itself, so that every request waiting on this sandbox joins
 * one call: concurrent requests to one object share its I/O context, so an
 * in-memory promise coalesces them safely here, unlike in the stateless Worker.
 */
export class SandboxRoute extends DurableObject<Env> {
	readonly #store: RouteStore;
	/** The ResumeSandbox calls in flight, by the credentials they carry. */
	readonly #flights = new Map<string, Flight>();
	/** Requests waiting on a flight, or for one to end; bounded by RESUME_MAX_WAITERS. */
	#waiting = 0;
	#failures: FailureMemory | undefined;
	/** Credentials whose KeepAliveSandbox the control plane refused, until the interval they were refused in ends. */
	readonly #keepAliveRefusals = new Map<string, number>();
	/**
	 * A pushed route whose node said the sandbox is not there. It is the
	 * control plane's word, so it is not thrown away on a node's say-so (that
	 * answer can be forged by an app, or be a passing fault); it is not served
	 * until a resume has been asked where the sandbox is. If the resume cannot
	 * say (a sandbox never paused has no snapshot to resume), the route is
	 * served again.
	 */
	#doubted: CatalogEntry | undefined;
	#controlPlane: ControlPlaneClient | undefined;
	/** A route whose node's "not here" the control plane contradicted, and until when that holds. */
	#disputed: { learnedAt: number; until: number } | undefined;
	/** The route that this object's last successful resume gave, and when. */
	#resumed: { learnedAt: number; at: number } | undefined;
	/** Settles with the next pushed route: waiters take it without waiting for their RPC. */
	#nextPush: PromiseWithResolvers<LookupResult> | undefined;

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		this.#store = new RouteStore(ctx.storage.sql);
	}

	/**
	 * The sandbox's route, resuming the sandbox if the catalog has none.
	 * `clientIp` is the caller's address, for the per-client resume budget.
	 */
	async lookup(sandboxId: string, credentials: ResumeCredentials, clientIp = "unknown"): Promise<LookupResult> {
		const config = this.#config();
		if (!config.ok) return config;
		const failures = this.#failureMemory(config.value);
		const key = credentialsKey(credentials);
		// Every caller joins the call in flight, whatever its credentials: one
		// RPC per wake. But a refusal answers only the credentials it was made
		// with, so a caller with others then makes its own call, and a
		// stranger's rejected attempt cannot fail the owner's requests.
		let joinAny = true;
		const askedAt = Date.now();
		const waited = (result: LookupResult, wake: "resumed" | "joined"): LookupResult =>
			result.ok ? { ...result, wake, waitedMs: Date.now() - askedAt } : result;
		for (;;) {
			const now = Date.now();
			const entry = this.#store.current(now);
			if (entry !== null && entry !== this.#doubted) return { ok: true, route: this.#routeOf(entry), via: "object" };
			const remembered = failures.recall(key, now);
			if (remembered !== undefined) {
				// The control plane cannot be asked about a doubted pushed route
				// now (it failed for everyone): its pushed word stands.
				if (entry !== null && remembered.sandboxWide) {
					this.#doubted = undefined;
					return { ok: true, route: this.#routeOf(entry), via: "object" };
				}
				return failed(remembered.error, remembered);
			}

			const joinable = this.#flights.get(key) ?? (joinAny ? firstOf(this.#flights) : undefined);
			if (joinable !== undefined) {
				const result = await this.#wait(config.value, this.#orPush(joinable.result));
				if (result.ok) return waited(result, "joined");
				// A budget refused is the flyer's own; so is a refusal of its credentials.
				const { overBudget } = joinable.spent;
				const answersUs = joinable.key === key && (!overBudget || joinable.clientIp === clientIp);
				const passesOn = !overBudget && result.error.code !== "resume_forbidden";
				if (answersUs || passesOn) return result;
				joinAny = false;
				continue;
			}
			// However many distinct tokens arrive, only a few calls run at once;
			// the others wait for one of them to end.
			if (this.#flights.size >= maxConcurrentFlights) {
				const flights = [...this.#flights.values()].map((flight) => flight.result);
				const waited = await this.#wait(config.value, Promise.race(flights));
				if (!waited.ok && waited.error.code === "resume_queue_full") return waited;
				continue;
			}
			return waited(await this.#orPush(this.#fly(sandboxId, credentials, clientIp, key, config.value)), "resumed");
		}
	}

	/**
	 * A resume's answer, or the control plane's push of the sandbox's route if
	 * it lands first: E2B's control plane writes the catalog as the sandbox
	 * starts, before its answer to ResumeSandbox comes back.
	 */
	#orPush(result: Promise<LookupResult>): Promise<LookupResult> {
		this.#nextPush ??= Promise.withResolvers<LookupResult>();
		return Promise.race([result, this.#nextPush.promise]);
	}

	/** Only what forwarding needs crosses to the Worker, and into its cache. */
	#routeOf(entry: CatalogEntry): Route {
		const route: Route = { nodeIp: entry.nodeIp, learnedAt: entry.learnedAt, expiresAt: entry.expiresAt };
		if (keepaliveTeam(entry) !== undefined) route.keepalive = true;
		const resumed = this.#resumed;
		return resumed?.learnedAt === entry.learnedAt ? { ...route, resumedAt: resumed.at } : route;
	}

	/**
	 * Where a wake stands, for a browser's waiting page: the route is there,
	 * a resume is in flight (and since when), the last one failed for
	 * everyone, or none of these. Only reads: asking never resumes anything.
	 */
	async wakeStatus(): Promise<WakeStatus> {
		const now = Date.now();
		const entry = this.#store.current(now);
		if (entry !== null && entry !== this.#doubted) return { phase: "ready" };
		const flight = firstOf(this.#flights);
		if (flight !== undefined) return { phase: "waking", forMs: now - flight.startedAt };
		const config = this.#config();
		if (!config.ok) return { phase: "failed", error: config.error };
		// Sandbox-wide failures only: a refusal is one caller's, whom this does not know.
		const remembered = this.#failureMemory(config.value).recall("", now);
		if (remembered?.sandboxWide === true) return { phase: "failed", error: remembered.error };
		return { phase: "idle" };
	}

	/**
	 * Traffic reached the sandbox. If its catalog entry asks for traffic
	 * keepalive, tell the control plane, which pushes back the sandbox's
	 * auto-pause; at most once per TRAFFIC_KEEPALIVE_INTERVAL_MS for the
	 * whole edge, which this object alone can decide, since every isolate in
	 * every location reports here. A refusal of the entry (its policy is off,
	 * its IDs are not the control plane's) turns keepalive off for it; a
	 * refusal of the credentials, which may be one stranger's, leaves the
	 * interval to the next caller; any other failure waits for the next
	 * interval.
	 */
	async keepAlive(sandboxId: string, credentials: ResumeCredentials): Promise<KeepAliveReport> {
		const config = this.#config();
		if (!config.ok) return { result: "off" };
		const now = Date.now();
		const entry = this.#store.current(now);
		const teamId = entry === null ? undefined : keepaliveTeam(entry);
		if (entry === null || teamId === undefined) return { result: "off" };
		// Stored, not kept in memory: an object idle between two intervals is evicted.
		const kv = this.ctx.storage.kv;
		const due = kv.get<number>(keepAliveKey) ?? 0;
		if (now < due) return { result: "skipped", nextAt: due };
		const refusalKey = credentialsKey(credentials);
		const refusedUntil = this.#keepAliveRefusals.get(refusalKey);
		if (refusedUntil !== undefined && now < refusedUntil) return { result: "refused", nextAt: refusedUntil };
		// Few credentials ever fail here (the node let them through); the bound is for safety.
		if (this.#keepAliveRefusals.size >= maxKeepAliveRefusals) this.#keepAliveRefusals.clear();
		const nextAt = now + config.value.trafficKeepaliveIntervalMs;
		kv.put(keepAliveKey, nextAt);
		const outcome = await this.#client(config.value).keepAlive(sandboxId, teamId, credentials);
		logEvent("keepalive", {
			sandboxId,
			outcome: outcome.ok ? "ok" : outcome.verdict,
			reason: outcome.ok ? undefined : outcome.reason,
			durationMs: Date.now() - now,
		});
		if (outcome.ok) return { result: "sent", nextAt };
		if (outcome.verdict === "refused") {
			// These credentials were refused, not the sandbox's keepalive: the
			// interval stays free for other callers', so that no one whose
			// credentials fail can use up the owner's turn; and these are not
			// tried again within it.
			if (kv.get<number>(keepAliveKey) === nextAt) {
				if (due === 0) kv.delete(keepAliveKey);
				else kv.put(keepAliveKey, due);
			}
			this.#keepAliveRefusals.set(refusalKey, nextAt);
			return { result: "refused", nextAt };
		}
		if (outcome.verdict !== "off") return { result: "failed", nextAt };
		if (this.#store.current(Date.now()) === entry) {
			await this.#save(sandboxId, { ...entry, details: { ...entry.details, trafficKeepalive: false } });
		}
		return { result: "off" };
	}

	#client(config: Config): ControlPlaneClient {
		this.#controlPlane ??= createControlPlaneClient(config, edgeAuth(this.env, config));
		return this.#controlPlane;
	}

	/** Waits on `promise` as one of a bounded number of waiters. */
	async #wait(config: Config, promise: Promise<LookupResult>): Promise<LookupResult> {
		if (this.#waiting >= config.resumeMaxWaiters) return failed({ code: "resume_queue_full" });
		this.#waiting++;
		try {
			return await promise;
		} finally {
			this.#waiting--;
		}
	}

	/**
	 * Starts a resume at once, before its first await, so that every request
	 * arriving meanwhile joins it: the budget is checked inside the flight.
	 */
	#fly(
		sandboxId: string,
		credentials: ResumeCredentials,
		clientIp: string,
		key: string,
		config: Config,
	): Promise<LookupResult> {
		const spent = { overBudget: false };
		const run = async (): Promise<LookupResult> => {
			const limited = await checkResumeBudget(this.env, sandboxId, { clientIp, credentialsDigest: await digest(key) });
			if (limited !== undefined) {
				spent.overBudget = true;
				return failed(limited);
			}
			return this.#resumeAndStore(sandboxId, credentials, key, config);
		};
		const flight: Flight = {
			key,
			clientIp,
			spent,
			startedAt: Date.now(),
			result: run().finally(() => {
				if (this.#flights.get(key) === flight) this.#flights.delete(key);
				// Nobody waits for a push any more: let go of the races that did.
				if (this.#flights.size === 0) this.#nextPush = undefined;
			}),
		};
		this.#flights.set(key, flight);
		return flight.result;
	}

	/**
	 * The object's memory of failed resumes. The failures for every caller are
	 * stored, so that an eviction does not forget them, but only by an object
	 * that holds a route already: an object that has learned nothing (a
	 * stranger's made-up ID) stores nothing. Its eviction forgets its
	 * not-found, which costs at most one more ResumeSandbox call after it, and
	 * the Worker's caches and budgets stand in front of that.
	 */
	#failureMemory(config: Config): FailureMemory {
		const kv = this.ctx.storage.kv;
		let stored = false;
		this.#failures ??= new FailureMemory(config, {
			load: () => {
				const failures = this.#store.holdsStorage() ? kv.get<SandboxWideFailures>(failuresKey) : undefined;
				stored = failures !== undefined;
				return failures;
			},
			save: (failures) => {
				if (failures !== undefined && this.#store.holdsStorage()) {
					kv.put(failuresKey, failures);
					stored = true;
				} else if (stored) {
					kv.delete(failuresKey);
					stored = false;
				}
			},
		});
		return this.#failures;
	}

	#config(): { ok: true; value: Config } | Extract<LookupResult, { ok: false }> {
		try {
			return { ok: true, value: configFrom(this.env) };
		} catch (error) {
			if (error instanceof ConfigError) {
				// What is wrong goes to the log only (see catalog-api/config-problem.ts).
				logEvent("proxy_error", { reason: "proxy_misconfigured", detail: error.message });
				return failed({ code: "proxy_misconfigured" });
			}
			throw error;
		}
	}

	/**
	 * Stops serving the route if it is still `stale`: its node said the
	 * sandbox is not there, or could not be reached. A learned route is
	 * forgotten; a pushed one is doubted (see `#doubted`). A route learned or
	 * pushed since, even to the same node, is kept. So is a disputed route:
	 * `afterResume` says that its node failed (denied the sandbox, or could
	 * not be reached) even though a fresh resume had just placed the sandbox
	 * there. Asking again would give the same node, so for NOT_FOUND_CACHE_MS
	 * its failures cost no RPC (and an app cannot buy one per request by
	 * forging denials).
	 */
	async invalidate(stale: Route, afterResume = false): Promise<boolean> {
		const entry = this.#store.current(Date.now());
		if (entry === null || !sameRoute(entry, stale)) return false;
		const now = Date.now();
		if (this.#disputed !== undefined && this.#disputed.learnedAt === entry.learnedAt && this.#disputed.until > now) {
			return false;
		}
		if (afterResume) {
			this.#dispute(entry, now);
			return false;
		}
		if (entry.source === "push") this.#doubted = entry;
		else await this.#forget();
		return true;
	}

	#dispute(entry: CatalogEntry, now: number): void {
		const config = this.#config();
		const window = config.ok ? config.value.notFoundCacheMs : defaults.notFoundCacheMs;
		this.#disputed = { learnedAt: entry.learnedAt, until: now + window };
	}

	/**
	 * Applies the control plane's writes in order. A put replaces whatever is
	 * stored. A delete, like E2B's DeleteSandbox, removes a pushed route only
	 * if it belongs to the named execution, so that a late delete for an old
	 * execution never removes a newer one; a route learned from a resume names
	 * no execution, and any delete removes it.
	 */
	async write(sandboxId: string, writes: readonly CatalogWrite[]): Promise<void> {
		// Whatever was remembered of failed resumes, the control plane has spoken since.
		const config = this.#config();
		if (config.ok) this.#failureMemory(config.value).clear();
		for (const write of writes) {
			if (write.op === "put") {
				const now = Date.now();
				const entry: CatalogEntry = {
					nodeIp: write.route.nodeIp,
					learnedAt: now,
					expiresAt: now + write.route.ttlSeconds * 1000,
					source: "push",
					executionId: write.route.executionId,
					details: write.route.details,
				};
				// A new entry's keepalive starts afresh: a resumed sandbox's first traffic is reported.
				this.ctx.storage.kv.delete(keepAliveKey);
				const saved = this.#save(sandboxId, entry);
				this.#wakeWaiters(entry, now);
				await saved;
				continue;
			}
			const stored = this.#store.current(0);
			if (stored !== null && (stored.source === "resume" || stored.executionId === write.executionId)) {
				await this.#forget();
			}
		}
	}

	/** The live route with everything stored about it, for the catalog API. */
	async describe(): Promise<CatalogEntry | null> {
		return this.#store.current(Date.now());
	}

	/** The stored route, expired or not; for operators and tests. */
	async peek(): Promise<CatalogEntry | null> {
		return this.#store.current(0);
	}

	/** Set for when the stored route expires: an expired route leaves nothing behind. */
	override async alarm(): Promise<void> {
		const now = Date.now();
		const entry = this.#store.current(now);
		const remembered = this.#failures?.sandboxWideUntil ?? 0;
		if (entry !== null) await this.ctx.storage.setAlarm(entry.expiresAt);
		// A resume in flight will store a route, or fail; look again after it.
		else if (this.#flights.size > 0) await this.ctx.storage.setAlarm(now + 60_000);
		else if (remembered > now) await this.ctx.storage.setAlarm(remembered);
		else await this.#forget();
	}

	async #save(sandboxId: string, entry: CatalogEntry): Promise<void> {
		this.#store.save(sandboxId, entry);
		await this.ctx.storage.setAlarm(entry.expiresAt);
	}

	/** Hands a pushed route to the requests waiting on a resume, which it answers. */
	#wakeWaiters(entry: CatalogEntry, now: number): void {
		const waiters = this.#nextPush;
		this.#nextPush = undefined;
		if (waiters === undefined) return;
		// Pushed because a resume is under way: its apps may still be starting.
		if (this.#flights.size > 0) this.#resumed = { learnedAt: entry.learnedAt, at: now };
		waiters.resolve({ ok: true, route: this.#routeOf(entry), via: "push" });
	}

	/**
	 * Writes a learned route once the requests that waited for it have their
	 * answer: an object's outgoing messages wait until its writes are
	 * durable, and a learned route is only a copy of the control plane's
	 * answer. Skipped if the route was replaced or dropped meanwhile.
	 */
	async #persistLater(sandboxId: string, entry: CatalogEntry): Promise<void> {
		await new Promise((resolve) => setTimeout(resolve, 0));
		if (this.#store.current(0) !== entry) return;
		await this.#save(sandboxId, entry);
	}

	/**
	 * Forgets the route, and with it the object's whole storage, alarm
	 * included: a sandbox that is gone leaves no stored object behind.
	 */
	async #forget(): Promise<void> {
		this.#store.clear();
		this.#doubted = undefined;
		await this.ctx.storage.deleteAll();
		this.#store.storageDeleted();
	}

	async #resumeAndStore(
		sandboxId: string,
		credentials: ResumeCredentials,
		key: string,
		config: Config,
	): Promise<LookupResult> {
		const startedAt = Date.now();
		const outcome = await this.#client(config).resume(sandboxId, credentials);
		const finishedAt = Date.now();
		logEvent("resume", {
			sandboxId,
			port: credentials.port,
			protocol: config.controlPlaneProtocol,
			outcome: outcome.ok ? "ok" : outcome.error.code,
			nodeIp: outcome.ok ? outcome.nodeIp : undefined,
			durationMs: finishedAt - startedAt,
		});
		const failures = this.#failureMemory(config);
		if (!outcome.ok) {
			// A push that landed meanwhile is the control plane's newer word.
			const pushed = this.#store.current(finishedAt);
			if (pushed !== null && pushed.learnedAt >= startedAt) {
				this.#doubted = undefined;
				return { ok: true, route: this.#routeOf(pushed), via: "push" };
			}
			// The control plane's pushed word stands until it is replaced; its
			// node's denial is not believed again for a while.
			const doubted = this.#doubted;
			this.#doubted = undefined;
			if (doubted !== undefined && pushed === doubted) {
				this.#dispute(doubted, finishedAt);
				return failed(outcome.error);
			}
			const error = failures.record(key, outcome.error, finishedAt);
			// A stored failure leaves storage behind: the alarm removes it once it no longer holds.
			if (pushed === null && this.#store.holdsStorage() && failures.sandboxWideUntil > finishedAt) {
				await this.ctx.storage.setAlarm(failures.sandboxWideUntil);
			}
			return failed(error, failures.recall(key, finishedAt));
		}
		failures.clear();

		// The control plane pushes the route of a sandbox it resumes, often
		// before its answer arrives here. That push names the execution, which
		// a later delete needs, so it is kept rather than overwritten.
		const pushed = this.#store.current(finishedAt);
		this.#doubted = undefined;
		if (pushed !== null && pushed.source === "push" && pushed.learnedAt >= startedAt) {
			this.#resumed = { learnedAt: pushed.learnedAt, at: finishedAt };
			return { ok: true, route: this.#routeOf(pushed), via: "resume", rpcMs: finishedAt - startedAt };
		}
		const entry: CatalogEntry = {
			nodeIp: outcome.nodeIp,
			learnedAt: finishedAt,
			expiresAt: finishedAt + config.routeTtlMs,
			source: "resume",
			details: {},
		};
		this.#store.remember(entry);
		this.#resumed = { learnedAt: entry.learnedAt, at: finishedAt };
		this.ctx.waitUntil(this.#persistLater(sandboxId, entry));
		return { ok: true, route: this.#routeOf(entry), via: "resume", rpcMs: finishedAt - startedAt };
	}
}

/** The key of the sandbox-wide failures in the object's key-value storage. */
const failuresKey = "failures";
/** The key of when the next KeepAliveSandbox call may be made. */
const keepAliveKey = "keepalive-next";
/** Bound on the credentials whose keepalive was refused, remembered until the interval ends. */
const maxKeepAliveRefusals = 100;

/** A wake's phase, as a waiting page shows it. */
export type WakeStatus =
	| { phase: "ready" | "idle" }
	| { phase: "waking"; forMs: number }
	| { phase: "failed"; error: ResumeFailure };

/**
 * What a traffic report did: called the control plane, found it too soon,
 * found keepalive off, had the caller's credentials refused, or failed.
 */
export type KeepAliveResult = "sent" | "skipped" | "off" | "refused" | "failed";

/**
 * A traffic report's answer: what it did, and when the next call may be
 * made, so that a reporting isolate reports again no sooner and no later.
 */
export interface KeepAliveReport {
	result: KeepAliveResult;
	nextAt?: number;
}

/** The team to name in KeepAliveSandbox, when the entry asks for traffic keepalive. */
function keepaliveTeam(entry: CatalogEntry): string | undefined {
	// E2B's edge: older entries may say keepalive without a team; they cannot be kept alive.
	return entry.details.trafficKeepalive === true ? entry.details.teamId : undefined;
}

// However many distinct credentials ask at once, this many RPCs at most run
// for one sandbox; a refusal is quick, so the owner's turn comes soon.
const maxConcurrentFlights = 4;

interface Flight {
	/** The credentials the call carries. */
	key: string;
	/** The address of the client whose request started it, whose budget it spends. */
	clientIp: string;
	/** Whether the budget refused it before any RPC; known once it ends. */
	spent: { overBudget: boolean };
	/** Epoch ms when it started, for the waiting page's live phase. */
	startedAt: number;
	result: Promise<LookupResult>;
}

function credentialsKey(credentials: ResumeCredentials): string {
	return JSON.stringify([credentials.port, credentials.trafficAccessToken, credentials.envdAccessToken]);
}

function failed(error: ResumeFailure, remembered?: RememberedFailure): Extract<LookupResult, { ok: false }> {
	if (remembered === undefined || !remembered.sandboxWide) return { ok: false, error };
	return { ok: false, error, remembered: { error: remembered.error, until: remembered.until } };
}

function firstOf<K, V>(map: ReadonlyMap<K, V>): V | undefined {
	return map.values().next().value;
}

/** A digest of the credentials, so that no token leaves the object as a rate-limit key. */
async function digest(text: string): Promise<string> {
	const hash = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
	return [...new Uint8Array(hash, 0, 12)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}
