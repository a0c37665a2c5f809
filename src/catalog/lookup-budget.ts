import { ProxyError } from "../errors/proxy-error.ts";
import { clientBudgetKey } from "./client-key.ts";
import { TtlCache } from "./ttl-cache.ts";

/**
 * The per-client budget of lookups that miss every cache, checked in the
 * Worker before the sandbox's object is addressed. Every sandbox ID has an
 * object, so without it each request for an unknown ID is one object request
 * (and the object's storage) billed to the operator, before any resume
 * budget is met. Only IDs this isolate has not had a route for lately are
 * counted: an owner's sandboxes drop out of the caches every few seconds,
 * and their lookups are nobody's flood. A missing binding is no budget.
 */
export async function checkLookupBudget(env: Env, sandboxId: string, clientIp: string): Promise<void> {
	if (recentlyRouted.get(sandboxId, Date.now()) !== undefined) return;
	const limiter = (env as { LOOKUP_LIMIT_PER_CLIENT?: RateLimit }).LOOKUP_LIMIT_PER_CLIENT;
	if (limiter === undefined) return;
	if ((await limiter.limit({ key: clientBudgetKey(clientIp) })).success) return;
	throw new ProxyError("lookup_rate_limited", { sandboxId });
}

/** A route for `sandboxId` came back from its object: its next lookups in this isolate are not counted. */
export function routedLately(sandboxId: string): void {
	const now = Date.now();
	recentlyRouted.set(sandboxId, true, now, now + routedMemoryMs);
}

// Long enough to span many route-cache lapses; bounded, the oldest out first.
const routedMemoryMs = 10 * 60_000;
const recentlyRouted = new TtlCache<true>({ ttlMs: routedMemoryMs, maxEntries: 10_000 });
