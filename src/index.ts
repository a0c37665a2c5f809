import { catalogApi } from "./catalog-api/app.ts";
import { configFrom } from "./config.ts";
import { renderError } from "./errors/render.ts";
import { reportError } from "./errors/report.ts";
import { proxyRequest } from "./proxy.ts";
import { routeHost } from "./routing.ts";

export { SandboxRoute } from "./catalog/sandbox-route.ts";
export { ControlPlaneToken } from "./control-plane/token-object.ts";

// The proxy path is a plain handler, not a Hono route: every request takes
// it, and a router and its context cost about a tenth of the hot path's CPU
// (see BENCHMARKS.md). Hono serves the catalog API, which has real routes.
export default {
	async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
		try {
			const config = configFrom(env);
			const url = new URL(request.url);
			const routed = routeHost(request.headers.get("host") ?? url.host, request.headers, config);
			if (routed.kind === "catalog-api") return await catalogApi.fetch(request, env, ctx);
			return await proxyRequest({
				request,
				url,
				target: routed.target,
				env,
				config,
				waitUntil: (promise) => ctx.waitUntil(promise),
			});
		} catch (error) {
			return renderError(reportError(error, "proxy_error"), request.headers);
		}
	},
} satisfies ExportedHandler<Env>;
