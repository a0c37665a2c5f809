import type { LookupResult, ResumeCredentials, Route } from "./catalog/route.ts";
import { RouteCache } from "./catalog/route-cache.ts";
import type { SandboxRoute } from "./catalog/sandbox-route.ts";
import { configFrom } from "./config.ts";
import { ProxyError } from "./errors/proxy-error.ts";
import { forwardToNode, sandboxNotOnNodeHeader } from "./forward.ts";
import { logEvent } from "./log.ts";
import { resolveTarget, type SandboxTarget } from "./routing.ts";

let routeCache: RouteCache | undefined;

/** The whole request path: route the host, find the node (resuming if need be), forward. */
export async function proxyRequest(request: Request, env: Env): Promise<Response> {
	const config = configFrom(env);
	const url = new URL(request.url);
	const target = resolveTarget(request.headers.get("host") ?? url.host, request.headers, config);
	const cache = (routeCache ??= new RouteCache({
		ttlMs: config.routeCacheTtlMs,
		maxEntries: config.routeCacheMaxEntries,
	}));
	const catalog = env.SANDBOX_ROUTE.getByName(target.sandboxId);
	const credentials = resumeCredentials(request.headers, target.port);

	let route = cache.get(target.sandboxId) ?? (await lookUpRoute(catalog, target, credentials, cache));
	const response = await forwardToNode(request, url, target, route, config.nodeOriginTemplate);
	if (!isStaleRoute(response) || request.body !== null) return response;

	// The node no longer has the sandbox (paused, killed or moved since the
	// route was learned). Drop the route everywhere and look again, which
	// resumes it. Only bodiless requests are retried: a streamed body has
	// already been sent and cannot be sent twice.
	logEvent("stale_route", { sandboxId: target.sandboxId, nodeIp: route.nodeIp });
	cache.invalidate(target.sandboxId, route.nodeIp);
	await catalog.invalidate(route.nodeIp);
	await response.body?.cancel();
	route = await lookUpRoute(catalog, target, credentials, cache);
	return forwardToNode(request, url, target, route, config.nodeOriginTemplate);
}

async function lookUpRoute(
	catalog: DurableObjectStub<SandboxRoute>,
	target: SandboxTarget,
	credentials: ResumeCredentials,
	cache: RouteCache,
): Promise<Route> {
	const result = (await catalog.lookup(target.sandboxId, credentials)) as LookupResult;
	if (!result.ok) {
		throw new ProxyError(result.error.code, {
			sandboxId: target.sandboxId,
			...(result.error.message === undefined ? {} : { message: result.error.message }),
		});
	}
	cache.set(target.sandboxId, result.route);
	return result.route;
}

function resumeCredentials(headers: Headers, port: number): ResumeCredentials {
	const trafficAccessToken = headers.get("e2b-traffic-access-token") ?? undefined;
	const envdAccessToken = headers.get("x-access-token") ?? undefined;
	return {
		port,
		...(trafficAccessToken === undefined ? {} : { trafficAccessToken }),
		...(envdAccessToken === undefined ? {} : { envdAccessToken }),
	};
}

function isStaleRoute(response: Response): boolean {
	return response.status === 502 && response.headers.has(sandboxNotOnNodeHeader);
}
