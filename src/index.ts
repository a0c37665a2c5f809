import { Hono } from "hono";
import { catalogApi } from "./catalog-api/app.ts";
import { configFrom } from "./config.ts";
import { renderError } from "./errors/render.ts";
import { reportError } from "./errors/report.ts";
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

app.onError((error, c) => renderError(reportError(error, "proxy_error"), c.req.raw.headers));

export default app satisfies ExportedHandler<Env>;
