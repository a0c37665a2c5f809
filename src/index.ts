import { catalogApi } from "./catalog-api/app.ts";
import { configProblemFor } from "./catalog-api/config-problem.ts";
import { type Config, ConfigError, configFrom } from "./config.ts";
import { ProxyError } from "./errors/proxy-error.ts";
import { renderError } from "./errors/render.ts";
import { reportError } from "./errors/report.ts";
import { proxyRequest } from "./proxy.ts";
import { routeHost } from "./routing.ts";
import { recordMetrics } from "./telemetry/metrics.ts";
import { logRequest } from "./telemetry/request-log.ts";
import { RequestTrace } from "./telemetry/request-trace.ts";
import { withTiming } from "./telemetry/timing-headers.ts";

export { SandboxRoute } from "./catalog/sandbox-route.ts";
export { ControlPlaneToken } from "./control-plane/token-object.ts";

// The proxy path is a plain handler, not a Hono route: every request takes
// it, and a router and its context cost about a tenth of the hot path's CPU
// (see BENCHMARKS.md). Hono serves the catalog API, which has real routes.
export default {
	async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
		const trace = new RequestTrace(request);
		let config: Config | undefined;
		let response: Response;
		try {
			config = configFrom(env);
			const url = new URL(request.url);
			const routed = routeHost(request.headers.get("host") ?? url.host, request.headers, config);
			if (routed.kind === "catalog-api") return await catalogApi.fetch(request, env, ctx);
			refuseOwnSubrequest(request, config);
			trace.sandboxId = routed.target.sandboxId;
			trace.port = routed.target.port;
			response = await proxyRequest({
				request,
				url,
				target: routed.target,
				sharedHostDomain: routed.sharedHostDomain,
				env,
				config,
				trace,
				waitUntil: (promise) => ctx.waitUntil(promise),
			});
		} catch (error) {
			let proxyError = reportError(error, "proxy_error");
			if (error instanceof ConfigError) proxyError = await configProblemFor(request, env, error);
			trace.reason = proxyError.code;
			trace.sandboxId ??= proxyError.sandboxId;
			response = renderError(proxyError, request.headers);
		}
		trace.status = response.status;
		// Unparsable settings leave no rate to go by: such a request is an error, always logged.
		logRequest(trace, config?.requestLogSampleRate ?? 1);
		recordMetrics(env, trace);
		return withTiming(response, trace, config?.serverTiming ?? "cold");
	},
} satisfies ExportedHandler<Env>;

/**
 * In Host-preserving forwarding the Worker sends each request to the client's
 * own URL, which Cloudflare delivers to the node's origin: a Worker's route is
 * never the target of a same-zone subrequest. Locally nothing stops the
 * subrequest from coming back to this Worker, which would forward it again,
 * without end. workerd marks a Worker's subrequests with CF-Worker; in
 * development, a sandbox request that carries it is our own, come back.
 */
function refuseOwnSubrequest(request: Request, config: Pick<Config, "nodeResolveOverride" | "environment">): void {
	if (config.nodeResolveOverride === undefined || config.environment !== "development") return;
	if (request.headers.has("cf-worker")) throw new ProxyError("forwarding_loop");
}
