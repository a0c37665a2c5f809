import { ConfigError } from "../config.ts";
import { logEvent } from "../log.ts";
import { ProxyError } from "./proxy-error.ts";

/**
 * Any error a handler throws, as the ProxyError to answer with; failures of
 * ours (5xx) are logged as `event`, with only our own messages and error
 * class names, neither of which carries secrets. A configuration error is
 * answered with no detail, which only the log has.
 */
export function reportError(error: unknown, event: string): ProxyError {
	const proxyError =
		error instanceof ProxyError
			? error
			: error instanceof ConfigError
				? // What is wrong goes to the log only: see catalog-api/config-problem.ts.
					new ProxyError("proxy_misconfigured", { cause: error })
				: new ProxyError("internal_error", { cause: error });
	if (proxyError.status >= 500) {
		logEvent(event, {
			reason: proxyError.code,
			sandboxId: proxyError.sandboxId,
			detail:
				error instanceof ProxyError || error instanceof ConfigError
					? error.message
					: error instanceof Error
						? error.name
						: typeof error,
		});
	}
	return proxyError;
}
