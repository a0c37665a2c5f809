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
	routeCache ??= new RouteCache({ ttlMs: config.routeCacheTtlMs, maxEntries: config.routeCacheMaxEntries });
	const catalog = new CatalogClient(env, routeCache, target, request.headers);

	let route = routeCache.get(target.sandboxId) ?? (await catalog.lookUp());
	const response = await forward(request, url, target, route, config.nodeOriginTemplate, catalog);
	if (!isStaleRoute(response) || request.body !== null) return response;

	// The node no longer has the sandbox (paused, killed or moved since the
	// route was learned). Drop the route everywhere and look again, which
	// resumes it. Only bodiless requests are retried: a streamed body has
	// already been sent and cannot be sent twice.
	logEvent("stale_route", { sandboxId: target.sandboxId, nodeIp: route.nodeIp });
	await response.body?.cancel();
	await catalog.invalidate(route.nodeIp);
	route = await catalog.lookUp();
	return forward(request, url, target, route, config.nodeOriginTemplate, catalog);
}

/** Forwards, and forgets a route whose node cannot be reached, so the next request asks the control plane. */
async function forward(
	request: Request,
	url: URL,
	target: SandboxTarget,
	route: Route,
	nodeOriginTemplate: string,
	catalog: CatalogClient,
): Promise<Response> {
	try {
		return await forwardToNode(request, url, target, route, nodeOriginTemplate);
	} catch (error) {
		if (error instanceof ProxyError && error.code === "node_unreachable") await catalog.invalidate(route.nodeIp);
		throw error;
	}
}

/**
 * The catalog as one request sees it. The Durable Object stub is made only
 * on a cache miss, keeping the hot path to a Map lookup.
 */
class CatalogClient {
	readonly #env: Env;
	readonly #cache: RouteCache;
	readonly #target: SandboxTarget;
	readonly #headers: Headers;
	#stub: DurableObjectStub<SandboxRoute> | undefined;

	constructor(env: Env, cache: RouteCache, target: SandboxTarget, headers: Headers) {
		this.#env = env;
		this.#cache = cache;
		this.#target = target;
		this.#headers = headers;
	}

	async lookUp(): Promise<Route> {
		const { sandboxId, port } = this.#target;
		const result = (await this.#catalog().lookup(sandboxId, resumeCredentials(this.#headers, port))) as LookupResult;
		if (!result.ok) {
			throw new ProxyError(result.error.code, {
				sandboxId,
				...(result.error.message === undefined ? {} : { message: result.error.message }),
			});
		}
		this.#cache.set(sandboxId, result.route);
		return result.route;
	}

	async invalidate(nodeIp: string): Promise<void> {
		this.#cache.invalidate(this.#target.sandboxId, nodeIp);
		await this.#catalog().invalidate(nodeIp);
	}

	#catalog(): DurableObjectStub<SandboxRoute> {
		this.#stub ??= this.#env.SANDBOX_ROUTE.getByName(this.#target.sandboxId);
		return this.#stub;
	}
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
