// Reading E2B's catalog keys from Redis, and following their keyspace
// notifications. Only reads: the bridge never writes to E2B's Redis.

import { Redis } from "ioredis";
import { type BackoffPolicy, backoffDelay } from "../src/rules/backoff.ts";
import { KEY_PREFIX } from "./catalog-entry.ts";
import { redactUrl } from "./config.ts";
import type { Log } from "./log.ts";

/** A key's value and its PTTL (ms left, or -1 for no TTL); undefined when the key does not exist. */
export type RedisEntry = { value: string; pttlMs: number } | undefined;

export interface ConnectionOptions {
	url: string;
	/** Names the connection in logs and in CLIENT LIST. */
	role: "reader" | "subscriber";
	log: Log;
	backoff: BackoffPolicy;
	/** Called on every connection after the first, once it is usable. */
	onReconnect?: () => void;
}

/**
 * A connection that reconnects forever with capped, jittered backoff. Commands
 * fail at once while it is down (no offline queue): the sync loop keeps its
 * work and retries on its own schedule, so nothing stale is replayed later.
 */
export function connectRedis(options: ConnectionOptions): Redis {
	const { log, role } = options;
	const where = redactUrl(options.url);
	let lastError = "";
	let everReady = false;
	let connected = false;
	const client = new Redis(options.url, {
		connectionName: `catalog-bridge-${role}`,
		enableOfflineQueue: false,
		autoResubscribe: false,
		maxRetriesPerRequest: 0,
		retryStrategy: (attempt) => {
			const delay = backoffDelay(attempt, options.backoff);
			log(`redis ${role}: cannot connect to ${where} (${lastError || "connection closed"}); retrying in ${delay} ms`);
			return delay;
		},
	});
	client.on("error", (error: Error) => {
		lastError = error.message;
	});
	client.on("ready", () => {
		connected = true;
		if (everReady) {
			log(`redis ${role}: reconnected to ${where}`);
			options.onReconnect?.();
		}
		everReady = true;
	});
	client.on("close", () => {
		if (connected) log(`redis ${role}: connection to ${where} lost`);
		connected = false;
	});
	return client;
}

/** Resolves once the connection is usable; false if `signal` aborted first. */
export function waitReady(client: Redis, signal: AbortSignal): Promise<boolean> {
	if (client.status === "ready") return Promise.resolve(true);
	if (signal.aborted) return Promise.resolve(false);
	return new Promise((resolve) => {
		const onReady = () => {
			signal.removeEventListener("abort", onAbort);
			resolve(true);
		};
		const onAbort = () => {
			client.off("ready", onReady);
			resolve(false);
		};
		client.once("ready", onReady);
		signal.addEventListener("abort", onAbort, { once: true });
	});
}

export async function closeRedis(client: Redis): Promise<void> {
	if (client.status === "ready") {
		try {
			await client.quit();
			return;
		} catch {
			// Fall through to a hard disconnect.
		}
	}
	client.disconnect(false);
}

export type NotificationCheck =
	| { ok: true; flags: string }
	| { ok: false; flags: string; missing: string }
	| { ok: "unknown"; reason: string };

/**
 * The bridge needs K (keyspace channel) and the classes of every event that
 * changes a catalog key: $ (set), g (del, rename, expire...), x (expired).
 * `A` stands for all classes.
 */
export async function checkNotifications(client: Redis): Promise<NotificationCheck> {
	let flags: string;
	try {
		const answer = (await client.call("CONFIG", "GET", "notify-keyspace-events")) as string[];
		if (!Array.isArray(answer) || typeof answer[1] !== "string") {
			return { ok: "unknown", reason: "CONFIG GET notify-keyspace-events gave no value" };
		}
		flags = answer[1];
	} catch (error) {
		// Managed Redis (ElastiCache, Memorystore...) often disables or renames CONFIG.
		return { ok: "unknown", reason: (error as Error).message };
	}
	const classes = flags.includes("A") ? `${flags}$gx` : flags;
	const missing = ["K", "$", "g", "x"].filter((flag) => !classes.includes(flag)).join("");
	return missing === "" ? { ok: true, flags } : { ok: false, flags, missing };
}

export function notificationAdvice(check: { flags: string; missing: string }): string {
	return [
		`Redis keyspace notifications are ${check.flags === "" ? "off" : `"${check.flags}"`}, missing "${check.missing}":`,
		"the bridge would not see catalog changes. Enable them with",
		"  redis-cli CONFIG SET notify-keyspace-events 'K$gx'",
		"or the redis.conf line  notify-keyspace-events K$gx  (keep any flags you already use),",
		"or run with --no-notifications to rely on the periodic reconcile alone.",
	].join("\n");
}

/** Reads each key's value and PTTL in one MULTI, so that the two agree. */
export async function readEntries(client: Redis, sandboxIds: readonly string[]): Promise<Map<string, RedisEntry>> {
	const entries = new Map<string, RedisEntry>();
	if (sandboxIds.length === 0) return entries;
	const multi = client.multi();
	for (const id of sandboxIds) multi.get(KEY_PREFIX + id).pttl(KEY_PREFIX + id);
	const replies = await multi.exec();
	if (replies === null) throw new Error("redis aborted the read transaction");
	sandboxIds.forEach((id, i) => {
		const [valueError, value] = replies[2 * i] ?? [];
		const [pttlError, pttl] = replies[2 * i + 1] ?? [];
		if (valueError) throw valueError;
		if (pttlError) throw pttlError;
		// PTTL -2 (gone) or 0 (expiring now) is a key that no longer routes anything.
		entries.set(
			id,
			typeof value === "string" && typeof pttl === "number" && pttl !== -2 && pttl !== 0
				? { value, pttlMs: pttl }
				: undefined,
		);
	});
	return entries;
}

/** Every catalog key's sandbox ID, page by page, as SCAN returns them (possibly repeated). */
export async function* scanIds(client: Redis, count: number): AsyncGenerator<string[]> {
	let cursor = "0";
	do {
		const [next, keys] = await client.scan(cursor, "MATCH", `${KEY_PREFIX}*`, "COUNT", count);
		cursor = next;
		if (keys.length > 0) yield keys.map((key) => key.slice(KEY_PREFIX.length));
	} while (cursor !== "0");
}

/**
 * Subscribes to every event on the catalog's keys, on its own connection, and
 * again after each reconnect (notifications sent while it was down are lost:
 * `onSubscribed` is where the caller reconciles).
 */
export function followCatalog(
	subscriber: Redis,
	db: number,
	onKeyEvent: (sandboxId: string, event: string) => void,
	onSubscribed: () => void,
	log: Log,
): void {
	const channelPrefix = `__keyspace@${db}__:`;
	const pattern = `${channelPrefix}${KEY_PREFIX}*`;
	const subscribe = () => {
		subscriber.psubscribe(pattern).then(onSubscribed, (error: Error) => {
			// The connection dropped meanwhile; the next "ready" subscribes again.
			log(`redis subscriber: PSUBSCRIBE failed (${error.message}); will retry on reconnect`);
		});
	};
	subscriber.on("ready", subscribe);
	if (subscriber.status === "ready") subscribe();
	subscriber.on("pmessage", (_pattern: string, channel: string, event: string) => {
		if (channel.startsWith(channelPrefix + KEY_PREFIX))
			onKeyEvent(channel.slice(channelPrefix.length + KEY_PREFIX.length), event);
	});
}
