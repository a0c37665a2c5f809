import type { ResumeFailure } from "../resume-types.ts";
import { clientBudgetKey } from "./client-key.ts";

/** Who is asking for a sandbox to be woken. */
export interface Caller {
	/** The client's address (`CF-Connecting-IP`), or "unknown" when the runtime gives none. */
	clientIp: string;
	/** A digest of the caller's credentials: rate limiters must not be handed the tokens themselves. */
	credentialsDigest: string;
}

// The binding reports no window; both limits in wrangler.toml have a 10 s
// period, so no client needs to wait longer than this.
const retryAfterSeconds = 10;

/**
 * The Workers rate-limiting budgets that a resume must fit before its RPC
 * is made; a request that joins a resume already in flight costs none, and
 * a request whose route is known never gets here. Two budgets:
 * - per client (its address; for IPv6 its /64, see client-key.ts): a
 *   stranger cannot turn many sandbox IDs into RPCs;
 * - per sandbox and caller credentials: a caller cannot wake one sandbox
 *   in a loop, while a stranger's attempts on a sandbox never use up the
 *   budget of its owner, whose credentials differ.
 * A missing binding is no budget, so an operator can remove either one.
 */
export async function checkResumeBudget(
	env: Env,
	sandboxId: string,
	caller: Caller,
): Promise<ResumeFailure | undefined> {
	const perClient = env.RESUME_LIMIT_PER_CLIENT as RateLimit | undefined;
	if (perClient !== undefined && !(await perClient.limit({ key: clientBudgetKey(caller.clientIp) })).success) {
		return {
			code: "resume_rate_limited",
			message: "Too many sandbox resumes from this client",
			retryAfterSeconds,
		};
	}
	const perCaller = env.RESUME_LIMIT_PER_CALLER as RateLimit | undefined;
	if (
		perCaller !== undefined &&
		!(await perCaller.limit({ key: `${sandboxId}:${caller.credentialsDigest}` })).success
	) {
		return {
			code: "resume_rate_limited",
			message: "Too many resumes of this sandbox",
			retryAfterSeconds,
		};
	}
	return undefined;
}
