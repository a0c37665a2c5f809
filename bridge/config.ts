// Command line and environment -> validated settings. Every failure names the
// flag or variable at fault, and never echoes CATALOG_SECRET.

import { parseArgs } from "node:util";
import { maxRouteTtlSeconds } from "../src/rules/catalog-limits.ts";

export const USAGE = `Usage: npm run catalog-bridge -- --redis <url> --edge <url> [options]

Mirrors E2B's Redis sandbox catalog (keys sandbox:catalog:<id>) into the edge's
catalog API, and keeps it in sync.

Required:
  --redis <url>                redis://[user:password@]host[:port][/db] or rediss://...
  --edge <url>                 the catalog API's origin, e.g. https://edge.sandbox.example.com
                               (http:// only for localhost and loopback addresses)
  CATALOG_SECRET (environment) the edge's catalog API bearer token

Options:
  --reconcile-interval <time>  full rescan of Redis, the safety net for missed
                               notifications (default 60s)
  --default-ttl <time>         ttl for a key with no Redis TTL and no
                               sandbox_max_length_in_hours (default 24h)
  --scan-count <n>             SCAN COUNT hint (default 500)
  --state-file <path>          remember what was sent to the edge across restarts,
                               so routes deleted while the bridge was stopped are
                               deleted at the edge too
  --no-notifications           do not follow keyspace notifications; rely on the
                               periodic reconcile alone
  --mass-delete-share <0..1>   a reconcile that finds more than this share of the
                               routes the bridge knows gone from Redis (and more
                               than --mass-delete-min of them) holds those deletes:
                               Redis may have come back empty, or --redis points at
                               the wrong server or database (default 0.5; 1 turns
                               the guard off)
  --mass-delete-min <n>        never hold a reconcile's deletes when they are this
                               many or fewer (default 10)
  --mass-delete-hold <time>    held deletes go to the edge only if their keys are
                               still gone after this long (default 5m); keys that
                               come back drop them. SIGUSR2 confirms them at once
  --help                       print this and exit

Times are integers with an optional unit: ms, s (the default), m or h.
REDIS_PASSWORD (environment), if set, is used instead of a password in the URL.`;

export class ConfigError extends Error {
	constructor(message: string) {
		super(message);
		this.name = "ConfigError";
	}
}

export interface BridgeConfig {
	/** With REDIS_PASSWORD applied. */
	redisUrl: string;
	edgeOrigin: URL;
	catalogSecret: string;
	reconcileIntervalMs: number;
	defaultTtlSeconds: number;
	scanCount: number;
	notifications: boolean;
	stateFile: string | undefined;
	massDelete: MassDeleteGuard;
}

/** When a reconcile's deletes are held rather than sent (sync-loop.ts). */
export interface MassDeleteGuard {
	/** Held when more than this share of the routes the bridge knows would go... */
	share: number;
	/** ...and more than this many. */
	min: number;
	/** How long held deletes wait for their keys to come back before they are sent. */
	holdMs: number;
}

export type ParsedCommandLine = { help: true } | { help: false; config: BridgeConfig };

export const DEFAULT_RECONCILE_INTERVAL_MS = 60_000;
export const DEFAULT_TTL_SECONDS = 24 * 3600;
export const DEFAULT_SCAN_COUNT = 500;
export const DEFAULT_MASS_DELETE: MassDeleteGuard = { share: 0.5, min: 10, holdMs: 5 * 60_000 };

export function parseCommandLine(argv: string[], env: NodeJS.ProcessEnv): ParsedCommandLine {
	let values: Record<string, string | boolean | undefined>;
	try {
		({ values } = parseArgs({
			args: argv,
			strict: true,
			allowPositionals: false,
			options: {
				redis: { type: "string" },
				edge: { type: "string" },
				"reconcile-interval": { type: "string" },
				"default-ttl": { type: "string" },
				"scan-count": { type: "string" },
				"state-file": { type: "string" },
				"no-notifications": { type: "boolean" },
				"mass-delete-share": { type: "string" },
				"mass-delete-min": { type: "string" },
				"mass-delete-hold": { type: "string" },
				help: { type: "boolean", short: "h" },
			},
		}));
	} catch (error) {
		// parseArgs names the flag ("Unknown option '--x'", "Option '--redis <value>' argument missing").
		throw new ConfigError((error as Error).message);
	}
	if (values.help === true) return { help: true };

	const redis = parseRedisUrl(stringFlag(values, "redis"), env.REDIS_PASSWORD);
	const reconcileIntervalMs = parseDuration(values["reconcile-interval"], "--reconcile-interval", {
		fallbackMs: DEFAULT_RECONCILE_INTERVAL_MS,
		minMs: 100,
	});
	const defaultTtlMs = parseDuration(values["default-ttl"], "--default-ttl", {
		fallbackMs: DEFAULT_TTL_SECONDS * 1000,
		minMs: 1000,
	});
	if (defaultTtlMs % 1000 !== 0) throw new ConfigError("--default-ttl must be a whole number of seconds");
	if (defaultTtlMs > maxRouteTtlSeconds * 1000) {
		throw new ConfigError(
			`--default-ttl must be at most ${maxRouteTtlSeconds / 3600}h, the longest route the edge keeps (got "${values["default-ttl"]}")`,
		);
	}
	const stateFile = values["state-file"];
	if (stateFile === "") throw new ConfigError("--state-file must not be empty");
	return {
		help: false,
		config: {
			redisUrl: redis.url,
			edgeOrigin: parseEdgeOrigin(stringFlag(values, "edge")),
			catalogSecret: parseSecret(env.CATALOG_SECRET),
			reconcileIntervalMs,
			defaultTtlSeconds: defaultTtlMs / 1000,
			scanCount: parseInteger(values["scan-count"], "--scan-count", DEFAULT_SCAN_COUNT, 1, 100_000),
			notifications: values["no-notifications"] !== true,
			stateFile: typeof stateFile === "string" ? stateFile : undefined,
			massDelete: {
				share: parseShare(values["mass-delete-share"], "--mass-delete-share", DEFAULT_MASS_DELETE.share),
				min: parseInteger(values["mass-delete-min"], "--mass-delete-min", DEFAULT_MASS_DELETE.min, 0, 1_000_000_000),
				holdMs: parseDuration(values["mass-delete-hold"], "--mass-delete-hold", {
					fallbackMs: DEFAULT_MASS_DELETE.holdMs,
					minMs: 1000,
				}),
			},
		},
	};
}

function stringFlag(values: Record<string, string | boolean | undefined>, name: string): string {
	const value = values[name];
	if (typeof value !== "string" || value === "") throw new ConfigError(`--${name} <url> is required (see --help)`);
	return value;
}

export function parseRedisUrl(raw: string, passwordFromEnv: string | undefined): { url: string; db: number } {
	let url: URL;
	try {
		url = new URL(raw);
	} catch {
		throw new ConfigError(`--redis must be a URL such as redis://127.0.0.1:6379/0 (got "${redactUrl(raw)}")`);
	}
	if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
		throw new ConfigError(`--redis must start with redis:// or rediss:// (got "${url.protocol}//")`);
	}
	if (url.hostname === "") throw new ConfigError("--redis has no host");
	if (url.search !== "" || url.hash !== "") throw new ConfigError("--redis must not have a query or fragment");
	const path = url.pathname.replace(/^\//, "");
	if (path !== "" && !/^\d{1,5}$/.test(path)) {
		throw new ConfigError(`--redis path must be a database number, e.g. redis://host:6379/0 (got "/${path}")`);
	}
	if (passwordFromEnv !== undefined && passwordFromEnv !== "") url.password = encodeURIComponent(passwordFromEnv);
	return { url: url.href, db: path === "" ? 0 : Number(path) };
}

/** The URL without its password, for messages and logs. */
export function redactUrl(raw: string): string {
	try {
		const url = new URL(raw);
		if (url.password !== "") url.password = "***";
		return url.href;
	} catch {
		return raw.replace(/\/\/[^@/]*@/, "//***@");
	}
}

const LOCAL_HOST = /^(localhost|.+\.localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

/** RFC 6761: `localhost` and every name under it are the loopback host. */
export function isLocalHost(hostname: string): boolean {
	return LOCAL_HOST.test(hostname.replace(/\.$/, ""));
}

export function parseEdgeOrigin(raw: string): URL {
	let url: URL;
	try {
		url = new URL(raw);
	} catch {
		throw new ConfigError(`--edge must be a URL such as https://edge.sandbox.example.com (got "${raw}")`);
	}
	if (url.protocol !== "https:" && url.protocol !== "http:") {
		throw new ConfigError(`--edge must be an http(s) URL (got "${url.protocol}//")`);
	}
	if (url.username !== "" || url.password !== "") {
		throw new ConfigError("--edge must not carry credentials; the bearer token comes from CATALOG_SECRET");
	}
	if (url.pathname !== "/" || url.search !== "" || url.hash !== "") {
		throw new ConfigError(`--edge must be an origin, without a path or query (got "${raw}")`);
	}
	// The bearer token must not cross the network in clear text.
	if (url.protocol === "http:" && !isLocalHost(url.hostname)) {
		throw new ConfigError(`--edge must use https:// unless its host is localhost or a loopback address (got "${raw}")`);
	}
	return url;
}

function parseSecret(raw: string | undefined): string {
	if (raw === undefined || raw === "") {
		throw new ConfigError("CATALOG_SECRET is not set; export the edge's catalog API token in that variable");
	}
	// It goes into a header: printable ASCII, no spaces. The value itself is never shown.
	if (!/^[\x21-\x7e]+$/.test(raw)) {
		throw new ConfigError("CATALOG_SECRET must be printable ASCII without spaces or newlines");
	}
	return raw;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function parseDuration(
	raw: string | boolean | undefined,
	flag: string,
	limits: { fallbackMs: number; minMs: number },
): number {
	if (raw === undefined) return limits.fallbackMs;
	const match = typeof raw === "string" ? /^(\d{1,9})(ms|s|m|h)?$/.exec(raw) : null;
	const ms = match === null ? Number.NaN : Number(match[1]) * (UNITS[match[2] ?? "s"] ?? 1000);
	if (!Number.isSafeInteger(ms) || ms < limits.minMs || ms > 366 * 24 * 3_600_000) {
		throw new ConfigError(
			`${flag} must be a time such as 60s, 5m or 24h, at least ${limits.minMs} ms (got "${String(raw)}")`,
		);
	}
	return ms;
}

function parseInteger(raw: string | boolean | undefined, flag: string, fallback: number, min: number, max: number) {
	if (raw === undefined) return fallback;
	const value = typeof raw === "string" && /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
	if (!Number.isSafeInteger(value) || value < min || value > max) {
		throw new ConfigError(`${flag} must be an integer from ${min} to ${max} (got "${String(raw)}")`);
	}
	return value;
}

/** A share of the routes, from 0 (exclusive) to 1: `0.5`, `.25`, `1`. */
function parseShare(raw: string | boolean | undefined, flag: string, fallback: number): number {
	if (raw === undefined) return fallback;
	const value = typeof raw === "string" && /^(0|1)?(\.\d{1,6})?$/.test(raw) && raw !== "" ? Number(raw) : Number.NaN;
	if (!(value > 0 && value <= 1)) {
		throw new ConfigError(
			`${flag} must be a share of the routes, above 0 and at most 1, such as 0.5 (got "${String(raw)}")`,
		);
	}
	return value;
}
