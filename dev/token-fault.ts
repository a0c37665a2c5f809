// What a broken token endpoint does, so that the edge's token client meets
// each way an identity provider fails, from a real server.

export interface TokenEndpointFault {
	/**
	 * The port stops listening and every open connection is destroyed:
	 * connections are refused, for discovery and the JWKS too. Clearing the
	 * fault, or setting another, listens again on the same port.
	 */
	down?: boolean;
	/** Each token request's connection is destroyed without an answer (the port still listens). */
	reset?: boolean;
	/** Wait this long before answering (then the rest of the fault, or the normal answer). */
	delayMs?: number;
	/** Answer with this status and an HTML body, as a proxy in front of it would. */
	httpStatus?: number;
	/** 200 with a body that is not JSON ("not-json", or true), or JSON without access_token. */
	garbage?: boolean | "not-json" | "no-access-token";
	/** Apply to this many token requests, then clear. Not with `down`, whose requests never arrive. */
	times?: number;
	/** Clear after this many milliseconds. Over the admin route, `down` needs it: the route goes down too. */
	durationMs?: number;
}

export class TokenFaultError extends Error {
	constructor(message: string) {
		super(message);
		this.name = "TokenFaultError";
	}
}

const KEYS = new Set(["down", "reset", "delayMs", "httpStatus", "garbage", "times", "durationMs"]);

function nonNegativeInt(value: unknown, name: string): number {
	if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
		throw new TokenFaultError(`${name} must be a non-negative integer`);
	}
	return value;
}

function flag(value: unknown, name: string): boolean {
	if (typeof value !== "boolean") throw new TokenFaultError(`${name} must be a boolean`);
	return value;
}

/** Validates untrusted JSON into a fault, naming the offending field. */
export function parseTokenFault(value: unknown): TokenEndpointFault {
	if (typeof value !== "object" || value === null || Array.isArray(value)) {
		throw new TokenFaultError("fault must be a JSON object");
	}
	const input = value as Record<string, unknown>;
	for (const key of Object.keys(input)) {
		if (!KEYS.has(key)) throw new TokenFaultError(`unknown fault field "${key}"`);
	}
	const fault: TokenEndpointFault = {};
	if (input.down !== undefined) fault.down = flag(input.down, "down");
	if (input.reset !== undefined) fault.reset = flag(input.reset, "reset");
	if (input.delayMs !== undefined) fault.delayMs = nonNegativeInt(input.delayMs, "delayMs");
	if (input.httpStatus !== undefined) {
		const status = nonNegativeInt(input.httpStatus, "httpStatus");
		if (status < 200 || status > 599) throw new TokenFaultError("httpStatus must be from 200 to 599");
		fault.httpStatus = status;
	}
	if (input.garbage !== undefined) {
		const garbage = input.garbage;
		if (typeof garbage !== "boolean" && garbage !== "not-json" && garbage !== "no-access-token") {
			throw new TokenFaultError('garbage must be a boolean, "not-json" or "no-access-token"');
		}
		fault.garbage = garbage;
	}
	if (input.times !== undefined) {
		fault.times = nonNegativeInt(input.times, "times");
		if (fault.times === 0) throw new TokenFaultError("times must be at least 1");
	}
	if (input.durationMs !== undefined) {
		fault.durationMs = nonNegativeInt(input.durationMs, "durationMs");
		if (fault.durationMs === 0) throw new TokenFaultError("durationMs must be at least 1");
	}
	if (fault.down === true && fault.times !== undefined) {
		throw new TokenFaultError("times cannot count requests to a port that is down; use durationMs");
	}
	return fault;
}

export function describeTokenFault(fault: TokenEndpointFault): string {
	const parts: string[] = [];
	if (fault.down === true) parts.push("down");
	if (fault.delayMs !== undefined) parts.push(`delay ${fault.delayMs}ms`);
	if (fault.reset === true) parts.push("reset");
	else if (fault.httpStatus !== undefined) parts.push(`http ${fault.httpStatus}`);
	else if (fault.garbage !== undefined && fault.garbage !== false) {
		parts.push(`garbage (${fault.garbage === true ? "not-json" : fault.garbage})`);
	}
	return parts.join(", ") || "no-op";
}
