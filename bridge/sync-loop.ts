// The one loop that sends anything to the edge. Notifications and reconciles
// only mark sandbox IDs dirty; the loop re-reads each dirty key right before
// sending and pushes what Redis holds at that moment (present: put; absent:
// delete), one batch at a time. So an older put can never land after a newer
// delete of the same key, and a key stays dirty until the edge confirms it.

import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import { type BackoffPolicy, backoffDelay, sleep } from "./backoff.ts";
import { clip, isRoutableId, type PutItem, translate } from "./catalog-entry.ts";
import {
	type DeleteItem,
	describe,
	type EdgeClient,
	EdgeError,
	MAX_BATCH_BYTES,
	MAX_BATCH_ITEMS,
} from "./edge-client.ts";
import type { EdgeState } from "./edge-state.ts";
import type { Log } from "./log.ts";
import { type RedisEntry, readEntries, scanIds, waitReady } from "./redis-catalog.ts";

export interface SyncStats {
	/** Batches the edge answered (200), and batches that failed as a whole. */
	batches: number;
	batchFailures: number;
	/** Items the edge confirmed (204). */
	puts: number;
	deletes: number;
	/** Entries that cannot be routed: unroutable ID, bad JSON, no IP... Each counted when read. */
	skipped: number;
	/** Items the edge rejected (400); logged and dropped. */
	rejected: number;
	/** Sandboxes with an item the edge could not store (5xx and other statuses); they stay dirty. */
	retried: number;
	/** Keyspace notifications received. */
	events: number;
	reconciles: number;
	/** When the last full reconcile finished (ms since the epoch). */
	lastReconcileAt: number | undefined;
	/** Sandbox IDs waiting to be sent. */
	dirty: number;
	/** True when nothing is dirty and no reconcile is due: the edge agrees with Redis as last read. */
	idle: boolean;
}

export interface SyncOptions {
	redis: Redis;
	edge: EdgeClient;
	state: EdgeState;
	log: Log;
	scanCount: number;
	reconcileIntervalMs: number;
	defaultTtlSeconds: number;
	/** How long a burst of changes is gathered before it is sent. */
	debounceMs: number;
	backoff: BackoffPolicy;
	/** Aborted to cut a batch in flight short when closing takes too long. */
	requestSignal: AbortSignal;
}

export interface SyncLoop {
	markDirty(sandboxId: string): void;
	/** Notes a keyspace notification; it marks the key dirty. */
	noteEvent(sandboxId: string): void;
	requestReconcile(): void;
	/** Runs until `signal` aborts, finishing the step in progress. */
	run(signal: AbortSignal): Promise<void>;
	stats(): SyncStats;
}

interface Dirty {
	/** Bumped by every change, so that a change made while its key was in flight keeps it dirty. */
	generation: number;
	attempts: number;
	retryAt: number;
}

/** What Redis held when last read, to tell what changed at the next reconcile. */
interface Seen {
	digest: string;
	/** Infinity for a key without TTL. */
	expiresAt: number;
}

const MAX_SKIP_LINES = 10;

export function createSyncLoop(options: SyncOptions): SyncLoop {
	const { redis, edge, state, log } = options;
	const dirty = new Map<string, Dirty>();
	const seen = new Map<string, Seen>();
	/** Keys whose names are not sandbox IDs, logged once while they exist. */
	const unroutable = new Set<string>();
	let generation = 0;
	let reconcileRequested = true;
	let nextReconcileAt = 0;
	let busy = false;
	let wake: (() => void) | undefined;
	const stats: Omit<SyncStats, "dirty" | "idle"> = {
		batches: 0,
		batchFailures: 0,
		puts: 0,
		deletes: 0,
		skipped: 0,
		rejected: 0,
		retried: 0,
		events: 0,
		reconciles: 0,
		lastReconcileAt: undefined,
	};

	function markDirty(sandboxId: string): void {
		if (!isRoutableId(sandboxId)) {
			if (!unroutable.has(sandboxId)) {
				unroutable.add(sandboxId);
				stats.skipped += 1;
				log(`skipped "${clip(sandboxId)}": not a sandbox ID the edge can route (^[a-z0-9]{1,63}$)`);
			}
			return;
		}
		generation += 1;
		dirty.set(sandboxId, { generation, attempts: 0, retryAt: 0 });
		wake?.();
	}

	function requestReconcile(): void {
		reconcileRequested = true;
		wake?.();
	}

	function remember(sandboxId: string, entry: RedisEntry, now: number): void {
		if (entry === undefined) seen.delete(sandboxId);
		else seen.set(sandboxId, { digest: digest(entry.value), expiresAt: expiryOf(entry, now) });
	}

	/** A full SCAN: every key that appeared, changed or vanished since it was last read becomes dirty. */
	async function reconcile(): Promise<void> {
		const started = Date.now();
		const present = new Set<string>();
		const presentUnroutable = new Set<string>();
		const counts = { keys: 0, appeared: 0, changed: 0, vanished: 0, refreshed: 0 };
		// A route the edge would drop before Redis drops the key is put again in time.
		const refreshMargin = Math.max(2 * options.reconcileIntervalMs, 60_000);
		for await (const page of scanIds(redis, options.scanCount)) {
			const fresh = page.filter((id) => {
				if (!isRoutableId(id)) {
					presentUnroutable.add(id);
					markDirty(id);
					return false;
				}
				return !present.has(id);
			});
			const now = Date.now();
			for (const [id, entry] of await readEntries(redis, [...new Set(fresh)])) {
				if (entry === undefined) continue; // Gone since SCAN; counted as vanished below if it was known.
				present.add(id);
				counts.keys += 1;
				const before = seen.get(id);
				const expiresAt = expiryOf(entry, now);
				remember(id, entry, now);
				if (before === undefined) {
					counts.appeared += 1;
					markDirty(id);
				} else if (before.digest !== digest(entry.value) || !sameExpiry(before.expiresAt, expiresAt)) {
					counts.changed += 1;
					markDirty(id);
				} else {
					const edgeExpiresAt = state.expiresAt(id);
					if (edgeExpiresAt !== undefined && edgeExpiresAt < expiresAt && edgeExpiresAt - now < refreshMargin) {
						counts.refreshed += 1;
						markDirty(id);
					}
				}
			}
		}
		const now = Date.now();
		state.prune(now);
		// Gone from Redis: known from an earlier read, or from what the edge may hold (after a restart).
		for (const id of new Set([...seen.keys(), ...state.ids()])) {
			if (present.has(id)) continue;
			const wasSeen = seen.delete(id);
			const atEdge = state.executionIds(id).length > 0;
			if (wasSeen || atEdge) counts.vanished += 1;
			if (atEdge) markDirty(id);
		}
		for (const id of unroutable) if (!presentUnroutable.has(id)) unroutable.delete(id);
		stats.reconciles += 1;
		stats.lastReconcileAt = now;
		log(
			`reconcile: ${counts.keys} keys; ${counts.appeared} new, ${counts.changed} changed, ${counts.vanished} gone, ` +
				`${counts.refreshed} to refresh; ${dirty.size} to send (${now - started} ms)`,
		);
	}

	/** Picks dirty keys whose retry time has come, up to one batch. */
	function readyIds(now: number): string[] {
		const ids: string[] = [];
		for (const [id, entry] of dirty) {
			if (entry.retryAt > now) continue;
			ids.push(id);
			if (ids.length === MAX_BATCH_ITEMS) break;
		}
		return ids;
	}

	/**
	 * Re-reads the keys, sends one batch with what Redis holds now, and applies
	 * the answers. False if there was nothing to send.
	 */
	async function sendBatch(ids: string[]): Promise<boolean> {
		const started = Date.now();
		const generations = new Map(ids.map((id) => [id, dirty.get(id)?.generation ?? 0]));
		const settle = (id: string) => {
			if (dirty.get(id)?.generation === generations.get(id)) dirty.delete(id);
		};
		const entries = await readEntries(redis, ids);

		const put: PutItem[] = [];
		const del: DeleteItem[] = [];
		const included: string[] = [];
		const skipLines: string[] = [];
		let bytes = 32;
		for (const id of ids) {
			const entry = entries.get(id);
			const translation =
				entry === undefined ? undefined : translate(id, entry.value, entry.pttlMs, options.defaultTtlSeconds);
			const item = translation?.ok === true ? translation.item : undefined;
			// Absent, or present but unroutable: whatever route the edge may still hold is stale.
			const deletes: DeleteItem[] =
				item === undefined
					? state.executionIds(id).map((executionId) => ({ sandbox_id: id, execution_id: executionId }))
					: [];
			const outgoing = item === undefined ? deletes : [item];
			const size = outgoing.reduce((sum, x) => sum + Buffer.byteLength(JSON.stringify(x)) + 1, 0);
			if (put.length + del.length + outgoing.length > MAX_BATCH_ITEMS || bytes + size > MAX_BATCH_BYTES) {
				if (included.length > 0) break; // Stays dirty for the next batch, and is read again then.
				// Alone over the limits: no batch could ever carry it.
				skipLines.push(`${id}: too large for one batch (${size} bytes, ${outgoing.length} items)`);
				settle(id);
				continue;
			}
			included.push(id);
			bytes += size;
			remember(id, entry, Date.now());
			if (translation?.ok === false) skipLines.push(`${id}: ${translation.reason}`);
			if (item !== undefined) put.push(item);
			del.push(...deletes);
			if (outgoing.length === 0) settle(id); // Nothing at the edge, nothing to send.
		}
		const skipped = skipLines.length;
		stats.skipped += skipped;
		logSkips(skipLines);
		if (put.length === 0 && del.length === 0) return false;

		// Written ahead: whatever the answer, the edge may hold these from now on.
		const sentAt = Date.now();
		const knownBefore = new Set(put.filter((p) => state.has(p.sandbox_id, p.execution_id)).map((p) => p.sandbox_id));
		for (const p of put) state.attempt(p.sandbox_id, p.execution_id, sentAt + p.ttl_seconds * 1000);
		await saveState();

		const results = await edge.batch(put, del, options.requestSignal);
		stats.batches += 1;
		const failed = new Set<string>();
		const rejectedLines: string[] = [];
		let puts = 0;
		let deletes = 0;
		let rejected = 0;
		results.forEach((result, i) => {
			const p = i < put.length ? put[i] : undefined;
			const d = i < put.length ? undefined : del[i - put.length];
			const executionId = p?.execution_id ?? d?.execution_id ?? "";
			if (result.status === 204) {
				if (p !== undefined) {
					puts += 1;
					state.confirmPut(p.sandbox_id, p.execution_id, sentAt + p.ttl_seconds * 1000);
				} else {
					deletes += 1;
					state.forget(result.sandbox_id, executionId);
				}
			} else if (result.status === 400) {
				// The edge will never take it as it is: retrying cannot help.
				rejected += 1;
				rejectedLines.push(`${result.op} ${result.sandbox_id}: ${clip(result.message ?? "400", 200)}`);
				if (p === undefined || !knownBefore.has(p.sandbox_id)) state.forget(result.sandbox_id, executionId);
			} else {
				failed.add(result.sandbox_id);
			}
		});
		await saveState();
		const now = Date.now();
		for (const id of included) {
			if (!failed.has(id)) {
				settle(id);
				continue;
			}
			const entry = dirty.get(id);
			if (entry !== undefined && entry.generation === generations.get(id)) {
				entry.attempts += 1;
				entry.retryAt = now + backoffDelay(entry.attempts, options.backoff);
			}
		}
		stats.puts += puts;
		stats.deletes += deletes;
		stats.rejected += rejected;
		stats.retried += failed.size;
		for (const line of rejectedLines.slice(0, MAX_SKIP_LINES)) log(`rejected by the edge: ${line}`);
		if (rejectedLines.length > MAX_SKIP_LINES)
			log(`rejected by the edge: ${rejectedLines.length - MAX_SKIP_LINES} more`);
		log(
			`batch: put ${puts}, deleted ${deletes}, skipped ${skipped}, rejected ${rejected}, ` +
				`failed ${failed.size} (to retry); ${now - started} ms; ${dirty.size} waiting`,
		);
		return true;
	}

	function logSkips(lines: string[]): void {
		for (const line of lines.slice(0, MAX_SKIP_LINES)) log(`skipped ${line}`);
		if (lines.length > MAX_SKIP_LINES) log(`skipped ${lines.length - MAX_SKIP_LINES} more`);
	}

	async function saveState(): Promise<void> {
		try {
			await state.save();
		} catch (error) {
			log(`cannot write the state file: ${describe(error)}; a restart may miss deletes`);
		}
	}

	/** Waits for a change, or until `ms` passes; true if woken by a change. */
	function waitForWork(ms: number, signal: AbortSignal): Promise<boolean> {
		return new Promise((resolve) => {
			const done = (woken: boolean) => {
				wake = undefined;
				clearTimeout(timer);
				signal.removeEventListener("abort", onAbort);
				resolve(woken);
			};
			const onAbort = () => done(false);
			const timer = setTimeout(() => done(false), Math.max(ms, 0));
			wake = () => done(true);
			signal.addEventListener("abort", onAbort, { once: true });
		});
	}

	async function run(signal: AbortSignal): Promise<void> {
		// Counted apart, so that a Redis read that works does not hide an edge still down.
		const failures = { redis: 0, edge: 0 };
		const recovered = (kind: "redis" | "edge") => {
			if (failures[kind] > 0) {
				log(`${kind === "edge" ? "the edge" : "redis"} is back after ${failures[kind]} failed attempt(s)`);
				failures[kind] = 0;
			}
		};
		while (!signal.aborted) {
			let reconciling = false;
			try {
				const now = Date.now();
				if (reconcileRequested || now >= nextReconcileAt) {
					reconcileRequested = false;
					reconciling = true;
					busy = true;
					try {
						await reconcile();
					} catch (error) {
						reconcileRequested = true;
						throw error;
					}
					nextReconcileAt = Date.now() + options.reconcileIntervalMs;
					recovered("redis");
					continue;
				}
				const ids = readyIds(now);
				if (ids.length === 0) {
					busy = false;
					let until = nextReconcileAt;
					for (const entry of dirty.values()) until = Math.min(until, entry.retryAt);
					// Gather a burst of changes into one batch.
					if (await waitForWork(until - now, signal)) await sleep(options.debounceMs, signal);
					continue;
				}
				busy = true;
				const sent = await sendBatch(ids);
				recovered("redis");
				if (sent) recovered("edge");
			} catch (error) {
				const kind = error instanceof EdgeError ? "edge" : "redis";
				failures[kind] += 1;
				if (kind === "edge") stats.batchFailures += 1;
				const step = kind === "edge" ? "sending to the edge" : reconciling ? "reconcile" : "reading Redis";
				if (kind === "redis" && redis.status !== "ready") {
					// The connection retries with its own backoff, and logs it.
					log(`${step} failed: redis is not connected; waiting for it (${dirty.size} waiting)`);
					await waitReady(redis, signal);
					continue;
				}
				const delay = backoffDelay(failures[kind], options.backoff);
				log(
					`${step} failed: ${describe(error)}; retrying in ${delay} ms ` +
						`(attempt ${failures[kind]}, ${dirty.size} waiting)`,
				);
				await sleep(delay, signal);
			}
		}
		busy = false;
	}

	return {
		markDirty,
		noteEvent(sandboxId) {
			stats.events += 1;
			markDirty(sandboxId);
		},
		requestReconcile,
		run,
		stats: () => ({
			...stats,
			dirty: dirty.size,
			idle: dirty.size === 0 && !reconcileRequested && !busy,
		}),
	};
}

function digest(value: string): string {
	return createHash("sha1").update(value).digest("base64");
}

function expiryOf(entry: { pttlMs: number }, now: number): number {
	return entry.pttlMs < 0 ? Number.POSITIVE_INFINITY : now + entry.pttlMs;
}

function sameExpiry(a: number, b: number): boolean {
	return a === b || Math.abs(a - b) < 1500;
}
