import { type ErrorCode, type ErrorDefinition, errorCodes } from "./registry.ts";

/**
 * An error the proxy answers with itself. `message` replaces the registry's
 * default only where the detail helps the caller (which part of a host is
 * wrong, the control plane's rate-limit text); it must never carry secrets.
 */
export class ProxyError extends Error {
	readonly code: ErrorCode;
	readonly sandboxId: string | undefined;
	/** Seconds a client should wait before trying again, if the failure is transient. */
	readonly retryAfterSeconds: number | undefined;

	constructor(
		code: ErrorCode,
		options: { message?: string; sandboxId?: string; cause?: unknown; retryAfterSeconds?: number } = {},
	) {
		super(options.message ?? errorCodes[code].message, { cause: options.cause });
		this.name = "ProxyError";
		this.code = code;
		this.sandboxId = options.sandboxId;
		const definition: ErrorDefinition = errorCodes[code];
		this.retryAfterSeconds = options.retryAfterSeconds ?? definition.retryAfterSeconds;
	}

	get definition(): ErrorDefinition {
		return errorCodes[this.code];
	}

	get status(): ErrorDefinition["status"] {
		return errorCodes[this.code].status;
	}
}
