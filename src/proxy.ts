import type { LookupResult, ResumeCredentials, Route } from "./catalog/route.ts";
import { RouteCache } from "./catalog/route-cache.ts";
import type { SandboxRoute } from "./catalog/sandbox-route.ts";
import { configFrom } from "./config.ts";
import { ProxyError } from "./errors/proxy-error.ts";
import { forwardToNode, sandboxNotOnNodeHeader } from "./forward.ts";
import { logEvent } from "./log.ts";
import { resolveTarget, type SandboxTarget } from "./routing.ts";

// Bodies up to this size are read before they are sent, so that a request
// that meets a stale route can be sent again; larger ones stream, once.
const maxReplayableBodyBytes = 64 * 1024;
// Far beyond any real token; a longer header is refused rather than sent on.
const maxAccessTokenLength = 4096;

let routeCache: RouteCache | undefined;

/** The whole request path: route the host, find the node (resuming if need be), forward. */
export async function proxyRequest(request: Request, env: Env): Promise<Response> {
	const config = configFrom(env);
	const url = new URL(request.url);
	const target = resolveTarget(request.headers.get("host") ?? url.host, request.headers, config);
	routeCache ??= new RouteCache({ ttlMs: config.routeCacheTtlMs, maxEntries: config.routeCacheMaxEntries });
	const catalog = new CatalogClient(env, routeCache, target, request.headers);
	const body = await replayableBody(request);
	const send = (route: Route) => forward(request, body, url, target, route, config.nodeOriginTemplate, catalog);

	let route = routeCache.get(target.sandboxId) ?? (await catalog.lookUp());
	const response = await send(route);
	if (!isStaleRoute(response)) return response;

	// The node no longer has the sandbox (paused, killed or moved since the
	// route was learned). Drop the route everywhere and look again, which
	// resumes it, then send the request again if its body allows.
	logEvent("stale_route", { sandboxId: target.sandboxId, nodeIp: route.nodeIp });
	await response.body?.cancel();
	await catalog.invalidate(route);
	route = await catalog.lookUp();
	if (body.kind === "stream") throw new ProxyError("request_not_replayable", { sandboxId: target.sandboxId });
	return send(route);
}

/**
 * A request body as it will be sent: none, small enough to have been read
 * (and so sendable twice), or a stream that can be sent only once.
 */
type OutgoingBody =
	| { kind: "none"; init: null }
	| { kind: "buffered"; init: ArrayBuffer }
	| { kind: "stream"; init: ReadableStream };

async function replayableBody(request: Request): Promise<OutgoingBody> {
	if (request.body === null) return { kind: "none", init: null };
	const length = Number(request.headers.get("content-length") ?? Number.NaN);
	if (length >= 0 && length <= maxReplayableBodyBytes) return { kind: "buffered", init: await request.arrayBuffer() };
	return { kind: "stream", init: request.body };
}

/**
 * Forwards, and forgets a route whose node cannot be reached so that the next
 * request asks the control plane. Not when a streamed body was in flight:
 * then the failure may be the client abandoning its own upload.
 */
async function forward(
	request: Request,
	body: OutgoingBody,
	url: URL,
	target: SandboxTarget,
	route: Route,
	nodeOriginTemplate: string,
	catalog: CatalogClient,
): Promise<Response> {
	try {
		return await forwardToNode(request, body.init, url, target, route, nodeOriginTemplate);
	} catch (error) {
		if (error instanceof ProxyError && error.code === "node_unreachable" && body.kind !== "stream") {
			await catalog.invalidate(route);
		}
		throw error;
	}
}

/**
 * The catalog as one request sees it. The Durable Object stub is made only
 * on a cache miss, keeping the hot path to a Map lookup. A failure of the
 * object itself (overloaded, reset by a deploy) is a retryable 503.
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
		const credentials = resumeCredentials(this.#headers, port);
		const result = await this.#call((stub) => stub.lookup(sandboxId, credentials) as Promise<LookupResult>);
		if (!result.ok) {
			throw new ProxyError(result.error.code, {
				sandboxId,
				...(result.error.message === undefined ? {} : { message: result.error.message }),
			});
		}
		this.#cache.set(sandboxId, result.route);
		return result.route;
	}

	async invalidate(stale: Route): Promise<void> {
		this.#cache.invalidate(this.#target.sandboxId, stale);
		await this.#call((stub) => stub.invalidate(stale));
	}

	async #call<T>(method: (stub: DurableObjectStub<SandboxRoute>) => Promise<T>): Promise<T> {
		this.#stub ??= this.#env.SANDBOX_ROUTE.getByName(this.#target.sandboxId);
		try {
			return await method(this.#stub);
		} catch (error) {
			logEvent("catalog_error", {
				sandboxId: this.#target.sandboxId,
				detail: error instanceof Error ? error.message : String(error),
			});
			throw new ProxyError("catalog_unavailable", { sandboxId: this.#target.sandboxId, cause: error });
		}
	}
}

function resumeCredentials(headers: Headers, port: number): ResumeCredentials {
	const trafficAccessToken = accessToken(headers, "e2b-traffic-access-token");
	const envdAccessToken = accessToken(headers, "x-access-token");
	return {
		port,
		...(trafficAccessToken === undefined ? {} : { trafficAccessToken }),
		...(envdAccessToken === undefined ? {} : { envdAccessToken }),
	};
}

function accessToken(headers: Headers, name: string): string | undefined {
	const token = headers.get(name) ?? undefined;
	if (token !== undefined && token.length > maxAccessTokenLength) {
		throw new ProxyError("invalid_access_token", {
			message: `The ${name} header is longer than ${maxAccessTokenLength} characters`,
		});
	}
	return token;
}

function isStaleRoute(response: Response): boolean {
	return response.status === 502 && response.headers.has(sandboxNotOnNodeHeader);
}
