import { Hono } from "hono";
import { catalogApi } from "./catalog-api/app.ts";
import { ConfigError, configFrom } from "./config.ts";
import { ProxyError } from "./errors/proxy-error.ts";
import { renderError } from "./errors/render.ts";
import { logEvent } from "./log.ts";
import { proxyRequest } from "./proxy.ts";
import { routeHost } from "./routing.ts";

export { SandboxRoute } from "./catalog/sandbox-route.ts";

const app = new Hono<{ Bindings: Env }>();

app.all("*", (c) => {
	const config = configFrom(c.env);
	const request = c.req.raw;
	const url = new URL(request.url);
	const routed = routeHost(request.headers.get("host") ?? url.host, request.headers, config);
	if (routed.kind === "catalog-api") return catalogApi.fetch(request, c.env, c.executionCtx);
	return proxyRequest({
		request,
		url,
		target: routed.target,
		env: c.env,
		config,
		waitUntil: (promise) => c.executionCtx.waitUntil(promise),
	});
});

app.onError((error, c) => {
	const proxyError = asProxyError(error);
	if (proxyError.status >= 500) {
		logEvent("proxy_error", {
			reason: proxyError.code,
			sandboxId: proxyError.sandboxId,
			// Only our own messages and error class names: neither carries secrets.
			detail: error instanceof ProxyError || error instanceof ConfigError ? error.message : error.name,
		});
	}
	return renderError(proxyError, c.req.raw.headers);
});

function asProxyError(error: unknown): ProxyError {
	if (error instanceof ProxyError) return error;
	if (error instanceof ConfigError) return new ProxyError("proxy_misconfigured", { message: error.message });
	return new ProxyError("internal_error", { cause: error });
}

export default app satisfies ExportedHandler<Env>;
