// The one loop that sends anything to the edge. Notifications and reconciles
// only mark sandbox IDs dirty; the loop re-reads each dirty key right before
// sending and pushes what Redis holds at that moment (present: put; absent:
// delete), one batch at a time. So an older put can never land after a newer
// delete of the same key, and a key stays dirty until the edge confirms it.
//
// Deletes are guarded. A key's notification (del, expired...) deletes its
// route at once. A delete that only a reconcile found (the key is just not
// there any more) goes at once too, unless the reconcile finds more than
// --mass-delete-share of the routes the bridge knows gone, and more than
// --mass-delete-min: then Redis has more likely come back empty (or the bridge
// reads the wrong server or database) than all those sandboxes stopped at
// once, and the deletes are held. They are sent only if their keys are still
// gone after --mass-delete-hold, or when the operator confirms (SIGUSR2);
// a key that comes back drops its delete.

import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import { type BackoffPolicy, backoffDelay } from "../src/rules/backoff.ts";
import { isSandboxId, sandboxIdRule } from "../src/rules/sandbox-hosts.ts";
import { sleep } from "./backoff.ts";
import { clip, type PutItem, translate } from "./catalog-entry.ts";
import type { MassDeleteGuard } from "./config.ts";
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
	/** Deletes a reconcile found and holds (mass-delete guard): routes kept at the edge though their keys are gone. */
	held: number;
	/** Times the guard started holding deletes. */
	holds: number;
	/** True when nothing is dirty or held and no reconcile is due: the edge agrees with Redis as last read. */
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
	massDelete: MassDeleteGuard;
	/** How an operator confirms held deletes, for the log line; e.g. "kill -USR2 1234". */
	confirmHint: string;
}

export interface SyncLoop {
	markDirty(sandboxId: string): void;
	/** Notes a keyspace notification; it marks the key dirty. */
	noteEvent(sandboxId: string): void;
	requestReconcile(): void;
	/** The operator's word: sends every held delete now (each key is read again first). How many were held. */
	confirmHeld(): number;
	/** Runs until `signal` aborts, finishing the step in progress. */
	run(signal: AbortSignal): Promise<void>;
	stats(): SyncStats;
}

interface Dirty {
	/** Bumped by every change, so that a change made while its key was in flight keeps it dirty. */
	generation: number;
	attempts: number;
	retryAt: number;
	/**
	 * Whether a key found absent may be deleted at the edge: it was marked by its
	 * own notification, by a reconcile under the guard's threshold, or by a
	 * confirmation. Otherwise (marked to put what a reconcile read), an absent key
	 * is left to the next reconcile, which the guard watches.
	 */
	deleteOk: boolean;
}

/** Why a key is marked dirty; see `Dirty.deleteOk`. */
type Cause = "event" | "read" | "gone" | "confirmed";

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
	/** Deletes held by the guard: sandbox ID -> when a reconcile first found its key gone (ms since the epoch). */
	const held = new Map<string, number>();
	/** Held deletes dropped since the last report, because their keys came back. */
	let heldBack = 0;
	const guard = options.massDelete;
	let generation = 0;
	let reconcileRequested = true;
	let nextReconcileAt = 0;
	let busy = false;
	let wake: (() => void) | undefined;
	const stats: Omit<SyncStats, "dirty" | "held" | "idle"> = {
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
		holds: 0,
	};

	function markDirty(sandboxId: string, cause: Cause = "read"): void {
		if (!isSandboxId(sandboxId)) {
			if (!unroutable.has(sandboxId)) {
				unroutable.add(sandboxId);
				stats.skipped += 1;
				log(`skipped "${clip(sandboxId)}": not a sandbox ID the edge can route (${sandboxIdRule})`);
			}
			return;
		}
		generation += 1;
		const deleteOk = cause !== "read" || dirty.get(sandboxId)?.deleteOk === true;
		dirty.set(sandboxId, { generation, attempts: 0, retryAt: 0, deleteOk });
		wake?.();
	}

	/** A notification for a held key: it changed, so it is no longer the mass delete's to decide. */
	function unhold(sandboxId: string): void {
		if (!held.delete(sandboxId)) return;
		heldBack += 1;
		if (held.size === 0) reportHoldOver();
	}

	function reportHoldOver(): void {
		log(
			`mass delete called off: the keys of ${heldBack} held route(s) came back to Redis; ` +
				"nothing was deleted at the edge",
		);
		heldBack = 0;
	}

	function earliestRelease(): number {
		let at = Number.POSITIVE_INFINITY;
		for (const since of held.values()) at = Math.min(at, since + guard.holdMs);
		return at;
	}

	/**
	 * What a reconcile does with the routes whose keys it found gone: deletes
	 * them, or holds them when they are too many (see the top of this file),
	 * and sends the held ones whose hold is over.
	 */
	function guardDeletes(gone: string[], present: Set<string>, now: number): void {
		// Back in Redis (the reconcile marked them to put), or gone from the edge by themselves.
		let expired = 0;
		for (const id of held.keys()) {
			if (present.has(id)) unhold(id);
			else if (state.executionIds(id).length === 0) {
				held.delete(id);
				expired += 1;
			}
		}
		if (expired > 0) log(`mass delete: ${expired} held route(s) expired at the edge by themselves`);
		if (heldBack > 0 && held.size > 0) {
			log(`mass delete: the keys of ${heldBack} held route(s) came back to Redis; ${held.size} still held`);
			heldBack = 0;
		}

		const due = [...held].filter(([, since]) => since + guard.holdMs <= now).map(([id]) => id);
		if (due.length > 0) {
			for (const id of due) {
				held.delete(id);
				markDirty(id, "confirmed");
			}
			log(
				`mass delete confirmed by time: the keys of ${due.length} held route(s) are still gone from Redis after ` +
					`${formatDuration(guard.holdMs)} (--mass-delete-hold); deleting them at the edge` +
					(held.size > 0 ? `; ${held.size} still held` : ""),
			);
		}

		// Already marked by their own notification: deletes seen one by one, never held.
		const fresh = gone.filter((id) => !held.has(id) && dirty.get(id)?.deleteOk !== true);
		for (const id of gone) if (dirty.get(id)?.deleteOk === true) markDirty(id, "gone");
		if (fresh.length === 0) return;
		const known = state.ids().length;
		const hold = (id: string) => {
			held.set(id, now);
			// A put it was waiting for would find the key gone and defer to the reconcile anyway.
			dirty.delete(id);
		};
		if (held.size > 0) {
			// While some are held, Redis is in doubt: later absences wait too.
			for (const id of fresh) hold(id);
			log(
				`mass delete: ${fresh.length} more route(s) gone from Redis held as well; ${held.size} held in all, ` +
					`first sent at ${new Date(earliestRelease()).toISOString()} unless their keys come back (${options.confirmHint} to send them now)`,
			);
			return;
		}
		if (!(fresh.length > guard.min && fresh.length > guard.share * known)) {
			for (const id of fresh) markDirty(id, "gone");
			return;
		}
		for (const id of fresh) hold(id);
		stats.holds += 1;
		log(
			`MASS DELETE HELD: a reconcile found ${fresh.length} of the ${known} routes the bridge knows ` +
				`(${percent(fresh.length / known)}) gone from Redis, over --mass-delete-share ${guard.share} ` +
				`(${percent(guard.share)}) and --mass-delete-min ${guard.min}. Redis may have come back empty, or --redis ` +
				"may point at the wrong server, database or password. The edge keeps these routes: they are deleted if " +
				`their keys are still gone at ${new Date(now + guard.holdMs).toISOString()} ` +
				`(--mass-delete-hold ${formatDuration(guard.holdMs)}), or now if you confirm with ${options.confirmHint}; ` +
				"keys that come back are kept",
		);
	}

	function confirmHeld(): number {
		const ids = [...held.keys()];
		held.clear();
		heldBack = 0;
		if (ids.length === 0) {
			log("mass delete: confirmation received, but no deletes are held");
			return 0;
		}
		for (const id of ids) markDirty(id, "confirmed");
		log(
			`mass delete confirmed by the operator: deleting ${ids.length} held route(s) at the edge ` +
				"(each key is read again first; a key that is back is put instead)",
		);
		return ids.length;
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
				if (!isSandboxId(id)) {
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
		const gone: string[] = [];
		for (const id of new Set([...seen.keys(), ...state.ids()])) {
			if (present.has(id)) continue;
			const wasSeen = seen.delete(id);
			const atEdge = state.executionIds(id).length > 0;
			if (wasSeen || atEdge) counts.vanished += 1;
			if (atEdge) gone.push(id);
		}
		guardDeletes(gone, present, now);
		for (const id of unroutable) if (!presentUnroutable.has(id)) unroutable.delete(id);
		stats.reconciles += 1;
		stats.lastReconcileAt = now;
		log(
			`reconcile: ${counts.keys} keys; ${counts.appeared} new, ${counts.changed} changed, ${counts.vanished} gone, ` +
				`${counts.refreshed} to refresh; ${dirty.size} to send` +
				(held.size > 0 ? `, ${held.size} deletes held until ${new Date(earliestRelease()).toISOString()}` : "") +
				` (${Date.now() - started} ms)`,
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
		let deferred = 0;

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
			if (entry === undefined && deletes.length > 0 && dirty.get(id)?.deleteOk !== true) {
				// Marked to put, but the key is gone, and no notification said so: the
				// next reconcile decides, under the mass-delete guard.
				remember(id, undefined, Date.now());
				settle(id);
				deferred += 1;
				continue;
			}
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
		if (deferred > 0) requestReconcile();
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
					// Held deletes are looked at again when their hold is over.
					nextReconcileAt = Math.min(Date.now() + options.reconcileIntervalMs, earliestRelease());
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
			unhold(sandboxId);
			markDirty(sandboxId, "event");
		},
		requestReconcile,
		confirmHeld,
		run,
		stats: () => ({
			...stats,
			dirty: dirty.size,
			held: held.size,
			idle: dirty.size === 0 && held.size === 0 && !reconcileRequested && !busy,
		}),
	};
}

function percent(share: number): string {
	return `${Math.round(share * 1000) / 10}%`;
}

/** 300000 -> "5m", 1500 -> "1500ms": as the flags take them. */
export function formatDuration(ms: number): string {
	for (const [unit, size] of [
		["h", 3_600_000],
		["m", 60_000],
		["s", 1000],
	] as const) {
		if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
	}
	return `${ms}ms`;
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
