// One Redis catalog entry -> one catalog API put item, or the reason it cannot
// be routed. The value is Go's encoding/json of E2B's SandboxInfo
// (packages/shared/pkg/sandbox-catalog); older versions lack team_id,
// sandbox_end_time and the keepalive policy, which E2B has written both as
// `traffic_keepalive: bool` and as `keepalive: {traffic: {enabled: bool}}`.

import { isIP } from "node:net";
import {
	catalogTextRule,
	isCatalogText,
	isRfc3339DateTime,
	maxRouteTtlSeconds,
	maxSandboxLengthHours,
} from "../src/rules/catalog-limits.ts";

export const KEY_PREFIX = "sandbox:catalog:";

export function keyOf(sandboxId: string): string {
	return KEY_PREFIX + sandboxId;
}

/** The fields the catalog API accepts for a put, and no others: it rejects unknown ones. */
export interface PutItem {
	sandbox_id: string;
	orchestrator_ip: string;
	execution_id: string;
	ttl_seconds: number;
	orchestrator_id?: string;
	sandbox_started_at?: string;
	sandbox_max_length_in_hours?: number;
	team_id?: string;
	traffic_keepalive?: boolean;
}

export type Translation = { ok: true; item: PutItem } | { ok: false; reason: string };

// Go's zero time.Time, which it marshals rather than omits.
const ZERO_TIME = /^0001-01-01T00:00:00(\.0+)?Z$/;

/**
 * `pttlMs` is Redis's PTTL: the remaining lifetime in ms, or -1 for a key
 * without one. The edge's route then lives as long as the key; a key without
 * a TTL lives the sandbox's maximum length, or `defaultTtlSeconds`.
 */
export function translate(sandboxId: string, value: string, pttlMs: number, defaultTtlSeconds: number): Translation {
	let info: unknown;
	try {
		info = JSON.parse(value);
	} catch {
		return { ok: false, reason: "the value is not JSON" };
	}
	if (typeof info !== "object" || info === null || Array.isArray(info)) {
		return { ok: false, reason: "the value is not a JSON object" };
	}
	const fields = info as Record<string, unknown>;

	const ip = fields.orchestrator_ip;
	if (typeof ip !== "string" || ip === "") {
		return { ok: false, reason: "orchestrator_ip is empty (the edge routes by IP only)" };
	}
	if (isIP(ip) === 0) return { ok: false, reason: `orchestrator_ip "${clip(ip)}" is not an IP address` };
	const executionId = fields.execution_id;
	if (typeof executionId !== "string" || executionId === "") {
		return { ok: false, reason: "execution_id is missing or empty" };
	}
	if (!isCatalogText(executionId)) {
		return { ok: false, reason: `execution_id "${clip(executionId)}" is not ${catalogTextRule}` };
	}

	const maxHours = fields.sandbox_max_length_in_hours;
	const hasMaxHours =
		typeof maxHours === "number" &&
		Number.isSafeInteger(maxHours) &&
		maxHours >= 0 &&
		maxHours <= maxSandboxLengthHours;
	let ttlSeconds: number;
	if (pttlMs > 0) ttlSeconds = Math.ceil(pttlMs / 1000);
	else if (hasMaxHours && maxHours > 0) ttlSeconds = maxHours * 3600;
	else ttlSeconds = defaultTtlSeconds;
	// The catalog API's limit; the bridge puts a longer-lived route again before the edge drops it.
	ttlSeconds = Math.min(ttlSeconds, maxRouteTtlSeconds);

	const item: PutItem = {
		sandbox_id: sandboxId,
		orchestrator_ip: ip,
		execution_id: executionId,
		ttl_seconds: ttlSeconds,
	};
	const orchestratorId = nonEmpty(fields.orchestrator_id);
	if (orchestratorId !== undefined) item.orchestrator_id = orchestratorId;
	const startedAt = fields.sandbox_started_at;
	if (typeof startedAt === "string" && isRfc3339DateTime(startedAt) && !ZERO_TIME.test(startedAt)) {
		item.sandbox_started_at = startedAt;
	}
	if (hasMaxHours) item.sandbox_max_length_in_hours = maxHours;
	const teamId = nonEmpty(fields.team_id);
	if (teamId !== undefined) item.team_id = teamId;
	const trafficKeepalive = trafficKeepaliveOf(fields);
	if (trafficKeepalive !== undefined) item.traffic_keepalive = trafficKeepalive;
	return { ok: true, item };
}

function trafficKeepaliveOf(fields: Record<string, unknown>): boolean | undefined {
	if (typeof fields.traffic_keepalive === "boolean") return fields.traffic_keepalive;
	const keepalive = fields.keepalive;
	if (typeof keepalive !== "object" || keepalive === null) return undefined;
	const traffic = (keepalive as Record<string, unknown>).traffic;
	if (typeof traffic !== "object" || traffic === null) return undefined;
	const enabled = (traffic as Record<string, unknown>).enabled;
	return typeof enabled === "boolean" ? enabled : undefined;
}

/** Optional text the edge would refuse (and refuse the whole route with) is left out instead. */
function nonEmpty(value: unknown): string | undefined {
	return typeof value === "string" && isCatalogText(value) ? value : undefined;
}

/** For log lines: values come from Redis, so bound them. */
export function clip(text: string, max = 80): string {
	return text.length <= max ? text : `${text.slice(0, max)}...`;
}
