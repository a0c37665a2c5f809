// GET /sandboxes and GET /v2/sandboxes, as e2b-dev/infra's sandboxes_list.go
// answers them: filters (metadata, state, startedAfter, template), order by
// start time, and v2's keyset pagination with E2B's cursor format
// (base64url of "<RFC 3339 time>__<sandbox ID>[__asc]") in X-Next-Token.

import type { SandboxView } from "../model.ts";
import { RestError, validationError } from "./errors.ts";
import { apiState, DEFAULT_TEMPLATE_ID, startedAtOf } from "./shapes.ts";

const MAX_LIMIT = 100;

/** Go's url.QueryUnescape: "+" is a space, and a malformed escape is an error. */
function queryUnescape(text: string): string {
	return decodeURIComponent(text.replaceAll("+", " "));
}

/** E2B's utils.parseFilters: "k=v&k2=v2", each part unescaped, after the whole is. */
function parseMetadataFilter(query: string): Map<string, string> {
	const filters = new Map<string, string>();
	for (const pair of queryUnescape(query).split("&")) {
		const parts = pair.split("=");
		if (parts.length !== 2) throw new Error("invalid key value pair in query");
		filters.set(queryUnescape(parts[0] ?? ""), queryUnescape(parts[1] ?? ""));
	}
	return filters;
}

function metadataFilter(query: URLSearchParams, version: "v1" | "v2"): Map<string, string> | undefined {
	const raw = query.get("metadata");
	if (raw === null) return undefined;
	try {
		return parseMetadataFilter(raw);
	} catch (error) {
		const detail = error instanceof Error ? error.message : String(error);
		// v2 hides the reason; v1 gives it, wrapped twice as E2B's handler wraps it.
		throw new RestError(
			400,
			version === "v2" ? "Error parsing metadata" : `Error parsing metadata: error parsing metadata: ${detail}`,
		);
	}
}

function matchesMetadata(sandbox: SandboxView, filter: Map<string, string> | undefined): boolean {
	if (filter === undefined) return true;
	if (sandbox.metadata === undefined) return false;
	for (const [key, value] of filter) if (sandbox.metadata[key] !== value) return false;
	return true;
}

/** Newest first by start time, then by ID ascending; ascending order is the exact reverse. */
function compare(order: "asc" | "desc"): (a: SandboxView, b: SandboxView) => number {
	return (a, b) => {
		const byTime = startedAtOf(a) - startedAtOf(b);
		if (byTime !== 0) return order === "asc" ? byTime : -byTime;
		const byId = a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
		return order === "asc" ? -byId : byId;
	};
}

/** The v1 list: running sandboxes only (not pausing ones), newest first. */
export function listV1(sandboxes: SandboxView[], query: URLSearchParams): SandboxView[] {
	const filter = metadataFilter(query, "v1");
	return sandboxes.filter((s) => s.state === "running" && matchesMetadata(s, filter)).sort(compare("desc"));
}

interface Cursor {
	time: number;
	id: string;
}

function encodeCursor(sandbox: SandboxView, order: "asc" | "desc"): string {
	const text = `${new Date(startedAtOf(sandbox)).toISOString()}__${sandbox.id}${order === "asc" ? "__asc" : ""}`;
	return Buffer.from(text, "utf8").toString("base64url");
}

function decodeCursor(token: string, order: "asc" | "desc"): Cursor {
	const invalid = new RestError(400, "Invalid next token");
	// base64.URLEncoding: the URL alphabet, with padding.
	if (!/^[A-Za-z0-9_-]*={0,2}$/.test(token) || token.replace(/=+$/, "").length % 4 === 1) throw invalid;
	const parts = Buffer.from(token, "base64url").toString("utf8").split("__");
	if (parts.length < 2 || parts.length > 3) throw invalid;
	if (parts.length === 3 && parts[2] !== "asc") throw invalid;
	if ((parts.length === 3 ? "asc" : "desc") !== order) throw invalid;
	const time = Date.parse(parts[0] ?? "");
	if (Number.isNaN(time)) throw invalid;
	return { time, id: parts[1] ?? "" };
}

/** Whether a sandbox comes after the cursor in the order (E2B's FilterBasedOnCursor). */
function afterCursor(sandbox: SandboxView, cursor: Cursor, order: "asc" | "desc"): boolean {
	const time = startedAtOf(sandbox);
	if (order === "asc") return time > cursor.time || (time === cursor.time && sandbox.id < cursor.id);
	return time < cursor.time || (time === cursor.time && sandbox.id > cursor.id);
}

export interface Page {
	sandboxes: SandboxView[];
	headers: Record<string, string>;
}

function parseStates(query: URLSearchParams): Set<"running" | "paused"> {
	const raw = query.get("state");
	if (raw === null) return new Set(["running", "paused"]);
	const states = new Set<"running" | "paused">();
	for (const state of raw.split(",")) {
		if (state !== "running" && state !== "paused") {
			throw validationError(
				`parameter "state" in query has an error: value ${JSON.stringify(state)} is not one of the allowed values ["running","paused"]`,
			);
		}
		states.add(state);
	}
	return states;
}

function parseOrder(query: URLSearchParams): "asc" | "desc" {
	const raw = query.get("order");
	if (raw === null || raw === "desc") return "desc";
	if (raw === "asc") return "asc";
	throw validationError(
		`parameter "order" in query has an error: value ${JSON.stringify(raw)} is not one of the allowed values ["asc","desc"]`,
	);
}

function parseLimit(query: URLSearchParams): number {
	const raw = query.get("limit");
	if (raw === null) return MAX_LIMIT;
	const limit = /^-?\d+$/.test(raw) ? Number(raw) : Number.NaN;
	if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
		throw validationError(`parameter "limit" in query has an error: must be an integer from 1 to ${MAX_LIMIT}`);
	}
	return limit;
}

function parseStartedAfter(query: URLSearchParams): number | undefined {
	const raw = query.get("startedAfter");
	if (raw === null) return undefined;
	const time = /^\d{4}-\d{2}-\d{2}T/.test(raw) ? Date.parse(raw) : Number.NaN;
	if (Number.isNaN(time)) {
		throw validationError(`parameter "startedAfter" in query has an error: value must be an RFC 3339 date-time`);
	}
	return time;
}

/** The v2 list: running and paused (pausing counts as paused) by default, one page, newest first by default. */
export function listV2(sandboxes: SandboxView[], query: URLSearchParams): Page {
	const states = parseStates(query);
	const order = parseOrder(query);
	const limit = parseLimit(query);
	const nextToken = query.get("nextToken");
	const cursor = nextToken === null || nextToken === "" ? undefined : decodeCursor(nextToken, order);
	const filter = metadataFilter(query, "v2");
	const startedAfter = parseStartedAfter(query);
	const template = query.get("template");

	const matching = sandboxes.filter(
		(s) =>
			states.has(apiState(s)) &&
			matchesMetadata(s, filter) &&
			(startedAfter === undefined || startedAtOf(s) >= startedAfter) &&
			(template === null || (s.templateId ?? DEFAULT_TEMPLATE_ID) === template),
	);
	const headers: Record<string, string> = {};
	// Only when running sandboxes were asked for: the running ones matching, before paging.
	if (states.has("running")) {
		headers["x-total-running"] = String(matching.filter((s) => s.state === "running").length);
	}
	const sorted = matching.filter((s) => cursor === undefined || afterCursor(s, cursor, order)).sort(compare(order));
	const page = sorted.slice(0, limit);
	const last = page.at(-1);
	if (sorted.length > limit && last !== undefined) headers["x-next-token"] = encodeCursor(last, order);
	return { sandboxes: page, headers };
}
