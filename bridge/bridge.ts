// startBridge(): wires Redis, the edge client and the sync loop together, for
// the command line (cli.ts) and for tests that run the bridge in-process.

import type { Redis } from "ioredis";
import type { BackoffPolicy } from "../src/rules/backoff.ts";
import { DEFAULT_BACKOFF } from "./backoff.ts";
import {
	DEFAULT_MASS_DELETE,
	DEFAULT_RECONCILE_INTERVAL_MS,
	DEFAULT_SCAN_COUNT,
	DEFAULT_TTL_SECONDS,
	type MassDeleteGuard,
	parseEdgeOrigin,
	parseRedisUrl,
	redactUrl,
} from "./config.ts";
import { createEdgeClient, describe } from "./edge-client.ts";
import { EdgeState } from "./edge-state.ts";
import { consoleLog, type Log } from "./log.ts";
import {
	checkNotifications,
	closeRedis,
	connectRedis,
	followCatalog,
	notificationAdvice,
	waitReady,
} from "./redis-catalog.ts";
import { createSyncLoop, formatDuration, type SyncLoop, type SyncStats } from "./sync-loop.ts";

export interface BridgeOptions {
	/** redis://[user:password@]host[:port][/db] or rediss://... */
	redisUrl: string;
	/** The catalog API's origin, e.g. https://edge.sandbox.example.com. */
	edgeOrigin: string | URL;
	catalogSecret: string;
	reconcileIntervalMs?: number;
	defaultTtlSeconds?: number;
	scanCount?: number;
	/** false: no keyspace notifications, the periodic reconcile alone. */
	notifications?: boolean;
	stateFile?: string | undefined;
	/** When a reconcile's deletes are held; default 0.5 of the routes, more than 10, for 5 minutes. */
	massDelete?: Partial<MassDeleteGuard>;
	/** How an operator confirms held deletes, as the log says it; default `kill -USR2 <this pid>`. */
	confirmHint?: string;
	/** Default 50 ms. */
	debounceMs?: number;
	/** For the edge, Redis reconnects and items to retry. */
	backoff?: BackoffPolicy;
	/** One batch request's deadline; default 30 s. */
	requestTimeoutMs?: number;
	/** How long close() lets a batch in flight finish; default 5 s. */
	closeGraceMs?: number;
	log?: Log;
	/** Aborts startup while it waits for Redis. */
	signal?: AbortSignal;
}

export interface BridgeStats extends SyncStats {
	redisConnected: boolean;
	/** False with --no-notifications, and while the subscriber is reconnecting. */
	subscribed: boolean;
}

export interface BridgeHandle {
	stats(): BridgeStats;
	/** Starts a full reconcile now. */
	reconcile(): void;
	/** Sends the deletes the mass-delete guard holds, now (the CLI's SIGUSR2). How many were held. */
	confirmMassDelete(): number;
	/** Stops after the step in progress, saves the state file and closes every connection. */
	close(): Promise<void>;
}

/** Redis does not send the notifications the bridge follows. */
export class NotificationsOffError extends Error {
	constructor(message: string) {
		super(message);
		this.name = "NotificationsOffError";
	}
}

export async function startBridge(options: BridgeOptions): Promise<BridgeHandle> {
	const log = options.log ?? consoleLog;
	const { db } = parseRedisUrl(options.redisUrl, undefined);
	const edgeOrigin = options.edgeOrigin instanceof URL ? options.edgeOrigin : parseEdgeOrigin(options.edgeOrigin);
	const notifications = options.notifications ?? true;
	const backoff = options.backoff ?? DEFAULT_BACKOFF;
	const reconcileIntervalMs = options.reconcileIntervalMs ?? DEFAULT_RECONCILE_INTERVAL_MS;
	const startupSignal = options.signal ?? new AbortController().signal;
	const massDelete: MassDeleteGuard = { ...DEFAULT_MASS_DELETE, ...options.massDelete };
	log(
		`starting: redis ${redactUrl(options.redisUrl)} (db ${db}), edge ${edgeOrigin.origin}, ` +
			`${notifications ? "following keyspace notifications" : "no notifications"}, ` +
			`reconcile every ${reconcileIntervalMs / 1000} s, state file ${options.stateFile ?? "none"}, ` +
			(massDelete.share >= 1
				? "mass-delete guard off"
				: `a reconcile's deletes of over ${massDelete.share} of the routes (and over ${massDelete.min}) ` +
					`held for ${formatDuration(massDelete.holdMs)}`),
	);

	const state = new EdgeState(options.stateFile);
	const loaded = await state.load(Date.now());
	if (options.stateFile === undefined) {
		log("no --state-file: routes deleted from Redis while the bridge is stopped stay at the edge until they expire");
	} else {
		log(`state file: ${loaded} routes the edge may hold`);
	}

	let loop: SyncLoop | undefined;
	const connections: Redis[] = [];
	const closeConnections = () => Promise.all(connections.map(closeRedis));
	const reader = connectRedis({
		url: options.redisUrl,
		role: "reader",
		log,
		backoff,
		onReconnect: () => {
			loop?.requestReconcile();
			// A restarted Redis may have lost a CONFIG SET.
			if (notifications) void warnIfNotificationsOff();
		},
	});
	connections.push(reader);

	async function warnIfNotificationsOff(): Promise<void> {
		const check = await checkNotifications(reader);
		if (check.ok === false) log(`WARNING: ${notificationAdvice(check)}`);
	}

	if (!(await waitReady(reader, startupSignal))) {
		await closeConnections();
		throw new Error("startup aborted while waiting for Redis");
	}
	log("redis: connected");

	if (notifications) {
		const check = await checkNotifications(reader);
		if (check.ok === false) {
			await closeConnections();
			throw new NotificationsOffError(notificationAdvice(check));
		}
		if (check.ok === "unknown") {
			log(
				`cannot read notify-keyspace-events (${check.reason}); make sure it includes K$gx, ` +
					"else only the reconcile every --reconcile-interval sees changes",
			);
		} else {
			log(`redis: notify-keyspace-events is "${check.flags}"`);
		}
	}

	const edge = createEdgeClient({
		origin: edgeOrigin,
		secret: options.catalogSecret,
		timeoutMs: options.requestTimeoutMs ?? 30_000,
	});
	const stopRequests = new AbortController();
	const syncLoop = createSyncLoop({
		redis: reader,
		edge,
		state,
		log,
		scanCount: options.scanCount ?? DEFAULT_SCAN_COUNT,
		reconcileIntervalMs,
		defaultTtlSeconds: options.defaultTtlSeconds ?? DEFAULT_TTL_SECONDS,
		debounceMs: options.debounceMs ?? 50,
		backoff,
		requestSignal: stopRequests.signal,
		massDelete,
		confirmHint: options.confirmHint ?? `kill -USR2 ${process.pid}`,
	});
	loop = syncLoop;

	let subscribed = false;
	let subscriber: Redis | undefined;
	if (notifications) {
		const sub = connectRedis({ url: options.redisUrl, role: "subscriber", log, backoff });
		subscriber = sub;
		connections.push(sub);
		sub.on("close", () => {
			subscribed = false;
		});
		// Subscribed before the first SCAN, so that no change falls between the two.
		const first = new Promise<boolean>((resolve) => {
			followCatalog(
				sub,
				db,
				(id) => syncLoop.noteEvent(id),
				() => {
					if (subscribed) return;
					subscribed = true;
					log("redis: following catalog keyspace notifications");
					// Whatever changed while unsubscribed is found by a reconcile.
					syncLoop.requestReconcile();
					resolve(true);
				},
				log,
			);
			startupSignal.addEventListener("abort", () => resolve(false), { once: true });
		});
		if (!(await first)) {
			edge.close();
			await closeConnections();
			throw new Error("startup aborted while subscribing");
		}
	}

	const stopLoop = new AbortController();
	const running = syncLoop.run(stopLoop.signal);
	log("started");

	let closing: Promise<void> | undefined;
	return {
		stats: () => ({
			...syncLoop.stats(),
			redisConnected: reader.status === "ready",
			subscribed: subscriber !== undefined && subscribed,
		}),
		reconcile: () => syncLoop.requestReconcile(),
		confirmMassDelete: () => syncLoop.confirmHeld(),
		close() {
			closing ??= (async () => {
				log("stopping");
				stopLoop.abort();
				const grace = setTimeout(() => stopRequests.abort(), options.closeGraceMs ?? 5000);
				await running;
				clearTimeout(grace);
				try {
					await state.save();
				} catch (error) {
					log(`cannot write the state file: ${describe(error)}`);
				}
				await closeConnections();
				edge.close();
				log("stopped");
			})();
			return closing;
		},
	};
}
