import type { Config } from "../config.ts";
import { resumeCredentials } from "../control-plane/credentials.ts";
import { ProxyError } from "../errors/proxy-error.ts";
import { logEvent } from "../log.ts";
import type { ResumeFailure } from "../resume-types.ts";
import type { RequestTrace } from "../telemetry/request-trace.ts";
import { isolateFailureCache } from "./failure-cache.ts";
import { locationCache } from "./location-cache.ts";
import { checkLookupBudget, routedLately } from "./lookup-budget.ts";
import type { LookupResult, Route } from "./route.ts";
import { type CachedRoute, isolateRouteCache } from "./route-cache.ts";
import type { NodeVerdict } from "./route-state.ts";
import type { KeepAliveReport, SandboxRoute, WakeStatus } from "./sandbox-route.ts";
import { TtlCache } from "./ttl-cache.ts";

/** What the catalog needs of a request; the request path's own context has it (proxy.ts). */
export interface CatalogRequest {
	env: Env;
	config: Config;
	target: { sandboxId: string; port: number };
	request: Request;
	/** Where the route's source and the lookup's timings are recorded. */
	trace: RequestTrace;
	/** Lets the location's copy be written, and a refresh run, after the answer goes. */
	waitUntil: (promise: Promise<unknown>) => void;
}

/**
 * The catalog as one request sees it: the isolate's cache first, then the
 * location's cache, then the sandbox's Durable Object, which resumes the
 * sandbox on a miss. The stub is made only on a cache miss, keeping the hot
 * path to a Map lookup.
 */
export class CatalogClient {
	readonly #env: Env;
	readonly #config: Config;
	readonly #sandboxId: string;
	readonly #port: number;
	readonly #headers: Headers;
	readonly #trace: RequestTrace;
	readonly #waitUntil: (promise: Promise<unknown>) => void;

	/** The request's own context: what it is for, its headers, its trace, and its waitUntil. */
	constructor(request: CatalogRequest) {
		this.#env = request.env;
		this.#config = request.config;
		this.#sandboxId = request.target.sandboxId;
		this.#port = request.target.port;
		this.#headers = request.request.headers;
		this.#trace = request.trace;
		this.#waitUntil = request.waitUntil;
	}

	/**
	 * The route in the isolate's cache, or undefined: the hot path, answered
	 * without a promise. The first reader past the copy's refresh time
	 * refreshes it, off its own path.
	 */
	cached(now = Date.now()): Route | undefined {
		const cache = isolateRouteCache(this.#config);
		const cached = cache.read(this.#sandboxId, now);
		if (cached === undefined) return undefined;
		this.#trace.routeSource = "isolate";
		if (cache.claimRefresh(cached, now)) this.#waitUntil(this.#refresh(cached));
		return cached.value;
	}

	/**
	 * The route when `cached()` had none: the location's copy, else the
	 * object's (resuming the sandbox if need be), timed as the lookup.
	 */
	async lookUpPastIsolate(): Promise<Route> {
		const startedAt = Date.now();
		try {
			return await this.#fromLocation();
		} finally {
			this.#trace.lookupMs = Date.now() - startedAt;
		}
	}

	/** The location's copy, kept in the isolate too; else the object's. */
	async #fromLocation(): Promise<Route> {
		const sandboxId = this.#sandboxId;
		if (isolateFailureCache(this.#config).get(sandboxId) === undefined) {
			const held = await locationCache(this.#config).get(sandboxId);
			// A copy of the location's copy: the location keeps an entry for at
			// most LOCATION_CACHE_TTL_MS, and the isolate keeps what it read for
			// the rest of ROUTE_CACHE_TTL_MS, so that a replaced route is used at
			// most ROUTE_CACHE_TTL_MS after the object gave it. Each isolate's
			// copy ends at its own time, so the isolates do not all ask at once.
			const now = Date.now();
			const until = now + this.#config.routeCacheTtlMs - this.#config.locationCacheTtlMs;
			if (held?.entry.kind === "route") {
				isolateRouteCache(this.#config).set(sandboxId, held.entry.route, now, until);
				routedLately(sandboxId);
				this.#trace.routeSource = "location";
				return held.entry.route;
			}
			if (held?.entry.kind === "failure") {
				const { failure } = held.entry;
				isolateFailureCache(this.#config).set(sandboxId, failure, held.entry.until, now, until);
				this.#trace.negativeHit = "location";
				throw failureError(sandboxId, failure);
			}
		}
		// Past every cache: the object is addressed only within the client's budget.
		await checkLookupBudget(this.#env, sandboxId, this.#headers.get("cf-connecting-ip") ?? "unknown");
		return this.lookUp();
	}

	/**
	 * Fetches a fresher copy of a route the isolate still serves, off every
	 * request's path: the location's copy, else the route the object serves
	 * as it stands. It never resumes anything and never fails a request:
	 * whatever goes wrong, the held copy lapses at its time and the next
	 * request looks up as on any miss.
	 */
	async #refresh(read: CachedRoute): Promise<void> {
		const sandboxId = this.#sandboxId;
		const config = this.#config;
		const cache = isolateRouteCache(config);
		try {
			const held = await locationCache(config).get(sandboxId);
			if (held !== undefined) {
				// A failure there is left for the next miss to meet, not spread from here.
				if (held.entry.kind !== "route") return;
				const now = Date.now();
				const until = now + config.routeCacheTtlMs - config.locationCacheTtlMs;
				if (cache.refreshed(sandboxId, read, held.entry.route, now, until)) routedLately(sandboxId);
				return;
			}
			const route = await this.#call((stub) => stub.servedRoute() as Promise<Route | null>);
			// Put only where nothing happened meanwhile: a node's "not here" or a
			// catalog write in this isolate dropped the copy, and the location's
			// with it, which this answer, older, must not bring back.
			if (route === null || !cache.refreshed(sandboxId, read, route)) return;
			routedLately(sandboxId);
			await locationCache(config).put(sandboxId, { kind: "route", route });
		} catch {
			// Logged by callCatalogObject; the copy lapses as it would have.
		}
	}

	/** Asks the object, past the isolate's cache of routes (but not of failures). */
	async lookUp(): Promise<Route> {
		const sandboxId = this.#sandboxId;
		const failures = isolateFailureCache(this.#config);
		const remembered = failures.get(sandboxId);
		if (remembered !== undefined) {
			this.#trace.negativeHit = "isolate";
			throw failureError(sandboxId, remembered);
		}

		// Read only now, off the hot path: a cached route needs no credentials.
		const credentials = resumeCredentials(this.#headers, this.#port);
		const clientIp = this.#headers.get("cf-connecting-ip") ?? "unknown";
		const result = await this.#call((stub) => stub.lookup(sandboxId, credentials, clientIp) as Promise<LookupResult>);
		if (!result.ok) {
			const remembered = result.remembered;
			if (remembered !== undefined) {
				failures.set(sandboxId, remembered.error, remembered.until);
				this.#waitUntil(
					locationCache(this.#config).put(sandboxId, {
						kind: "failure",
						failure: remembered.error,
						until: remembered.until,
					}),
				);
			}
			throw failureError(sandboxId, result.error);
		}
		isolateRouteCache(this.#config).set(sandboxId, result.route);
		routedLately(sandboxId);
		this.#waitUntil(locationCache(this.#config).put(sandboxId, { kind: "route", route: result.route }));
		const trace = this.#trace;
		trace.routeSource = result.via ?? "object";
		if (result.wake !== undefined) trace.wake = result.wake;
		if (result.rpcMs !== undefined) trace.resumeMs = result.rpcMs;
		if (result.waitedMs !== undefined) trace.waitMs = result.waitedMs;
		return result.route;
	}

	/**
	 * Tells the object that `stale`'s node disowned it or could not be
	 * reached, and forgets it in the isolate and the location; the object
	 * decides whether the route is doubted, dropped or kept (route-state.ts).
	 */
	async invalidate(stale: Route, verdict: NodeVerdict): Promise<void> {
		isolateRouteCache(this.#config).invalidate(this.#sandboxId, stale);
		await locationCache(this.#config).delete(this.#sandboxId);
		await this.#call((stub) => stub.invalidate(stale, verdict));
	}

	/** How the sandbox's wake stands, for a waiting page; asks the object, which resumes nothing for it. */
	wakeStatus(): Promise<WakeStatus> {
		return this.#call((stub) => stub.wakeStatus() as Promise<WakeStatus>);
	}

	/**
	 * Reports that traffic reached a sandbox whose route asks for keepalive,
	 * off the request's path. The object decides, for the whole edge, whether
	 * the control plane hears of it; this isolate only spares it the calls it
	 * would refuse anyway, reporting at most once per interval.
	 */
	reportTraffic(route: Route): void {
		if (route.keepalive !== true) return;
		const now = Date.now();
		const reported = isolateTrafficReports(this.#config);
		if (reported.get(this.#sandboxId, now) !== undefined) return;
		reported.set(this.#sandboxId, true, now, Number.POSITIVE_INFINITY);
		const sandboxId = this.#sandboxId;
		const credentials = resumeCredentials(this.#headers, this.#port);
		this.#waitUntil(
			this.#call((stub) => stub.keepAlive(sandboxId, credentials) as Promise<KeepAliveReport>).then(
				// Report again when the object will call again: not a whole interval
				// after this report, which could fall just short of its time and
				// leave the sandbox unreported for nearly two intervals.
				({ result, nextAt }) => {
					const now = Date.now();
					// Refused credentials are this request's; the next request's may be the owner's.
					if (result === "refused") reported.delete(sandboxId);
					if (nextAt === undefined || result === "refused") return;
					if (nextAt <= now) reported.delete(sandboxId);
					else reported.set(sandboxId, true, now, nextAt);
				},
				() => {
					// Logged by callCatalogObject; the next interval tries again.
				},
			),
		);
	}

	#call<T>(method: (stub: DurableObjectStub<SandboxRoute>) => Promise<T>): Promise<T> {
		return callCatalogObject(this.#env, this.#config, this.#sandboxId, method);
	}
}

let trafficReports: { ttlMs: number; reported: TtlCache<true> } | undefined;
const maxTrafficReports = 10_000;

/** When this isolate last reported traffic to each sandbox's object; forgotten when the interval changes. */
function isolateTrafficReports(config: Pick<Config, "trafficKeepaliveIntervalMs">): TtlCache<true> {
	const ttlMs = config.trafficKeepaliveIntervalMs;
	if (trafficReports === undefined || trafficReports.ttlMs !== ttlMs) {
		// Its own bound: even with the route cache off, a busy sandbox is reported once per interval.
		trafficReports = { ttlMs, reported: new TtlCache({ ttlMs, maxEntries: maxTrafficReports }) };
	}
	return trafficReports.reported;
}

function failureError(sandboxId: string, failure: ResumeFailure): ProxyError {
	return new ProxyError(failure.code, {
		sandboxId,
		...(failure.message === undefined ? {} : { message: failure.message }),
		...(failure.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: failure.retryAfterSeconds }),
	});
}

/**
 * Calls the sandbox's catalog object. A failure of the object itself
 * (overloaded, reset by a deploy) is logged and becomes a retryable 503.
 */
export async function callCatalogObject<T>(
	env: Env,
	config: Pick<Config, "catalogLocationHint">,
	sandboxId: string,
	method: (stub: DurableObjectStub<SandboxRoute>) => Promise<T>,
): Promise<T> {
	// The hint only places an object when it is first created; an existing one stays where it is.
	const hint = config.catalogLocationHint;
	try {
		return await method(
			env.SANDBOX_ROUTE.getByName(sandboxId, hint === undefined ? undefined : { locationHint: hint }),
		);
	} catch (error) {
		logEvent("catalog_error", { sandboxId, detail: error instanceof Error ? error.message : String(error) });
		throw new ProxyError("catalog_unavailable", { sandboxId, cause: error });
	}
}
