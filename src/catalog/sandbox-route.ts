import { DurableObject } from "cloudflare:workers";
import { type Config, ConfigError, configFrom, defaults } from "../config.ts";
import { lazyControlPlaneClient } from "../control-plane/lazy-client.ts";
import type { ControlPlaneClient } from "../control-plane/sandbox-service.ts";
import { logEvent } from "../log.ts";
import type { ResumeCredentials, ResumeFailure } from "../resume-types.ts";
import { type FailureMemory, objectFailureMemory } from "./failure-memory.ts";
import { KeepAlive, type KeepAliveReport, keepAliveKey, keepaliveTeam } from "./keepalive.ts";
import { checkResumeBudget } from "./resume-budget.ts";
import { failed, resumeAndStore } from "./resume-call.ts";
import { maxConcurrentFlights, ResumeFlights } from "./resume-flights.ts";
import type { CatalogEntry, CatalogWrite, LookupResult, Route } from "./route.ts";
import { type NodeVerdict, RouteState } from "./route-state.ts";
import { RouteStore } from "./route-store.ts";

export type { KeepAliveReport, KeepAliveResult } from "./keepalive.ts";

/**
 * The route catalog for one sandbox (addressed by `getByName(sandboxId)`).
 * The control plane writes it through the catalog API; on a miss it calls
 * ResumeSandbox itself, so that every request waiting on this sandbox joins
 * one call (resume-flights.ts). Whether its route is served, doubted or
 * dropped is route-state.ts's to say.
 */
export class SandboxRoute extends DurableObject<Env> {
	readonly #store: RouteStore;
	readonly #state: RouteState;
	readonly #flights = new ResumeFlights();
	readonly #keepAlive = new KeepAlive();
	#failures: FailureMemory | undefined;
	#controlPlane: ControlPlaneClient | undefined;

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		this.#store = new RouteStore(ctx.storage.sql);
		this.#state = new RouteState((now) => this.#store.current(now));
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
			const served = this.#state.served(now);
			if (served !== null) return { ok: true, route: this.#routeOf(served), via: "object" };
			const remembered = failures.recall(key, now);
			if (remembered !== undefined) {
				const standing = remembered.sandboxWide ? this.#state.resumeBarred(now) : null;
				if (standing !== null) return { ok: true, route: this.#routeOf(standing), via: "object" };
				return failed(remembered.error, remembered);
			}

			const joinable = this.#flights.joinable(key, joinAny);
			if (joinable !== undefined) {
				const result = await this.#flights.wait(config.value.resumeMaxWaiters, this.#flights.orPush(joinable.result));
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
				const ended = await this.#flights.wait(config.value.resumeMaxWaiters, this.#flights.anyEnded());
				if (!ended.ok && ended.error.code === "resume_queue_full") return ended;
				continue;
			}
			const flight = this.#flights.start(key, clientIp, async (spent) => {
				const limited = await checkResumeBudget(this.env, sandboxId, {
					clientIp,
					credentialsDigest: await digest(key),
				});
				if (limited === undefined) return this.#resume(sandboxId, credentials, key, config.value);
				spent.overBudget = true;
				return failed(limited);
			});
			return waited(await this.#flights.orPush(flight), "resumed");
		}
	}

	/**
	 * The route served now, or null: what an isolate's refresh ahead of its
	 * copy's end asks for. It never resumes anything; a sandbox without a
	 * route is looked up by the next request that misses, as always.
	 */
	async servedRoute(): Promise<Route | null> {
		const served = this.#state.served(Date.now());
		return served === null ? null : this.#routeOf(served);
	}

	/** Only what forwarding needs crosses to the Worker, and into its cache. */
	#routeOf(entry: CatalogEntry): Route {
		const route: Route = { nodeIp: entry.nodeIp, learnedAt: entry.learnedAt, expiresAt: entry.expiresAt };
		if (keepaliveTeam(entry) !== undefined) route.keepalive = true;
		const resumedAt = this.#state.vouchedAt(entry);
		return resumedAt === undefined ? route : { ...route, resumedAt };
	}

	/**
	 * Where a wake stands, for a browser's waiting page: the route is there,
	 * a resume is in flight (and since when), the last one failed for
	 * everyone, or none of these. Only reads: asking never resumes anything.
	 */
	async wakeStatus(): Promise<WakeStatus> {
		const now = Date.now();
		if (this.#state.served(now) !== null) return { phase: "ready" };
		const flight = this.#flights.first();
		if (flight !== undefined) return { phase: "waking", forMs: now - flight.startedAt };
		const config = this.#config();
		if (!config.ok) return { phase: "failed", error: config.error };
		// Sandbox-wide failures only: a refusal is one caller's, whom this does not know.
		const remembered = this.#failureMemory(config.value).recall("", now);
		if (remembered?.sandboxWide === true) return { phase: "failed", error: remembered.error };
		return { phase: "idle" };
	}

	/** Traffic reached the sandbox: see keepalive.ts. */
	async keepAlive(sandboxId: string, credentials: ResumeCredentials): Promise<KeepAliveReport> {
		const config = this.#config();
		if (!config.ok) return { result: "off" };
		return this.#keepAlive.report({
			sandboxId,
			entry: this.#store.current(Date.now()),
			credentials,
			credentialsKey: credentialsKey(credentials),
			config: config.value,
			client: this.#client(config.value),
			kv: this.ctx.storage.kv,
			turnOff: async (entry) => {
				if (this.#store.current(Date.now()) !== entry) return;
				await this.#save(sandboxId, { ...entry, details: { ...entry.details, trafficKeepalive: false } });
			},
		});
	}

	/**
	 * The node disowned `stale`, or could not be reached: route-state.ts
	 * decides what follows. Whether this stopped the route being served.
	 */
	async invalidate(stale: Route, verdict: NodeVerdict = "not-here"): Promise<boolean> {
		const now = Date.now();
		const config = this.#config();
		const disputeMs = config.ok ? config.value.notFoundCacheMs : defaults.notFoundCacheMs;
		const outcome = this.#state.notHere(stale, verdict, now, disputeMs);
		if (outcome === "forget") await this.#forget();
		return outcome !== "not-this-route" && this.#state.served(now) === null;
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
				// Pushed while a resume is under way: its apps may still be starting.
				this.#state.pushed(entry, now, this.#flights.size > 0);
				this.#flights.answerWithPush({ ok: true, route: this.#routeOf(entry), via: "push" });
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

	#failureMemory(config: Pick<Config, "notFoundCacheMs" | "refusalCacheMs" | "resumeBackoffMaxMs">): FailureMemory {
		this.#failures ??= objectFailureMemory(config, this.ctx.storage.kv, () => this.#store.holdsStorage());
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

	#client(config: Config): ControlPlaneClient {
		this.#controlPlane ??= lazyControlPlaneClient(this.env, config);
		return this.#controlPlane;
	}

	#resume(sandboxId: string, credentials: ResumeCredentials, key: string, config: Config): Promise<LookupResult> {
		return resumeAndStore({
			sandboxId,
			credentials,
			key,
			config,
			client: this.#client(config),
			store: this.#store,
			state: this.#state,
			failures: this.#failureMemory(config),
			routeOf: (entry) => this.#routeOf(entry),
			persistLater: (entry) => this.ctx.waitUntil(this.#persistLater(sandboxId, entry)),
			setAlarm: (at) => this.ctx.storage.setAlarm(at),
		});
	}

	async #save(sandboxId: string, entry: CatalogEntry): Promise<void> {
		this.#store.save(sandboxId, entry);
		await this.ctx.storage.setAlarm(entry.expiresAt);
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
		this.#state.forgotten();
		await this.ctx.storage.deleteAll();
		this.#store.storageDeleted();
	}
}

/** A wake's phase, as a waiting page shows it. */
export type WakeStatus =
	| { phase: "ready" | "idle" }
	| { phase: "waking"; forMs: number }
	| { phase: "failed"; error: ResumeFailure };

function credentialsKey(credentials: ResumeCredentials): string {
	return JSON.stringify([credentials.port, credentials.trafficAccessToken, credentials.envdAccessToken]);
}

/** A digest of the credentials, so that no token leaves the object as a rate-limit key. */
async function digest(text: string): Promise<string> {
	const hash = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
	return [...new Uint8Array(hash, 0, 12)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}
