import { ProxyError } from "../errors/proxy-error.ts";
import { clientBudgetKey } from "./client-key.ts";

/**
 * The per-client budget of lookups that miss every cache, checked in the
 * Worker before the sandbox's object is addressed. Every sandbox ID has an
 * object, so without it each request for an unknown ID is one object request
 * (and the object's storage) billed to the operator, before any resume
 * budget is met. An owner's lookups miss the caches once per sandbox every
 * few seconds at most; only a flood of IDs reaches the budget. A missing
 * binding is no budget.
 */
export async function checkLookupBudget(env: Env, sandboxId: string, clientIp: string): Promise<void> {
	const limiter = (env as { LOOKUP_LIMIT_PER_CLIENT?: RateLimit }).LOOKUP_LIMIT_PER_CLIENT;
	if (limiter === undefined) return;
	if ((await limiter.limit({ key: clientBudgetKey(clientIp) })).success) return;
	throw new ProxyError("lookup_rate_limited", { sandboxId });
}
