import { DurableObject } from "cloudflare:workers";
import { ConfigError, configFrom } from "../config.ts";
import { createResumeClient, type ResumeSandbox } from "../control-plane/resume-client.ts";
import { logEvent } from "../log.ts";
import type { ResumeCredentials } from "../resume-types.ts";
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
	#flight: Flight | undefined;
	/**
	 * A pushed route whose node said the sandbox is not there. It is the
	 * control plane's word, so it is not thrown away on a node's say-so (that
	 * answer can be forged by an app, or be a passing fault); it is not served
	 * until a resume has been asked where the sandbox is. If the resume cannot
	 * say (a sandbox never paused has no snapshot to resume), the route is
	 * served again.
	 */
	#doubted: CatalogEntry | undefined;
	#resumeSandbox: ResumeSandbox | undefined;

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		this.#store = new RouteStore(ctx.storage.sql);
	}

	/** The sandbox's route, resuming the sandbox if the catalog has none. */
	async lookup(sandboxId: string, credentials: ResumeCredentials): Promise<LookupResult> {
		const key = credentialsKey(credentials);
		for (let attempt = 0; ; attempt++) {
			const entry = this.#store.current(Date.now());
			if (entry !== null && entry !== this.#doubted) return { ok: true, route: routeOf(entry) };

			// Every caller joins the call in flight, whatever its credentials:
			// one RPC per wake. But a refusal answers only the credentials it
			// was made with, so a caller with others then makes its own call,
			// and a stranger's rejected attempt cannot fail the owner's requests.
			const flight = this.#flight;
			if (flight === undefined || (attempt > 0 && flight.key !== key)) {
				return this.#fly(sandboxId, credentials, key);
			}
			const result = await flight.result;
			if (result.ok || flight.key === key || result.error.code !== "resume_forbidden") return result;
		}
	}

	#fly(sandboxId: string, credentials: ResumeCredentials, key: string): Promise<LookupResult> {
		const flight: Flight = {
			key,
			result: this.#resumeAndStore(sandboxId, credentials).finally(() => {
				if (this.#flight === flight) this.#flight = undefined;
			}),
		};
		this.#flight = flight;
		return flight.result;
	}

	/**
	 * Stops serving the route if it is still `stale`: its node said the
	 * sandbox is not there, or could not be reached. A learned route is
	 * forgotten; a pushed one is doubted (see `#doubted`). A route learned or
	 * pushed since, even to the same node, is kept.
	 */
	async invalidate(stale: Route): Promise<boolean> {
		const entry = this.#store.current(Date.now());
		if (entry === null || !sameRoute(entry, stale)) return false;
		if (entry.source === "push") this.#doubted = entry;
		else await this.#forget();
		return true;
	}

	/**
	 * Applies the control plane's writes in order. A put replaces whatever is
	 * stored. A delete, like E2B's DeleteSandbox, removes a pushed route only
	 * if it belongs to the named execution, so that a late delete for an old
	 * execution never removes a newer one; a route learned from a resume names
	 * no execution, and any delete removes it.
	 */
	async write(sandboxId: string, writes: readonly CatalogWrite[]): Promise<void> {
		for (const write of writes) {
			if (write.op === "put") {
				const now = Date.now();
				await this.#save(sandboxId, {
					nodeIp: write.route.nodeIp,
					learnedAt: now,
					expiresAt: now + write.route.ttlSeconds * 1000,
					source: "push",
					executionId: write.route.executionId,
					details: write.route.details,
				});
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
		const entry = this.#store.current(Date.now());
		if (entry !== null) await this.ctx.storage.setAlarm(entry.expiresAt);
		// A resume in flight will store a route, or fail; look again after it.
		else if (this.#flight !== undefined) await this.ctx.storage.setAlarm(Date.now() + 60_000);
		else await this.#forget();
	}

	async #save(sandboxId: string, entry: CatalogEntry): Promise<void> {
		this.#store.save(sandboxId, entry);
		await this.ctx.storage.setAlarm(entry.expiresAt);
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

	async #resumeAndStore(sandboxId: string, credentials: ResumeCredentials): Promise<LookupResult> {
		let config: ReturnType<typeof configFrom>;
		try {
			config = configFrom(this.env);
		} catch (error) {
			if (error instanceof ConfigError) {
				return { ok: false, error: { code: "proxy_misconfigured", message: error.message } };
			}
			throw error;
		}
		this.#resumeSandbox ??= createResumeClient(config);

		const startedAt = Date.now();
		const outcome = await this.#resumeSandbox(sandboxId, credentials);
		const finishedAt = Date.now();
		logEvent("resume", {
			sandboxId,
			port: credentials.port,
			protocol: config.controlPlaneProtocol,
			outcome: outcome.ok ? "ok" : outcome.error.code,
			nodeIp: outcome.ok ? outcome.nodeIp : undefined,
			durationMs: finishedAt - startedAt,
		});
		if (!outcome.ok) {
			// The control plane's pushed word stands until it is replaced.
			this.#doubted = undefined;
			return outcome;
		}

		// The control plane pushes the route of a sandbox it resumes, often
		// before its answer arrives here. That push names the execution, which
		// a later delete needs, so it is kept rather than overwritten.
		const pushed = this.#store.current(finishedAt);
		this.#doubted = undefined;
		if (pushed !== null && pushed.source === "push" && pushed.learnedAt >= startedAt) {
			return { ok: true, route: routeOf(pushed) };
		}
		const entry: CatalogEntry = {
			nodeIp: outcome.nodeIp,
			learnedAt: finishedAt,
			expiresAt: finishedAt + config.routeTtlMs,
			source: "resume",
			details: {},
		};
		await this.#save(sandboxId, entry);
		return { ok: true, route: routeOf(entry) };
	}
}

interface Flight {
	/** The credentials the call carries. */
	key: string;
	result: Promise<LookupResult>;
}

function credentialsKey(credentials: ResumeCredentials): string {
	return JSON.stringify([credentials.port, credentials.trafficAccessToken, credentials.envdAccessToken]);
}

/** Only what forwarding needs crosses to the Worker, and into its cache. */
function routeOf(entry: CatalogEntry): Route {
	return { nodeIp: entry.nodeIp, learnedAt: entry.learnedAt, expiresAt: entry.expiresAt };
}
