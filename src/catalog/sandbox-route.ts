import { DurableObject } from "cloudflare:workers";
import { ConfigError, configFrom } from "../config.ts";
import { createResumeClient, type ResumeSandbox } from "../control-plane/resume-client.ts";
import { logEvent } from "../log.ts";
import { type LookupResult, type ResumeCredentials, type Route, sameRoute } from "./route.ts";
import { RouteStore } from "./route-store.ts";

/**
 * The route catalog for one sandbox (addressed by `getByName(sandboxId)`).
 * On a miss it calls ResumeSandbox itself, so that every request waiting on
 * this sandbox joins one call: concurrent requests to one object share its
 * I/O context, so an in-memory promise coalesces them safely here, unlike in
 * the stateless Worker.
 */
export class SandboxRoute extends DurableObject<Env> {
	readonly #store: RouteStore;
	#flight: Flight | undefined;
	#resumeSandbox: ResumeSandbox | undefined;

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		this.#store = new RouteStore(ctx.storage.sql);
	}

	/** The sandbox's route, resuming the sandbox if the catalog has none. */
	async lookup(sandboxId: string, credentials: ResumeCredentials): Promise<LookupResult> {
		const key = credentialsKey(credentials);
		for (let attempt = 0; ; attempt++) {
			const route = this.#store.current(Date.now());
			if (route !== null) return { ok: true, route };

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
	 * Forgets the route if it is still `stale`: its node said the sandbox is
	 * not there. A route learned since, even on the same node, is kept.
	 */
	async invalidate(stale: Route): Promise<boolean> {
		const route = this.#store.current(Date.now());
		if (route === null || !sameRoute(route, stale)) return false;
		this.#store.clear();
		return true;
	}

	/** The stored route, expired or not; for operators and tests. */
	async peek(): Promise<Route | null> {
		return this.#store.current(0);
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
		if (!outcome.ok) return outcome;

		const route: Route = {
			nodeIp: outcome.nodeIp,
			learnedAt: finishedAt,
			expiresAt: finishedAt + config.routeTtlMs,
		};
		this.#store.save(sandboxId, route);
		return { ok: true, route };
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
