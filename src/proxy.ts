import { CatalogClient } from "./catalog/catalog-client.ts";
import type { Route } from "./catalog/route.ts";
import type { Config } from "./config.ts";
import { checkAccessTokens } from "./control-plane/credentials.ts";
import { Deadline } from "./deadline.ts";
import { ProxyError } from "./errors/proxy-error.ts";
import { forwardToNode } from "./forwarding/forward.ts";
import { isNativeGrpc, nativeGrpcRefusal } from "./forwarding/native-grpc.ts";
import { bodyInit, noBody, type OutgoingBody, outgoingBody } from "./forwarding/outgoing-body.ts";
import { sendWhilePortOpens } from "./forwarding/port-retry.ts";
import { type NodeAnswer, readNodeAnswer } from "./forwarding/sandbox-not-here.ts";
import { logEvent } from "./log.ts";
import type { SandboxTarget } from "./routing.ts";
import type { RequestTrace } from "./telemetry/request-trace.ts";
import { isNavigation, waitingPage, wakeStatusPath } from "./waiting/waiting-page.ts";
import { answerWakeStatus } from "./waiting/wake-status.ts";

export interface ProxyContext {
	request: Request;
	url: URL;
	target: SandboxTarget;
	/** Set when the request was routed by its headers on a shared host: see HostRoute. */
	sharedHostDomain?: string | undefined;
	env: Env;
	config: Config;
	/** Where the request's phases are recorded. */
	trace: RequestTrace;
	waitUntil: (promise: Promise<unknown>) => void;
}

/**
 * The request path once the host is routed: find the node (resuming if need
 * be), forward. Not itself async: a request without a body goes straight to
 * findAndForward's promise, one frame fewer on the hot path. It may throw
 * before it returns a promise (a refused access token), as its caller's
 * `await` inside a `try` expects.
 */
export function proxyRequest(context: ProxyContext): Promise<Response> {
	const { request } = context;
	// gRPC calls are POSTs: the hot path's other requests skip the header read.
	if (request.method === "POST" && isNativeGrpc(request.headers)) {
		context.trace.reason = "grpc_not_supported";
		return Promise.resolve(nativeGrpcRefusal());
	}
	// Checked on every path, not only when a resume would carry them.
	checkAccessTokens(request.headers);
	const catalog = new CatalogClient(context);
	if (context.url.pathname === wakeStatusPath && request.method === "GET") return answerWakeStatus(catalog);
	if (request.body === null) return findAndForward(context, catalog, noBody);
	return withBody(context, catalog);
}

async function withBody(context: ProxyContext, catalog: CatalogClient): Promise<Response> {
	const { request, target } = context;
	const body = await outgoingBody(request, target.sandboxId, context.config.bodyIdleTimeoutMs);
	if (body.kind !== "stream") return findAndForward(context, catalog, body);
	// A streamed body is pumped by us; it must be read to its end even after
	// the response is sent, or the client's upload is cut short.
	context.waitUntil(body.upload.settled);
	try {
		return await findAndForward(context, catalog, body);
	} catch (error) {
		// Whatever failed (the lookup, the node), the client may still be
		// sending: read the rest and drop it, so that it reads our answer.
		body.upload.stopForwarding();
		await body.upload.settled;
		throw error;
	}
}

async function findAndForward(context: ProxyContext, catalog: CatalogClient, body: OutgoingBody): Promise<Response> {
	const { target } = context;
	// A route in the isolate's cache is taken without a promise: the hot path.
	const found = catalog.cached() ?? (await routeOrWaitingPage(context, catalog));
	if (found === waiting) return waitingPage(target);
	let route = found;
	const answer = await sendAlong(context, catalog, body, route);
	if (!answer.notHere) {
		if (isTraffic(answer.response)) catalog.reportTraffic(route);
		return answer.response;
	}

	// The node does not hold the sandbox (paused, killed or moved since the
	// route was learned), and said so before it dialed anything: the request
	// never reached a sandbox. Stop using the route and look again, which
	// resumes the sandbox, then send the request again if its body allows.
	logEvent("stale_route", { sandboxId: target.sandboxId, nodeIp: route.nodeIp });
	await catalog.invalidate(route, "not-here");
	if (body.kind === "stream") {
		// Its first part has gone; it cannot go twice. Wake the sandbox while
		// the rest drains, so that the client's retry finds it awake.
		body.upload.stopForwarding();
		await catalog.lookUp();
		throw new ProxyError("request_not_replayable", { sandboxId: target.sandboxId });
	}
	route = await catalog.lookUp();
	const again = await sendAlong(context, catalog, body, route);
	if (!again.notHere) {
		if (isTraffic(again.response)) catalog.reportTraffic(route);
		return again.response;
	}
	// Sent at most twice: a sandbox that a fresh resume places on a node that
	// does not hold it is the control plane's problem to report.
	logEvent("stale_route", { sandboxId: target.sandboxId, nodeIp: route.nodeIp, afterResume: true });
	await catalog.invalidate(route, "not-here-after-resume");
	throw new ProxyError("sandbox_not_found", { sandboxId: target.sandboxId });
}

/**
 * Whether an answer is the sandbox's use, for traffic keepalive. A refusal
 * (the node's 403 for a missing or wrong traffic token, or an app's 401 or
 * 403) is not: otherwise a stranger's requests to a private sandbox would
 * send KeepAliveSandbox with the stranger's credentials, which the control
 * plane refuses, in the owner's place.
 */
function isTraffic(response: Response): boolean {
	return response.status !== 403 && response.status !== 401;
}

const waiting: unique symbol = Symbol("waiting page");

/**
 * The route, once the isolate's cache has none; or, for a browser navigation that has waited WAITING_PAGE_AFTER_MS
 * for it (a wake under way), the sign to answer with the waiting page
 * instead. The wake goes on without the request: the page asks how it
 * stands, and reloads when it is done.
 */
async function routeOrWaitingPage(context: ProxyContext, catalog: CatalogClient): Promise<Route | typeof waiting> {
	const lookup = catalog.lookUpPastIsolate();
	const afterMs = context.config.waitingPageAfterMs;
	if (afterMs === 0 || !isNavigation(context.request)) return lookup;
	const patience = new Deadline(afterMs);
	try {
		const route = await Promise.race([lookup, patience.expired]);
		if (route !== undefined) return route;
	} finally {
		patience.clear();
	}
	context.trace.page = "waiting";
	// Its failure is the page's to show, and the next request's to meet.
	context.waitUntil(lookup.catch(() => {}));
	return waiting;
}

/** Sends the request to the route's node; again while its port opens, if this edge's resume gave the route. */
function sendAlong(
	context: ProxyContext,
	catalog: CatalogClient,
	body: OutgoingBody,
	route: Route,
): Promise<NodeAnswer> {
	// Only a route this edge's resume gave can meet a port still opening: others go straight, without a closure.
	const resumedAt = route.resumedAt;
	if (resumedAt === undefined) return sendToNode(context, catalog, body, route);
	return sendWhilePortOpens(context.config, context.target, body.kind !== "stream", resumedAt, () =>
		sendToNode(context, catalog, body, route),
	);
}

/**
 * Forwards once and reads the node's answer. A node that cannot be reached
 * loses its route, so the next request asks the control plane, unless the
 * failure was the client's own: it abandoned its streamed upload.
 */
async function sendToNode(
	context: ProxyContext,
	catalog: CatalogClient,
	body: OutgoingBody,
	route: Route,
): Promise<NodeAnswer> {
	let response: Response;
	const sentAt = Date.now();
	try {
		response = await forwardToNode({
			request: context.request,
			url: context.url,
			target: context.target,
			route,
			nodeOriginTemplate: context.config.nodeOriginTemplate,
			nodeResolveOverride: context.config.nodeResolveOverride,
			sharedHostDomain: context.sharedHostDomain,
			nodes: (context.env as { NODES?: Fetcher }).NODES,
			body: bodyInit(body),
			signal: body.kind === "stream" ? body.upload.signal : undefined,
		});
	} catch (error) {
		const failure = body.kind === "stream" ? body.upload.failure : "node";
		if (failure === "client") {
			// The client's side failed first: the node may be fine, so its route stays.
			const code = body.kind === "stream" && body.upload.stalled ? "request_body_timeout" : "request_body_incomplete";
			throw new ProxyError(code, { sandboxId: context.target.sandboxId, cause: error });
		}
		// Past the start of a long upload, who failed is unknown; the next request finds out.
		if (error instanceof ProxyError && error.code === "node_unreachable" && failure !== "unknown") {
			// The object decides what an unreachable node means for its route.
			// The client is told why its request failed (the node), not what
			// went wrong while the edge took note of it.
			await catalog.invalidate(route, "unreachable").catch((invalidateError: unknown) => {
				logEvent("invalidate_failed", {
					sandboxId: context.target.sandboxId,
					detail: invalidateError instanceof Error ? invalidateError.message : String(invalidateError),
				});
			});
		}
		throw error;
	}
	context.trace.nodeMs = Date.now() - sentAt;
	return readNodeAnswer(response, context.target, context.request.method, context.config.trustNotHereHeader);
}
