import type { ConfigError } from "../config.ts";
import { ProxyError } from "../errors/proxy-error.ts";
import { checkBearer } from "./auth.ts";

/**
 * What a configuration error tells whom. Anyone gets a bare 503
 * `proxy_misconfigured`: "CATALOG_SECRET must differ from API_SECRET" tells a
 * stranger that one leaked secret gives the other, and "must be at least 16
 * characters" how long it is. The log has the detail, and so does
 * `GET /healthz` for a caller who holds CATALOG_SECRET, compared with the
 * raw setting, which may be the very thing that is wrong.
 */
export async function configProblemFor(request: Request, env: Env, error: ConfigError): Promise<ProxyError> {
	const secret = (env as { CATALOG_SECRET?: unknown }).CATALOG_SECRET;
	const path = new URL(request.url).pathname;
	if (path === "/healthz" && typeof secret === "string" && secret.trim() !== "") {
		if ((await checkBearer(request.headers.get("authorization"), secret.trim())) === "ok") {
			return new ProxyError("proxy_misconfigured", { message: error.message });
		}
	}
	return new ProxyError("proxy_misconfigured", { cause: error });
}
