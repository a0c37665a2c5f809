import type { Config } from "../config.ts";
import type { ControlPlaneClient } from "../control-plane/sandbox-service.ts";
import { logEvent } from "../log.ts";
import type { ResumeCredentials } from "../resume-types.ts";
import type { CatalogEntry } from "./route.ts";

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

/** The key of when the next KeepAliveSandbox call may be made, in the object's key-value storage. */
export const keepAliveKey = "keepalive-next";
/** Bound on the credentials whose keepalive was refused, remembered until the interval ends. */
const maxRefusals = 100;

/** The team to name in KeepAliveSandbox, when the entry asks for traffic keepalive. */
export function keepaliveTeam(entry: CatalogEntry): string | undefined {
	// E2B's edge: older entries may say keepalive without a team; they cannot be kept alive.
	return entry.details.trafficKeepalive === true ? entry.details.teamId : undefined;
}

export interface KeepAliveContext {
	sandboxId: string;
	entry: CatalogEntry | null;
	/** The caller's credentials, which a node accepted (a refused request is no traffic), and their key. */
	credentials: ResumeCredentials;
	credentialsKey: string;
	config: Pick<Config, "trafficKeepaliveIntervalMs">;
	client: ControlPlaneClient;
	/** Stored, not kept in memory: an object idle between two intervals is evicted. */
	kv: SyncKvStorage;
	/** Turns the entry's keepalive off, if it is still the stored one. */
	turnOff: (entry: CatalogEntry) => Promise<void>;
}

/**
 * Traffic reached the sandbox. If its catalog entry asks for traffic
 * keepalive, tell the control plane, which pushes back the sandbox's
 * auto-pause; at most once per TRAFFIC_KEEPALIVE_INTERVAL_MS for the whole
 * edge, which the sandbox's object alone can decide, since every isolate in
 * every location reports there. A refusal of the entry (its policy is off,
 * its IDs are not the control plane's) turns keepalive off for it; a refusal
 * of the credentials, which may be one stranger's, leaves the interval to
 * other callers' and is not tried again within it; any other failure waits
 * for the next interval.
 */
export class KeepAlive {
	/** Credentials whose call the control plane refused, until the interval they were refused in ends. */
	readonly #refusals = new Map<string, number>();

	async report(context: KeepAliveContext): Promise<KeepAliveReport> {
		const { sandboxId, entry, kv } = context;
		const now = Date.now();
		const teamId = entry === null ? undefined : keepaliveTeam(entry);
		if (entry === null || teamId === undefined) return { result: "off" };
		const due = kv.get<number>(keepAliveKey) ?? 0;
		if (now < due) return { result: "skipped", nextAt: due };
		const refusedUntil = this.#refusals.get(context.credentialsKey);
		if (refusedUntil !== undefined && now < refusedUntil) return { result: "refused", nextAt: refusedUntil };
		// Few credentials ever fail here (the node let them through); the bound is for safety.
		if (this.#refusals.size >= maxRefusals) this.#refusals.clear();
		const nextAt = now + context.config.trafficKeepaliveIntervalMs;
		kv.put(keepAliveKey, nextAt);
		const outcome = await context.client.keepAlive(sandboxId, teamId, context.credentials);
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
			// credentials fail can use up the owner's turn.
			if (kv.get<number>(keepAliveKey) === nextAt) {
				if (due === 0) kv.delete(keepAliveKey);
				else kv.put(keepAliveKey, due);
			}
			this.#refusals.set(context.credentialsKey, nextAt);
			return { result: "refused", nextAt };
		}
		if (outcome.verdict !== "off") return { result: "failed", nextAt };
		await context.turnOff(entry);
		return { result: "off" };
	}
}
