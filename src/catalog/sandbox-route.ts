import { DurableObject } from "cloudflare:workers";
import { ConfigError, configFrom } from "../config.ts";
import { createResumeClient, type ResumeSandbox } from "../control-plane/resume-client.ts";
import { logEvent } from "../log.ts";
import type { LookupResult, ResumeCredentials, Route } from "./route.ts";
import { RouteStore } from "./route-store.ts";

/**
 * The route catalog for one sandbox (addressed by `getByName(sandboxId)`).
 * On a miss it calls ResumeSandbox itself, so that every request waiting on
 * this sandbox joins one call: concurrent requests to one object share its
 * I/O context, so an in-memory map of in-flight promises coalesces them
 * safely here, unlike in the stateless Worker.
 */
export class SandboxRoute extends DurableObject<Env> {
	readonly #store: RouteStore;
	readonly #inFlight = new Map<string, Promise<LookupResult>>();
	#resumeSandbox: ResumeSandbox | undefined;

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		this.#store = new RouteStore(ctx.storage.sql);
	}

	/** The sandbox's route, resuming the sandbox if the catalog has none. */
	async lookup(sandboxId: string, credentials: ResumeCredentials): Promise<LookupResult> {
		const route = this.#store.current(Date.now());
		if (route !== null) return { ok: true, route, fromControlPlane: false };

		// Callers join only a call made with the same credentials: the
		// control plane authorises each set on its own, so a stranger's
		// rejected resume must not fail the owner's requests, nor the
		// owner's accepted one answer for a stranger's.
		const key = coalescingKey(credentials);
		let pending = this.#inFlight.get(key);
		if (pending === undefined) {
			pending = this.#resumeAndStore(sandboxId, credentials).finally(() => this.#inFlight.delete(key));
			this.#inFlight.set(key, pending);
		}
		return pending;
	}

	/** Forgets the route if it still points at `nodeIp`: the node said the sandbox is not there. */
	async invalidate(nodeIp: string): Promise<boolean> {
		const route = this.#store.current(Date.now());
		if (route === null || route.nodeIp !== nodeIp) return false;
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
		return { ok: true, route, fromControlPlane: true };
	}
}

function coalescingKey(credentials: ResumeCredentials): string {
	return JSON.stringify([credentials.port, credentials.trafficAccessToken, credentials.envdAccessToken]);
}
