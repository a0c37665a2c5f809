import { EventQueue } from "./event-queue.ts";
import { exponentialGapMs, seededRandom } from "./random.ts";

/**
 * One sandbox's traffic through the edge's caches to its object, as the code
 * does it (src/catalog/catalog-client.ts, route-cache.ts, location-cache.ts,
 * sandbox-route.ts):
 * - an isolate serves a route from its cache while its copy is good. A copy
 *   of the object's answer is good for ROUTE_CACHE_TTL_MS. Past it, the
 *   request asks on. The cache holds settled routes only (a promise shared
 *   across requests would be cancelled), so every request that arrives
 *   while a lookup is in flight makes its own: the herd at each expiry is
 *   most of a hot sandbox's object calls;
 * - with the location tier, an isolate miss asks the location's Cache API
 *   first. A hit is kept by the isolate for ROUTE_CACHE_TTL_MS −
 *   LOCATION_CACHE_TTL_MS from then. A miss asks the object; its answer goes
 *   into the isolate at once and into the location (in waitUntil) for
 *   LOCATION_CACHE_TTL_MS. So no copy serves a route longer than
 *   ROUTE_CACHE_TTL_MS after the answer reached the location (plus one
 *   Cache API match: an entry is checked against the time its match
 *   started). An isolate's copy is replaced by whichever lookup settles
 *   last (RouteCache.set), even if that gives it a shorter life. Neither
 *   tier shares lookups in flight;
 * - the object serves calls one at a time, each taking 1/capacity s;
 * - on a wake (`wake`), the object holds no route at first: the first call
 *   starts the one ResumeSandbox call, later ones wait on it, up to
 *   RESUME_MAX_WAITERS, and past that are refused (`resume_queue_full`,
 *   counted and not sent again). The waiters get the route as soon as the
 *   answer arrives: it is saved after they have it.
 * Requests arrive at each isolate as a Poisson stream, the sandbox's rate
 * shared evenly. Only the ones that matter are drawn: while an isolate's
 * copy is good its requests are hits that change nothing, so its next
 * request after the copy expires is drawn directly (a Poisson stream has no
 * memory). A run costs its misses, not its requests, which lets the search
 * for the highest rate run at tens of thousands of requests a second.
 */
export interface SandboxRun {
	/** Requests per second to the sandbox. */
	rate: number;
	locations: number;
	isolates: number;
	tier: boolean;
	/** ROUTE_CACHE_TTL_MS, of the isolate's copies. */
	ttlMs: number;
	/** LOCATION_CACHE_TTL_MS, of the location's; an isolate keeps a copy it reads there for ttlMs minus this. */
	locationTtlMs: number;
	/**
	 * What an isolate keeps of a copy it reads in the location. Unset: the
	 * code's ttlMs − locationTtlMs. (Before, it kept a whole ttlMs, so that a
	 * route could be served up to ttlMs + locationTtlMs after the answer.)
	 */
	keepFromLocationMs?: number;
	/**
	 * How long the Cache API keeps an entry from its put, if that binds before
	 * the entry's own end: the put's max-age, which counts whole seconds.
	 * Unset: the entry's own end binds.
	 */
	cacheKeepsMs?: number;
	cacheMs: number;
	/** Round trip from each location to the object. */
	rttMs: readonly number[];
	objectCapacity: number;
	evictPct: number;
	warmupMs: number;
	measureMs: number;
	seed: number;
	/**
	 * Each copy starts with an age drawn evenly within the TTL, as when
	 * traffic has run for long. Otherwise every cache starts empty, as a wake
	 * leaves them: every copy is then made at once, and expires at once.
	 */
	spreadStart: boolean;
	/**
	 * The sandbox is paused at 0; its waiters are answered this long after its
	 * resume starts (by the answer, or by a push before it).
	 */
	wake?: { resumeMs: number; maxWaiters: number };
}

export interface SandboxResult {
	objectCallsPerSecond: number;
	/** Most object calls in any one whole second of the measurement. */
	peakObjectCallsPerSecond: number;
	locationLookupsPerSecond: number;
	/** Longest a call that reached the object after the warm-up waited for it to be free. */
	maxObjectQueueMs: number;
	/** A call waited longer than `saturationMs`: the object cannot keep up. The run stops. */
	saturated: boolean;
	/**
	 * The longest any copy made after the warm-up can serve the route, from
	 * when the object's answer reached the location: how stale a route the
	 * caches can serve.
	 */
	maxRouteAgeMs: number;
	wake: { rpcs: number; peakWaiters: number; refused: number; durationMs: number; objectCalls: number };
}

// A call that waits this long for the object means it has fallen behind for
// good: with the default TTL, every copy then expires before it is refreshed,
// and the herds that follow only grow. The run stops there.
const saturationMs = 5000;

// What an event does; its arguments are an isolate slot (location-major) or a location.
const arrive = 7; // a request reaches the isolate: a = slot, b = the slot's arrivals as drawn
const answer = 0; // the object's answer reaches the isolate: a = slot
const put = 1; // a Cache API put becomes visible: a = location, b = expiry
const evict = 2; // the location's entry is evicted early: a = location, b = its version
const reachObject = 3; // a call reaches the object: a = slot
const served = 4; // the object has done a call: a = slot
const resumed = 5; // the ResumeSandbox call returns
const lookedInLocation = 6; // a Cache API match returns: a = slot, b = when it started

export function simulateSandbox(run: SandboxRun): SandboxResult {
	const random = seededRandom(run.seed);
	const clock = new EventQueue();
	const { locations, isolates, ttlMs, locationTtlMs, cacheMs, rttMs, tier } = run;
	const slots = locations * isolates;
	const start = run.warmupMs;
	const end = run.warmupMs + run.measureMs;
	const serviceMs = 1000 / run.objectCapacity;
	const halfRtt = Float64Array.from({ length: slots }, (_, slot) => (rttMs[Math.floor(slot / isolates)] as number) / 2);
	const cacheKeepsMs = run.cacheKeepsMs ?? Number.POSITIVE_INFINITY;
	// What an isolate keeps of a copy it reads in the location.
	const keepFromLocationMs = run.keepFromLocationMs ?? ttlMs - locationTtlMs;

	// Until when each isolate's and each location's copy of the route is good;
	// when the Cache API drops the location's; and when the object's answer
	// that the location holds reached it.
	const isolateUntil = new Float64Array(slots);
	const locationUntil = new Float64Array(locations);
	const locationKept = new Float64Array(locations);
	const locationOrigin = new Float64Array(locations);
	const locationVersion = new Float64Array(locations);
	// Each isolate's arrivals are one chain of events; a copy whose life is
	// cut short starts a new chain, and the old one's event is ignored.
	const chain = new Float64Array(slots);
	if (run.spreadStart) {
		for (let i = 0; i < locations; i++) {
			locationUntil[i] = random() * locationTtlMs;
			locationOrigin[i] = (locationUntil[i] as number) - locationTtlMs;
			locationKept[i] = (locationOrigin[i] as number) + cacheKeepsMs;
		}
		for (let i = 0; i < slots; i++) isolateUntil[i] = random() * ttlMs;
	}
	// With no wake, the object holds the route all along.
	let routeStored = run.wake === undefined;
	let flying = false;
	let waiting: number[] = [];
	let objectFreeAt = 0;

	const callsBySecond = new Map<number, number>();
	let objectCalls = 0;
	let locationLookups = 0;
	let maxObjectQueueMs = 0;
	let maxRouteAgeMs = 0;
	let saturated = false;
	const wake = { rpcs: 0, peakWaiters: 0, refused: 0, durationMs: 0, objectCalls: 0 };
	let firstMiss = Number.POSITIVE_INFINITY;
	const perIsolate = run.rate / slots;
	const gap = () => exponentialGapMs(random, perIsolate);

	/** RouteCache.set: the copy is replaced, unless its life would already be over. */
	const keep = (slot: number, until: number, origin: number) => {
		const now = clock.now;
		if (until <= now) return;
		const before = isolateUntil[slot] as number;
		isolateUntil[slot] = until;
		if (now >= start) maxRouteAgeMs = Math.max(maxRouteAgeMs, until - origin);
		// Its next request was drawn for after the longer life; draw it again.
		if (until < before) {
			const version = (chain[slot] as number) + 1;
			chain[slot] = version;
			clock.at(until + gap(), arrive, slot, version);
		}
	};

	const handle = (kind: number, a: number, b: number) => {
		const now = clock.now;
		switch (kind) {
			case arrive: {
				if (b !== chain[a]) return;
				const until = isolateUntil[a] as number;
				// A hit: the next request that can miss comes after the copy expires.
				if (until > now) return clock.at(until + gap(), arrive, a, b);
				firstMiss = Math.min(firstMiss, now);
				if (tier) clock.at(now + cacheMs, lookedInLocation, a, now);
				else clock.at(now + (halfRtt[a] as number), reachObject, a);
				return clock.at(now + gap(), arrive, a, b);
			}
			case answer:
				keep(a, now + ttlMs, now);
				if (tier) clock.at(now + cacheMs, put, Math.floor(a / isolates), now);
				return;
			case put: {
				// The entry is the answer's (b) for LOCATION_CACHE_TTL_MS; a later answer's replaces it.
				const until = b + locationTtlMs;
				if (until <= (locationUntil[a] as number)) return;
				locationUntil[a] = until;
				locationKept[a] = now + cacheKeepsMs;
				locationOrigin[a] = b;
				const version = (locationVersion[a] as number) + 1;
				locationVersion[a] = version;
				if (run.evictPct > 0 && random() * 100 < run.evictPct) {
					const life = Math.min(until, locationKept[a] as number) - now;
					clock.at(now + random() * Math.max(0, life), evict, a, version);
				}
				return;
			}
			case evict:
				if (locationVersion[a] === b) locationUntil[a] = 0;
				return;
			case reachObject: {
				if (now >= start && now < end) {
					objectCalls++;
					const second = Math.floor(now / 1000);
					callsBySecond.set(second, (callsBySecond.get(second) ?? 0) + 1);
				}
				if (!routeStored) wake.objectCalls++;
				const begins = Math.max(now, objectFreeAt);
				if (now >= start) maxObjectQueueMs = Math.max(maxObjectQueueMs, begins - now);
				if (begins - now > saturationMs) saturated = true;
				objectFreeAt = begins + serviceMs;
				clock.at(objectFreeAt, served, a);
				return;
			}
			case served:
				return serve(a);
			case resumed:
				// The waiters get the learned route at once; it is saved after.
				routeStored = true;
				flying = false;
				wake.durationMs = now - firstMiss;
				for (const slot of waiting) clock.at(now + (halfRtt[slot] as number), answer, slot);
				waiting = [];
				return;
			case lookedInLocation: {
				if (now >= start && now < end) locationLookups++;
				const location = Math.floor(a / isolates);
				// LocationCache.get compares the entry's end with the time the match started (b).
				if ((locationUntil[location] as number) > b && (locationKept[location] as number) > now) {
					keep(a, now + keepFromLocationMs, locationOrigin[location] as number);
				} else clock.at(now + (halfRtt[a] as number), reachObject, a);
				return;
			}
		}
	};

	const serve = (slot: number) => {
		const now = clock.now;
		if (routeStored) return clock.at(now + (halfRtt[slot] as number), answer, slot);
		const resume = run.wake as NonNullable<SandboxRun["wake"]>;
		if (!flying) {
			// The first caller flies; it is not one of the waiters, but is answered with them.
			flying = true;
			wake.rpcs++;
			waiting.push(slot);
			clock.at(now + resume.resumeMs, resumed);
			return;
		}
		if (waiting.length - 1 >= resume.maxWaiters) {
			wake.refused++;
			return;
		}
		waiting.push(slot);
		wake.peakWaiters = Math.max(wake.peakWaiters, waiting.length - 1);
	};

	for (let slot = 0; slot < slots; slot++) clock.at(gap(), arrive, slot, 0);
	while (!saturated && clock.next < end) {
		const kind = clock.take();
		handle(kind, clock.a, clock.b);
	}

	const measuredSeconds = run.measureMs / 1000;
	return {
		objectCallsPerSecond: objectCalls / measuredSeconds,
		peakObjectCallsPerSecond: Math.max(0, ...callsBySecond.values()),
		locationLookupsPerSecond: locationLookups / measuredSeconds,
		maxObjectQueueMs,
		saturated,
		maxRouteAgeMs,
		wake,
	};
}
