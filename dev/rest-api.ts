// E2B's REST API, the part the e2b SDK (2.51.0) uses to manage sandboxes,
// served by the development control plane beside its RPCs and admin API, on
// the same registry: a sandbox created here is a demo sandbox like the admin
// API's, its catalog entry pushed to the edge, and every change here is one
// the edge sees. Shapes, statuses and messages follow e2b-dev/infra's
// packages/api handlers and spec/openapi.yml; see dev/README.md, "E2B's REST
// API".

import type { IncomingMessage, ServerResponse } from "node:http";
import { isLoopbackHost } from "./admin-guard.ts";
import { sameSecret } from "./client-proxy-auth.ts";
import { ENVD_VERSION } from "./envd/version.ts";
import { BodyTooLargeError, pathOf, queryOf, readBody } from "./http-util.ts";
import { shortId } from "./ids.ts";
import { maskRequestHostProblem } from "./mask-request-host.ts";
import { type Log, type SandboxView, silent } from "./model.ts";
import { RegistryError, type SandboxRegistry } from "./registry.ts";
import { parseConnect, parseJsonObject, parseNewSandbox, parsePause, parseTimeout } from "./rest/bodies.ts";
import { RestError, sandboxNotFound, sendE2bError, sendE2bJson, validationError } from "./rest/errors.ts";
import { listV1, listV2 } from "./rest/list.ts";
import { createOperationMatcher, E2B_OPERATIONS } from "./rest/operations.ts";
import { listedSandbox, type ShapeContext, sandboxAnswer, sandboxDetail } from "./rest/shapes.ts";

/**
 * The envd version every sandbox claims in create, connect, get and list:
 * the dev envd's (dev/envd/version.ts). The SDK picks envd features by it
 * (0.1.0 at least, or create fails; 0.4.0 and up: no default user; 0.5.7:
 * octet-stream uploads; 0.6.2: file metadata, which the dev envd cannot
 * store). E2B's own envd is at 0.6.13 (packages/envd/pkg/version.go).
 */
export { ENVD_VERSION } from "./envd/version.ts";

/**
 * The stack's API key unless given another. E2B's format: "e2b_" and hex
 * (E2B's keys have 40 digits), which E2B's API checks before looking it up.
 */
export const DEFAULT_REST_API_KEY = "e2b_0123456789abcdef0123456789abcdef01234567";

const API_KEY_PATTERN = /^e2b_(?:[0-9a-fA-F]{2})*$/;
const MAX_BODY_BYTES = 1024 * 1024;
// E2B's ApiKeyAuth authenticator prefixes what its validation says with this.
const INVALID_API_KEY = "Invalid API key, please visit https://e2b.dev/docs/api-key for more information.";

/** The operations this API serves; every other one of E2B's answers 501. */
const SERVED = new Set([
	"GET /health",
	"GET /sandboxes",
	"POST /sandboxes",
	"GET /v2/sandboxes",
	"POST /v2/sandboxes",
	"GET /sandboxes/{sandboxID}",
	"DELETE /sandboxes/{sandboxID}",
	"POST /sandboxes/{sandboxID}/connect",
	"POST /v2/sandboxes/{sandboxID}/connect",
	"POST /sandboxes/{sandboxID}/pause",
	"POST /sandboxes/{sandboxID}/timeout",
]);

export interface RestApiOptions {
	registry: SandboxRegistry;
	/** The X-API-Key callers must send: "e2b_" and hex, as E2B's keys. */
	apiKey: string;
	/** How long connect waits out a pause before trying again (three tries, as E2B). */
	transitionWaitMs: number;
	/** The base domain of sandbox traffic to name in answers (`domain`); absent: none, as E2B's own cluster. */
	sandboxDomain?: string;
	log?: Log;
}

export type RestHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** Throws unless `key` has E2B's API key format, which E2B's API checks before looking a key up. */
export function checkRestApiKey(key: string): void {
	if (!API_KEY_PATTERN.test(key)) {
		throw new Error(`restApiKey must be "e2b_" followed by hex digits, as E2B's API keys are (got "${key}")`);
	}
}

/**
 * E2B's ApiKeyAuth, and the answer its validator gives when no security
 * scheme passes: the first failure of a scheme whose header was sent, else
 * "authorization header is missing".
 */
function authenticate(req: IncomingMessage, apiKey: string): void {
	const header = req.headers["x-api-key"];
	const key = Array.isArray(header) ? header[0] : header;
	if (key === undefined || key === "") throw new RestError(401, "authorization header is missing");
	if (!key.startsWith("e2b_")) throw new RestError(401, "authorization header is malformed");
	if (!/^(?:[0-9a-fA-F]{2})*$/.test(key.slice(4)))
		throw new RestError(401, `${INVALID_API_KEY}\nInvalid API key format`);
	if (!sameSecret(key, apiKey)) {
		throw new RestError(401, `${INVALID_API_KEY}\nCannot get the team for the given API key`);
	}
}

/** Keeps web pages out, as the admin API does: a rebinding page sends its own name as Host. */
function refuseForeignHost(req: IncomingMessage): RestError | undefined {
	const hosts: string[] = [];
	for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
		if (req.rawHeaders[i]?.toLowerCase() === "host") hosts.push(req.rawHeaders[i + 1] ?? "");
	}
	const host = hosts.length === 1 ? hosts[0] : undefined;
	if (host !== undefined && isLoopbackHost(host)) return undefined;
	return new RestError(
		403,
		"the development control plane answers only requests whose Host is localhost, a 127.0.0.0/8 address or [::1] (with an optional port), against DNS rebinding",
	);
}

async function readJsonBody(req: IncomingMessage) {
	let raw: Buffer;
	try {
		raw = await readBody(req, MAX_BODY_BYTES);
	} catch (error) {
		if (error instanceof BodyTooLargeError) throw new RestError(413, error.message);
		throw error;
	}
	return parseJsonObject(raw);
}

/** E2B's utils.ShortID on a path's sandbox ID, with its handlers' answer. */
function sandboxIdOf(param: string | undefined): string {
	const id = shortId(param ?? "");
	if (id === undefined) throw new RestError(400, "Invalid sandbox ID");
	return id;
}

/** The registry's refusals, in E2B's words where E2B has them. */
function fromRegistry(error: unknown, sandboxId: string): unknown {
	if (!(error instanceof RegistryError)) return error;
	if (error.status === 404) return sandboxNotFound(sandboxId);
	return new RestError(error.status, error.message);
}

export function createRestApiHandler(options: RestApiOptions): RestHandler {
	const { registry, apiKey, transitionWaitMs } = options;
	checkRestApiKey(apiKey);
	const log = options.log ?? silent;
	const match = createOperationMatcher(E2B_OPERATIONS);
	const maxHours = registry.maxLengthMs / 3_600_000;
	const context: ShapeContext = {
		envdVersion: ENVD_VERSION,
		sandboxDomain: options.sandboxDomain,
		maxLengthMs: registry.maxLengthMs,
	};

	/** The API key's team sees its own sandboxes only; a killed one is gone, as in E2B. */
	function find(sandboxId: string): SandboxView | undefined {
		const sandbox = registry.get(sandboxId);
		if (sandbox === undefined || sandbox.teamId !== registry.teamId || sandbox.state === "killed") return undefined;
		return sandbox;
	}

	function teamSandboxes(): SandboxView[] {
		return registry.list().filter((s) => s.teamId === registry.teamId && s.state !== "killed");
	}

	/** E2B's validateAndParseTimeout for create: seconds, default by version, at most the longest life. */
	function createTimeoutMs(timeout: number | undefined, version: "v1" | "v2"): number {
		const seconds = timeout ?? (version === "v1" ? 15 : 300);
		if (seconds <= 0) throw new RestError(400, "Timeout must be greater than 0");
		if (seconds * 1000 > registry.maxLengthMs) {
			throw new RestError(400, `Timeout cannot be greater than ${maxHours} hours`);
		}
		return seconds * 1000;
	}

	async function create(req: IncomingMessage, res: ServerResponse, version: "v1" | "v2"): Promise<void> {
		const body = parseNewSandbox(await readJsonBody(req), version);
		const timeoutMs = createTimeoutMs(body.timeout, version);
		const autoPause = body.autoPause ?? false;
		if (body.autoPauseMemory === false && !autoPause) {
			throw new RestError(400, "autoPauseMemory=false only applies when autoPause is true.");
		}
		if (body.autoPauseMemory === false) {
			throw new RestError(
				400,
				"autoPauseMemory=false (a filesystem-only snapshot) is not supported by the development control plane",
			);
		}
		const maskProblem = body.maskRequestHost === undefined ? undefined : maskRequestHostProblem(body.maskRequestHost);
		if (maskProblem !== undefined) throw new RestError(400, maskProblem);
		if (body.allowPublicTraffic === false && body.secure !== true) {
			throw new RestError(
				400,
				"You cannot create a sandbox without public access unless you enable secure envd access via 'secure' flag.",
			);
		}
		let created: SandboxView;
		try {
			created = await registry.create({
				templateId: body.templateId,
				timeoutMs,
				onTimeout: autoPause ? "pause" : "kill",
				autoResume: body.autoResume ?? false,
				public: body.allowPublicTraffic ?? true,
				secure: body.secure === true,
				...(body.metadata === undefined ? {} : { metadata: body.metadata }),
				...(body.allowInternetAccess === undefined ? {} : { allowInternetAccess: body.allowInternetAccess }),
				...(body.maskRequestHost === undefined ? {} : { maskRequestHost: body.maskRequestHost }),
			});
		} catch (error) {
			if (error instanceof RegistryError) throw new RestError(error.status, error.message);
			throw error;
		}
		sendE2bJson(res, 201, sandboxAnswer(created, context));
	}

	/**
	 * E2B's connect (sandbox_connect.go): a running sandbox's end time moves
	 * to now + timeout if that is later (200); a pausing one is waited out
	 * and tried again, three tries in all; a paused one with a snapshot is
	 * resumed with that timeout (201); anything else is not found.
	 */
	async function connect(req: IncomingMessage, res: ServerResponse, param: string, version: "v1" | "v2") {
		const body = parseConnect(await readJsonBody(req), version);
		if (body.timeout * 1000 > registry.maxLengthMs) {
			throw new RestError(400, `Timeout cannot be greater than ${maxHours} hours`);
		}
		const timeoutMs = body.timeout * 1000;
		const id = sandboxIdOf(param);
		const closed = new AbortController();
		res.once("close", () => closed.abort());
		for (let attempt = 0; attempt < 3; attempt++) {
			const sandbox = find(id);
			if (sandbox === undefined || sandbox.state === "paused") break;
			if (sandbox.state === "running") {
				try {
					return sendE2bJson(res, 200, sandboxAnswer(registry.keepAliveFor(id, timeoutMs, false), context));
				} catch (error) {
					if (!(error instanceof RegistryError) || error.status !== 409) throw fromRegistry(error, id);
				}
			}
			await registry.waitWhilePausing(id, transitionWaitMs, closed.signal);
			if (closed.signal.aborted) return;
		}
		const sandbox = find(id);
		if (sandbox === undefined || !sandbox.hasSnapshot) throw sandboxNotFound(id);
		if (sandbox.state === "pausing") throw new RestError(409, `Sandbox "${id}" is being paused`);
		if (body.memory === false && sandbox.state === "paused") {
			// E2B's answer while its FsOnlyResumeAPIFlag is off.
			throw new RestError(
				400,
				"Resuming without memory (memory: false) is not enabled for this team; a plain resume still restores memory",
			);
		}
		let resumed: SandboxView;
		try {
			resumed = await registry.resume(id, { timeoutMs });
		} catch (error) {
			throw fromRegistry(error, id);
		}
		sendE2bJson(res, sandbox.state === "running" ? 200 : 201, sandboxAnswer(resumed, context));
	}

	/** E2B's pause: 204; 409 when already paused (the SDK's `false`); 404 when not found or killed. */
	async function pause(req: IncomingMessage, res: ServerResponse, param: string) {
		const id = sandboxIdOf(param);
		const body = parsePause(await readJsonBody(req));
		if (body.memory === false) {
			throw new RestError(
				400,
				"memory: false (a filesystem-only snapshot) is not supported by the development control plane",
			);
		}
		const sandbox = find(id);
		if (sandbox === undefined) throw sandboxNotFound(id);
		if (sandbox.state === "paused") {
			throw new RestError(409, `Error pausing sandbox - sandbox '${id}' is already paused`);
		}
		try {
			await registry.pause(id);
		} catch (error) {
			throw fromRegistry(error, id);
		}
		res.writeHead(204).end();
	}

	/** E2B's set-timeout: KeepAliveFor(timeout, allowShorter = true), 204. */
	async function setTimeoutOf(req: IncomingMessage, res: ServerResponse, param: string) {
		const id = sandboxIdOf(param);
		const timeout = parseTimeout(await readJsonBody(req));
		if (find(id) === undefined) throw sandboxNotFound(id);
		try {
			registry.keepAliveFor(id, timeout * 1000, true);
		} catch (error) {
			throw fromRegistry(error, id);
		}
		res.writeHead(204).end();
	}

	/** E2B's kill: a running sandbox is killed, a paused one's snapshot deleted; 204, or 404. */
	async function kill(res: ServerResponse, param: string) {
		const id = sandboxIdOf(param);
		if (find(id) === undefined) throw sandboxNotFound(id);
		try {
			await registry.kill(id);
		} catch (error) {
			throw fromRegistry(error, id);
		}
		res.writeHead(204).end();
	}

	async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
		const method = req.method ?? "GET";
		const found = match(method, pathOf(req));
		if (found.kind === "not_found") throw validationError("no matching operation was found", 404);
		if (found.kind === "method_not_allowed") throw validationError("method not allowed");
		const { operation, params } = found;
		if (operation === "GET /health") {
			res.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
			res.end("Health check successful");
			return;
		}
		const foreign = refuseForeignHost(req);
		if (foreign !== undefined) throw foreign;
		authenticate(req, apiKey);
		if (!SERVED.has(operation)) {
			throw new RestError(501, `${operation} is not served by the development control plane`);
		}
		const param = params.sandboxID ?? "";
		switch (operation) {
			case "POST /sandboxes":
				return create(req, res, "v1");
			case "POST /v2/sandboxes":
				return create(req, res, "v2");
			case "GET /sandboxes":
				return sendE2bJson(
					res,
					200,
					listV1(teamSandboxes(), queryOf(req)).map((s) => listedSandbox(s, context)),
				);
			case "GET /v2/sandboxes": {
				const page = listV2(teamSandboxes(), queryOf(req));
				return sendE2bJson(
					res,
					200,
					page.sandboxes.map((s) => listedSandbox(s, context)),
					page.headers,
				);
			}
			case "GET /sandboxes/{sandboxID}": {
				const id = sandboxIdOf(param);
				const sandbox = find(id);
				// E2B names the ID as asked here, not its short form.
				if (sandbox === undefined) throw sandboxNotFound(param);
				return sendE2bJson(res, 200, sandboxDetail(sandbox, context));
			}
			case "DELETE /sandboxes/{sandboxID}":
				return kill(res, param);
			case "POST /sandboxes/{sandboxID}/connect":
				return connect(req, res, param, "v1");
			case "POST /v2/sandboxes/{sandboxID}/connect":
				return connect(req, res, param, "v2");
			case "POST /sandboxes/{sandboxID}/pause":
				return pause(req, res, param);
			case "POST /sandboxes/{sandboxID}/timeout":
				return setTimeoutOf(req, res, param);
		}
	}

	return (req, res) => {
		route(req, res)
			.then(() => log(`REST ${req.method} ${pathOf(req)} -> ${res.statusCode}`))
			.catch((error: unknown) => {
				if (res.headersSent) return void res.destroy();
				const answer =
					error instanceof RestError
						? error
						: new RestError(500, error instanceof Error ? error.message : String(error));
				log(`REST ${req.method} ${pathOf(req)} -> ${answer.status}: ${answer.message}`);
				sendE2bError(res, answer);
			});
	};
}
