// JSON admin API under /admin, for the CLI and for tests that drive the stack
// over HTTP rather than in-process. It has no credentials: admin-guard.ts
// keeps web pages out.

import type { IncomingMessage, ServerResponse } from "node:http";
import { refuseAdminRequest } from "./admin-guard.ts";
import { FaultError, type FaultSlot, parseFault } from "./fault.ts";
import { BodyTooLargeError, pathOf, queryOf, readBody, sendJson, sendNoContent } from "./http-util.ts";
import {
	type CreateSandboxInput,
	type KeepAliveCall,
	MAX_PORT_OPEN_DELAY_MS,
	type RecordedCall,
	SANDBOX_STATES,
	type SandboxChanges,
	type SandboxState,
	type SandboxView,
} from "./model.ts";
import { RegistryError, type SandboxRegistry } from "./registry.ts";

export interface AdminBackend {
	registry: SandboxRegistry;
	calls(): RecordedCall[];
	resetCalls(): void;
	keepAliveCalls(): KeepAliveCall[];
	resetKeepAliveCalls(): void;
	fault: FaultSlot;
}

class HttpError extends Error {
	readonly status: number;
	readonly headers: Record<string, string>;
	constructor(status: number, message: string, headers: Record<string, string> = {}) {
		super(message);
		this.status = status;
		this.headers = headers;
	}
}

const REQUIREMENTS =
	"Every request needs a loopback Host (localhost, 127.0.0.0/8, [::1]); " +
	"every one but GET and HEAD needs Content-Type: application/json, with a body or not";

const ROUTES = [
	"GET /admin/sandboxes [?tokens=1]",
	"POST /admin/sandboxes {id?, autoResume?, public?, secure?, state?, ports?, portOpenDelayMs?, teamId?, trafficKeepalive?, timeoutMs?, maskRequestHost?}",
	"GET /admin/sandboxes/:id",
	"PATCH /admin/sandboxes/:id {trafficKeepalive} (the catalog entry is not rewritten)",
	"DELETE /admin/sandboxes/:id",
	"POST /admin/sandboxes/:id/pause [?wait=false]",
	"POST /admin/sandboxes/:id/resume",
	"POST /admin/sandboxes/:id/kill",
	"GET /admin/calls",
	"DELETE /admin/calls",
	"GET /admin/keepalive-calls",
	"DELETE /admin/keepalive-calls",
	"GET /admin/fault",
	"PUT /admin/fault {rpc?, code?, message?, delayMs?, httpStatus?, garbage?, hang?, sandboxId?, times?}",
	"DELETE /admin/fault",
];

async function readJson(req: IncomingMessage): Promise<unknown> {
	let body: Buffer;
	try {
		body = await readBody(req, 64 * 1024);
	} catch (error) {
		if (error instanceof BodyTooLargeError) throw new HttpError(413, error.message);
		throw error;
	}
	if (body.byteLength === 0) return {};
	try {
		return JSON.parse(body.toString("utf8"));
	} catch {
		throw new HttpError(400, "request body must be JSON");
	}
}

const CREATE_KEYS = new Set([
	"id",
	"autoResume",
	"public",
	"secure",
	"state",
	"ports",
	"portOpenDelayMs",
	"teamId",
	"trafficKeepalive",
	"timeoutMs",
	"maskRequestHost",
]);

/** A JSON object with only the given fields. */
function fieldsOf(value: unknown, allowed: ReadonlySet<string>): Record<string, unknown> {
	if (typeof value !== "object" || value === null || Array.isArray(value)) {
		throw new HttpError(400, "body must be a JSON object");
	}
	const body = value as Record<string, unknown>;
	for (const key of Object.keys(body)) {
		if (!allowed.has(key)) throw new HttpError(400, `unknown field "${key}"`);
	}
	return body;
}

function parseCreate(value: unknown): CreateSandboxInput {
	const body = fieldsOf(value, CREATE_KEYS);
	const input: CreateSandboxInput = {};
	for (const name of ["id", "teamId", "maskRequestHost"] as const) {
		if (body[name] === undefined) continue;
		if (typeof body[name] !== "string") throw new HttpError(400, `${name} must be a string`);
		input[name] = body[name];
	}
	if (body.timeoutMs !== undefined) {
		// The registry checks the range, which depends on its longest life.
		if (typeof body.timeoutMs !== "number") throw new HttpError(400, "timeoutMs must be an integer");
		input.timeoutMs = body.timeoutMs;
	}
	for (const flag of ["autoResume", "public", "secure", "trafficKeepalive"] as const) {
		if (body[flag] === undefined) continue;
		if (typeof body[flag] !== "boolean") throw new HttpError(400, `${flag} must be a boolean`);
		input[flag] = body[flag];
	}
	if (body.state !== undefined) {
		if (!SANDBOX_STATES.includes(body.state as SandboxState)) {
			throw new HttpError(400, `state must be one of ${SANDBOX_STATES.join(", ")}`);
		}
		input.state = body.state as SandboxState;
	}
	if (body.ports !== undefined) {
		if (!Array.isArray(body.ports) || !body.ports.every((p) => Number.isInteger(p))) {
			throw new HttpError(400, "ports must be an array of integers");
		}
		input.ports = body.ports as number[];
	}
	if (body.portOpenDelayMs !== undefined) {
		const delay = body.portOpenDelayMs;
		if (typeof delay !== "number" || !Number.isInteger(delay) || delay < 0 || delay > MAX_PORT_OPEN_DELAY_MS) {
			throw new HttpError(400, `portOpenDelayMs must be an integer from 0 to ${MAX_PORT_OPEN_DELAY_MS}`);
		}
		input.portOpenDelayMs = delay;
	}
	return input;
}

const CHANGE_KEYS = new Set(["trafficKeepalive"]);

function parseChanges(value: unknown): SandboxChanges {
	const body = fieldsOf(value, CHANGE_KEYS);
	if (typeof body.trafficKeepalive !== "boolean") throw new HttpError(400, "trafficKeepalive must be a boolean");
	return { trafficKeepalive: body.trafficKeepalive };
}

/** Whether `?tokens=` asks for access tokens in the list. */
function wantsTokens(req: IncomingMessage): boolean {
	const value = queryOf(req).get("tokens");
	if (value === null || value === "0" || value === "false") return false;
	if (value === "" || value === "1" || value === "true") return true;
	throw new HttpError(400, "tokens must be 1, true, 0 or false");
}

/** The list is for looking around; another sandbox's tokens are shown only on request. */
function withoutTokens(sandbox: SandboxView): SandboxView {
	const { trafficAccessToken: _traffic, envdAccessToken: _envd, ...rest } = sandbox;
	return rest;
}

function methodNotAllowed(allowed: string[]): never {
	throw new HttpError(405, `method not allowed; use ${allowed.join(" or ")}`, { allow: allowed.join(", ") });
}

function mustFind(backend: AdminBackend, id: string) {
	const sandbox = backend.registry.get(id);
	if (sandbox === undefined) throw new HttpError(404, `sandbox ${id} not found`);
	return sandbox;
}

async function route(backend: AdminBackend, req: IncomingMessage, res: ServerResponse): Promise<void> {
	const { registry } = backend;
	const method = req.method ?? "GET";
	let segments: string[];
	try {
		segments = pathOf(req).split("/").filter(Boolean).map(decodeURIComponent);
	} catch {
		throw new HttpError(400, "malformed percent-encoding in the path");
	}
	const [, resource, id, action, ...rest] = segments;

	if (resource === undefined) return sendJson(res, 200, { routes: ROUTES, requirements: REQUIREMENTS });

	if (resource === "sandboxes" && rest.length === 0) {
		if (id === undefined) {
			if (method === "GET") {
				const sandboxes = registry.list();
				return sendJson(res, 200, { sandboxes: wantsTokens(req) ? sandboxes : sandboxes.map(withoutTokens) });
			}
			if (method === "POST") return sendJson(res, 201, await registry.create(parseCreate(await readJson(req))));
			methodNotAllowed(["GET", "POST"]);
		}
		if (action === undefined) {
			if (method === "GET") return sendJson(res, 200, mustFind(backend, id));
			if (method === "PATCH") {
				mustFind(backend, id);
				return sendJson(res, 200, registry.update(id, parseChanges(await readJson(req))));
			}
			if (method === "DELETE") {
				mustFind(backend, id);
				await registry.remove(id);
				return sendNoContent(res);
			}
			methodNotAllowed(["GET", "PATCH", "DELETE"]);
		}
		if (action === "pause" || action === "resume" || action === "kill") {
			if (method !== "POST") methodNotAllowed(["POST"]);
			mustFind(backend, id);
			if (action === "kill") return sendJson(res, 200, await registry.kill(id));
			if (action === "resume") return sendJson(res, 200, await registry.resume(id));
			const pausing = registry.pause(id);
			if (queryOf(req).get("wait") === "false") {
				// The caller wants the "pausing" window; errors still surface in the log.
				pausing.catch(() => {});
				return sendJson(res, 202, mustFind(backend, id));
			}
			return sendJson(res, 200, await pausing);
		}
	}

	if (resource === "calls" && id === undefined) {
		if (method === "GET") return sendJson(res, 200, { calls: backend.calls().map(withoutSecret) });
		if (method === "DELETE") {
			backend.resetCalls();
			return sendNoContent(res);
		}
		methodNotAllowed(["GET", "DELETE"]);
	}

	if (resource === "keepalive-calls" && id === undefined) {
		if (method === "GET") return sendJson(res, 200, { calls: backend.keepAliveCalls().map(withoutSecret) });
		if (method === "DELETE") {
			backend.resetKeepAliveCalls();
			return sendNoContent(res);
		}
		methodNotAllowed(["GET", "DELETE"]);
	}

	if (resource === "fault" && id === undefined) {
		if (method === "GET") return sendJson(res, 200, { fault: backend.fault.current() ?? null });
		if (method === "PUT") {
			backend.fault.set(parseFault(await readJson(req)));
			return sendJson(res, 200, { fault: backend.fault.current() ?? null });
		}
		if (method === "DELETE") {
			backend.fault.clear();
			return sendNoContent(res);
		}
		methodNotAllowed(["GET", "PUT", "DELETE"]);
	}

	throw new HttpError(404, `no admin route ${method} ${pathOf(req)}; GET /admin lists them`);
}

export function createAdminHandler(backend: AdminBackend): (req: IncomingMessage, res: ServerResponse) => void {
	return (req, res) => {
		const refusal = refuseAdminRequest(req);
		if (refusal !== undefined) {
			// The body, if any, is never read: the connection goes rather than carry it into the next request.
			const { status, reason, message } = refusal;
			return sendJson(res, status, { message, code: status, reason }, { connection: "close" });
		}
		route(backend, req, res).catch((error: unknown) => {
			if (res.headersSent) return void res.destroy();
			if (error instanceof HttpError) {
				return sendJson(res, error.status, { message: error.message, code: error.status }, error.headers);
			}
			if (error instanceof RegistryError)
				return sendJson(res, error.status, { message: error.message, code: error.status });
			if (error instanceof FaultError) return sendJson(res, 400, { message: error.message, code: 400 });
			sendJson(res, 500, { message: error instanceof Error ? error.message : String(error), code: 500 });
		});
	};
}

/** The admin API is unauthenticated: it says whether the secret came, never what it was. */
// The edge's secret, and the callers' own tokens, which a call shows to
// whoever lists the calls: said to be there, never shown.
const maskedCallHeaders = [
	"x-e2b-client-proxy-auth",
	"authorization",
	"e2b-traffic-access-token",
	"e2b-envd-access-token",
];

function withoutSecret<Call extends RecordedCall>(call: Call): Call {
	const headers = { ...call.headers };
	for (const name of maskedCallHeaders) {
		if (headers[name] !== undefined) headers[name] = "(present)";
	}
	return { ...call, headers };
}
