import { readUpTo } from "../bytes.ts";
import type { PushedRoute, RouteDetails } from "../catalog/route.ts";
import { isNodeIp } from "../control-plane/node-ip.ts";
import { excerpt } from "../errors/excerpt.ts";
import { ProxyError } from "../errors/proxy-error.ts";
import {
	catalogTextRule,
	isCatalogText,
	isRfc3339DateTime,
	maxRouteTtlSeconds,
	maxSandboxLengthHours,
} from "../rules/catalog-limits.ts";
import { isSandboxId, sandboxIdRule } from "../rules/sandbox-hosts.ts";

/**
 * Reading and checking what the control plane sends to the catalog API. The
 * field names are those of E2B's SandboxInfo. Every problem is a 400 whose
 * message starts with the field it is about, and nothing is stored from a
 * request that has one.
 */

export const maxSingleBodyBytes = 16 * 1024;
export const maxBatchBodyBytes = 1024 * 1024;
export const maxBatchItems = 1000;

export class InvalidInput extends ProxyError {
	constructor(field: string, problem: string) {
		super("invalid_request", { message: `${field}: ${problem}` });
		this.name = "InvalidInput";
	}
}

export function checkedSandboxId(value: unknown, field: string): string {
	if (typeof value !== "string") throw new InvalidInput(field, "must be a string");
	if (!isSandboxId(value)) {
		throw new InvalidInput(field, `must be ${sandboxIdRule}, got "${excerpt(value, 64)}"`);
	}
	return value;
}

export function checkedExecutionId(value: unknown, field: string): string {
	if (value === undefined || value === null) throw new InvalidInput(field, "is required");
	return text(value, field);
}

export const putFields: ReadonlySet<string> = new Set([
	"orchestrator_ip",
	"execution_id",
	"ttl_seconds",
	"orchestrator_id",
	"sandbox_started_at",
	"sandbox_end_time",
	"sandbox_max_length_in_hours",
	"team_id",
	"traffic_keepalive",
]);

/** A PUT body (or a batch's put item, whose `sandbox_id` the caller has taken out). */
export function pushedRoute(value: unknown, prefix = "", allowed: ReadonlySet<string> = putFields): PushedRoute {
	const body = object(value, prefix === "" ? "body" : prefix.slice(0, -1));
	for (const key of Object.keys(body)) {
		if (!allowed.has(key)) throw new InvalidInput(`${prefix}${excerpt(key, 64)}`, "is not a known field");
	}
	const field = (name: string) => `${prefix}${name}`;
	const nodeIp = body.orchestrator_ip;
	if (nodeIp === undefined || nodeIp === null) throw new InvalidInput(field("orchestrator_ip"), "is required");
	if (typeof nodeIp !== "string" || !isNodeIp(nodeIp)) {
		throw new InvalidInput(field("orchestrator_ip"), "must be an IPv4 or IPv6 address literal");
	}
	const ttl = body.ttl_seconds;
	if (ttl === undefined || ttl === null) throw new InvalidInput(field("ttl_seconds"), "is required");
	if (typeof ttl !== "number" || !Number.isInteger(ttl) || ttl < 1 || ttl > maxRouteTtlSeconds) {
		throw new InvalidInput(field("ttl_seconds"), `must be an integer from 1 to ${maxRouteTtlSeconds}`);
	}
	return {
		nodeIp,
		executionId: checkedExecutionId(body.execution_id, field("execution_id")),
		ttlSeconds: ttl,
		details: details(body, field),
	};
}

function details(body: Record<string, unknown>, field: (name: string) => string): RouteDetails {
	const result: RouteDetails = {};
	if (present(body.orchestrator_id)) result.orchestratorId = text(body.orchestrator_id, field("orchestrator_id"));
	if (present(body.team_id)) result.teamId = text(body.team_id, field("team_id"));
	if (present(body.sandbox_started_at)) {
		result.sandboxStartedAt = dateTime(body.sandbox_started_at, field("sandbox_started_at"));
	}
	if (present(body.sandbox_end_time))
		result.sandboxEndTime = dateTime(body.sandbox_end_time, field("sandbox_end_time"));
	if (present(body.sandbox_max_length_in_hours)) {
		const hours = body.sandbox_max_length_in_hours;
		if (typeof hours !== "number" || !Number.isInteger(hours) || hours < 0 || hours > maxSandboxLengthHours) {
			throw new InvalidInput(
				field("sandbox_max_length_in_hours"),
				`must be an integer from 0 to ${maxSandboxLengthHours}`,
			);
		}
		result.sandboxMaxLengthInHours = hours;
	}
	if (present(body.traffic_keepalive)) {
		if (typeof body.traffic_keepalive !== "boolean") {
			throw new InvalidInput(field("traffic_keepalive"), "must be true or false");
		}
		result.trafficKeepalive = body.traffic_keepalive;
	}
	return result;
}

function dateTime(value: unknown, field: string): string {
	if (typeof value !== "string" || !isRfc3339DateTime(value)) {
		throw new InvalidInput(field, "must be an RFC 3339 date-time");
	}
	return value;
}

/** Optional fields may be absent or null, as a Go client may send them. */
function present(value: unknown): boolean {
	return value !== undefined && value !== null;
}

function text(value: unknown, field: string): string {
	if (typeof value !== "string") throw new InvalidInput(field, "must be a string");
	if (!isCatalogText(value)) throw new InvalidInput(field, `must be ${catalogTextRule}`);
	return value;
}

export function object(value: unknown, field: string): Record<string, unknown> {
	if (typeof value !== "object" || value === null || Array.isArray(value)) {
		throw new InvalidInput(field, "must be a JSON object");
	}
	return value as Record<string, unknown>;
}

/**
 * The request's JSON body, read no further than `limit` bytes: a body that
 * announces more is refused before any of it is read.
 */
export async function readJson(request: Request, limit: number): Promise<unknown> {
	const tooLarge = () => new InvalidInput("body", `must be at most ${limit} bytes`);
	const length = Number(request.headers.get("content-length") ?? Number.NaN);
	if (length > limit) throw tooLarge();
	if (request.body === null) throw new InvalidInput("body", "is required");
	const reader = request.body.getReader();
	let head: Awaited<ReturnType<typeof readUpTo>>;
	try {
		head = await readUpTo(reader, limit);
	} catch (error) {
		// The caller went away, or sent less than it announced.
		throw new ProxyError("request_body_incomplete", { cause: error });
	}
	if (!head.complete) {
		await reader.cancel().catch(() => {});
		throw tooLarge();
	}
	if (head.bytes.byteLength === 0) throw new InvalidInput("body", "is required");
	const bytes = head.bytes;
	try {
		return JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes));
	} catch {
		throw new InvalidInput("body", "is not valid JSON");
	}
}
