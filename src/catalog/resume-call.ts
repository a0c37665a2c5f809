import type { Config } from "../config.ts";
import type { ControlPlaneClient } from "../control-plane/sandbox-service.ts";
import { logEvent } from "../log.ts";
import type { ResumeCredentials, ResumeFailure } from "../resume-types.ts";
import type { FailureMemory, RememberedFailure } from "./failure-memory.ts";
import type { CatalogEntry, LookupResult, Route } from "./route.ts";
import type { RouteState } from "./route-state.ts";
import type { RouteStore } from "./route-store.ts";

/** What one ResumeSandbox call needs of its sandbox's object. */
export interface ResumeCall {
	sandboxId: string;
	credentials: ResumeCredentials;
	/** The credentials' key, under which a refusal is remembered. */
	key: string;
	config: Pick<Config, "controlPlaneProtocol" | "notFoundCacheMs" | "routeTtlMs">;
	client: ControlPlaneClient;
	store: RouteStore;
	state: RouteState;
	failures: FailureMemory;
	routeOf: (entry: CatalogEntry) => Route;
	/** Saves a learned route once the requests that waited for it have their answer. */
	persistLater: (entry: CatalogEntry) => void;
	setAlarm: (at: number) => Promise<void>;
}

/**
 * Calls ResumeSandbox and takes in its answer: the node it gives (unless a
 * push landed meanwhile, which is the control plane's newer word), or a
 * failure to remember.
 */
export async function resumeAndStore(call: ResumeCall): Promise<LookupResult> {
	const { sandboxId, credentials, config, store, state, failures } = call;
	const startedAt = Date.now();
	const outcome = await call.client.resume(sandboxId, credentials);
	const finishedAt = Date.now();
	logEvent("resume", {
		sandboxId,
		port: credentials.port,
		protocol: config.controlPlaneProtocol,
		outcome: outcome.ok ? "ok" : outcome.error.code,
		nodeIp: outcome.ok ? outcome.nodeIp : undefined,
		durationMs: finishedAt - startedAt,
	});
	const pushed = store.current(finishedAt);
	if (!outcome.ok) {
		if (pushed !== null && pushed.learnedAt >= startedAt) return { ok: true, route: call.routeOf(pushed), via: "push" };
		// A doubted push's word stands, disputed: its node's denial is not believed again for a while.
		if (state.resumeFailed(finishedAt, config.notFoundCacheMs) === "disputed") return failed(outcome.error);
		const error = failures.record(call.key, outcome.error, finishedAt);
		// A stored failure leaves storage behind: the alarm removes it once it no longer holds.
		if (pushed === null && store.holdsStorage() && failures.sandboxWideUntil > finishedAt) {
			await call.setAlarm(failures.sandboxWideUntil);
		}
		return failed(error, failures.recall(call.key, finishedAt));
	}
	failures.clear();
	const rpcMs = finishedAt - startedAt;
	// The control plane pushes the route of a sandbox it resumes, often
	// before its answer arrives here. That push names the execution, which a
	// later delete needs, so it is kept rather than overwritten.
	if (pushed !== null && pushed.source === "push" && pushed.learnedAt >= startedAt) {
		state.resumed(pushed, finishedAt);
		return { ok: true, route: call.routeOf(pushed), via: "resume", rpcMs };
	}
	const entry: CatalogEntry = {
		nodeIp: outcome.nodeIp,
		learnedAt: finishedAt,
		expiresAt: finishedAt + config.routeTtlMs,
		source: "resume",
		details: {},
	};
	store.remember(entry);
	state.resumed(entry, finishedAt);
	call.persistLater(entry);
	return { ok: true, route: call.routeOf(entry), via: "resume", rpcMs };
}

export function failed(error: ResumeFailure, remembered?: RememberedFailure): Extract<LookupResult, { ok: false }> {
	if (remembered === undefined || !remembered.sandboxWide) return { ok: false, error };
	return { ok: false, error, remembered: { error: remembered.error, until: remembered.until } };
}
