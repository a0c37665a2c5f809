// A development OAuth2 authorization server for the client-credentials grant:
// the token endpoint the edge gets its bearer tokens from, and the OIDC
// discovery document and JWKS through which the development control plane
// verifies them, as E2B's API does with go-oidc. Plus faults, and an admin
// route to set them by hand.

import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { refuseAdminRequest } from "./admin-guard.ts";
import { BodyTooLargeError, delayUnlessClosed, pathOf, readBody, sendJson, sendNoContent } from "./http-util.ts";
import { generateSigningKey, type PublicJwk, type SigningKey, signJwt } from "./jwt.ts";
import { type Log, silent } from "./model.ts";
import { describeTokenFault, parseTokenFault, type TokenEndpointFault, TokenFaultError } from "./token-fault.ts";
import {
	type ClientAuthMethod,
	judgeTokenRequest,
	type OAuthClient,
	type OAuthErrorCode,
	type TokenGrant,
} from "./token-request.ts";

export type { TokenEndpointFault } from "./token-fault.ts";
export type { OAuthClient } from "./token-request.ts";

export const DEFAULT_TOKEN_ENDPOINT_PORT = 8791;
export const TOKEN_PATH = "/oauth2/token";
export const JWKS_PATH = "/jwks.json";
export const DISCOVERY_PATH = "/.well-known/openid-configuration";

export interface TokenEndpointOptions {
	clients: OAuthClient[];
	/** Default 8791; 0 picks a free port. */
	port?: number;
	/** Default 3600. */
	tokenTtlSeconds?: number;
	log?: Log;
}

/** One request to the token path, granted, refused or faulted. Never holds a secret. */
export interface TokenRequestRecord {
	/** Epoch ms when the request arrived. */
	at: number;
	status: number;
	outcome: "granted" | OAuthErrorCode | "fault";
	authMethod: ClientAuthMethod;
	clientId?: string;
	grantType?: string;
	/** The granted scopes, space-separated. */
	scope?: string;
	audience?: string;
	/** The issued token's jti and exp (epoch seconds). */
	jti?: string;
	expiresAt?: number;
	/** The fault that applied, described. */
	fault?: string;
}

export interface TokenEndpoint {
	/** The issuer, e.g. http://127.0.0.1:8791: the control plane's issuerUrl. */
	readonly url: string;
	/** e.g. http://127.0.0.1:8791/oauth2/token: the edge's OAUTH_TOKEN_URL. */
	readonly tokenUrl: string;
	readonly jwksUrl: string;
	readonly port: number;
	/** Every request to the token path, oldest first. */
	requests(): TokenRequestRecord[];
	resetRequests(): void;
	fault(): TokenEndpointFault | undefined;
	/** Validates like PUT /admin/fault (throws TokenFaultError); resolves once the port is down or up as asked. */
	setFault(fault: TokenEndpointFault): Promise<void>;
	clearFault(): Promise<void>;
	/** A new signing key; the JWKS lists it and the one before. Resolves with the new kid. */
	rotateKey(): Promise<string>;
	/** Signs any claims with the current key, for tests of tokens this endpoint would never issue. */
	signToken(claims: Record<string, unknown>): Promise<string>;
	close(): Promise<void>;
}

const MAX_RECORDED = 10_000;
const MAX_BODY_BYTES = 64 * 1024;
const ADMIN_ROUTES = [
	"GET /admin/fault",
	"PUT /admin/fault {down?, reset?, delayMs?, httpStatus?, garbage?, times?, durationMs?} (down needs durationMs here)",
	"DELETE /admin/fault",
	"GET /admin/requests",
	"DELETE /admin/requests",
];

class HttpError extends Error {
	readonly status: number;
	constructor(status: number, message: string) {
		super(message);
		this.status = status;
	}
}

export async function startTokenEndpoint(options: TokenEndpointOptions): Promise<TokenEndpoint> {
	const log = options.log ?? silent;
	const ttl = options.tokenTtlSeconds ?? 3600;
	if (!Number.isInteger(ttl) || ttl < 1) throw new Error("tokenTtlSeconds must be an integer of at least 1");
	const clients = new Map<string, OAuthClient>();
	for (const client of options.clients) {
		if (client.clientId === "" || client.clientSecret === "") throw new Error("a client needs an ID and a secret");
		clients.set(client.clientId, { ...client, scopes: [...client.scopes] });
	}

	let key: SigningKey = await generateSigningKey();
	let previousKey: SigningKey | undefined;
	let records: TokenRequestRecord[] = [];
	let fault: TokenEndpointFault | undefined;
	let remaining = Number.POSITIVE_INFINITY;
	let faultTimer: NodeJS.Timeout | undefined;
	let issuer = "";

	const sockets = new Set<Socket>();
	const server = createServer((req, res) => {
		route(req, res).catch((error: unknown) => {
			if (res.headersSent) return void res.destroy();
			if (error instanceof HttpError)
				return sendJson(res, error.status, { message: error.message, code: error.status });
			if (error instanceof TokenFaultError) return sendJson(res, 400, { message: error.message, code: 400 });
			sendJson(res, 500, { message: error instanceof Error ? error.message : String(error), code: 500 });
		});
	});
	server.on("connection", (socket: Socket) => {
		sockets.add(socket);
		socket.once("close", () => sockets.delete(socket));
	});

	let listening = false;
	let closed = false;
	let port = options.port ?? DEFAULT_TOKEN_ENDPOINT_PORT;
	// Down and up one at a time, in the order asked.
	let transitions: Promise<void> = Promise.resolve();

	function up(): Promise<void> {
		return new Promise((resolve, reject) => {
			server.once("error", reject);
			server.listen(port, "127.0.0.1", () => {
				server.off("error", reject);
				listening = true;
				resolve();
			});
		});
	}

	function down(): Promise<void> {
		return new Promise((resolve) => {
			listening = false;
			server.close(() => resolve());
			for (const socket of sockets) socket.destroy();
		});
	}

	/** Brings the port to the state the fault asks for. */
	function settle(): Promise<void> {
		transitions = transitions.then(async () => {
			const wantUp = !closed && fault?.down !== true;
			if (wantUp && !listening) {
				await up();
				log(`${issuer} is up again`);
			} else if (!wantUp && listening) {
				await down();
				if (!closed) log(`${issuer} is down [fault]`);
			}
		});
		return transitions;
	}

	async function setFault(next: TokenEndpointFault): Promise<void> {
		const parsed = parseTokenFault(next);
		clearTimeout(faultTimer);
		fault = parsed;
		remaining = parsed.times ?? Number.POSITIVE_INFINITY;
		if (parsed.durationMs !== undefined) {
			faultTimer = setTimeout(() => {
				if (fault === parsed) void clearFault();
			}, parsed.durationMs);
			faultTimer.unref();
		}
		await settle();
	}

	function clearFault(): Promise<void> {
		clearTimeout(faultTimer);
		fault = undefined;
		return settle();
	}

	/** The fault for this token request, counted against `times`. */
	function takeFault(): TokenEndpointFault | undefined {
		const taken = fault;
		if (taken === undefined || taken.down === true) return undefined;
		remaining -= 1;
		if (remaining <= 0) {
			clearTimeout(faultTimer);
			fault = undefined;
		}
		return taken;
	}

	function record(entry: TokenRequestRecord): void {
		records.push(entry);
		if (records.length > MAX_RECORDED) records.splice(0, records.length - MAX_RECORDED);
	}

	async function issue(grant: TokenGrant): Promise<{ token: string; jti: string; exp: number; scope: string }> {
		const iat = Math.floor(Date.now() / 1000);
		const jti = randomUUID();
		const scope = grant.scopes.join(" ");
		const claims = {
			iss: issuer,
			sub: grant.client.clientId,
			...(grant.audience === undefined ? {} : { aud: grant.audience }),
			iat,
			exp: iat + ttl,
			jti,
			client_id: grant.client.clientId,
			scope,
			org_id: grant.client.orgId,
		};
		return { token: await signJwt(claims, key), jti, exp: iat + ttl, scope };
	}

	/** Answers with the fault if it takes the answer over; false when the normal answer follows. */
	function answerFault(taken: TokenEndpointFault, req: IncomingMessage, res: ServerResponse): boolean {
		if (taken.reset === true) {
			req.socket.destroy();
			return true;
		}
		if (taken.httpStatus !== undefined) {
			const body = `<html><head><title>${taken.httpStatus}</title></head><body><h1>${taken.httpStatus}</h1><p>injected fault</p></body></html>\n`;
			res.writeHead(taken.httpStatus, { "content-type": "text/html", "content-length": Buffer.byteLength(body) });
			res.end(body);
			return true;
		}
		if (taken.garbage !== undefined && taken.garbage !== false) {
			const body =
				taken.garbage === "no-access-token"
					? JSON.stringify({ token_type: "Bearer", expires_in: ttl })
					: "<html><body>Welcome to the login portal</body></html>";
			res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
			res.end(body);
			return true;
		}
		return false;
	}

	async function handleToken(req: IncomingMessage, res: ServerResponse): Promise<void> {
		const at = Date.now();
		const taken = takeFault();
		const faultText = taken === undefined ? undefined : describeTokenFault(taken);
		if (taken !== undefined) {
			log(`token request: ${faultText} [fault]`);
			if (taken.delayMs !== undefined && !(await delayUnlessClosed(taken.delayMs, res))) return;
			if (answerFault(taken, req, res)) {
				const status = taken.reset === true ? 0 : res.statusCode;
				return record({ at, status, outcome: "fault", authMethod: "none", fault: faultText ?? "" });
			}
		}
		let body: Buffer;
		try {
			body = await readBody(req, MAX_BODY_BYTES);
		} catch (error) {
			if (error instanceof BodyTooLargeError) {
				return sendJson(res, 413, { error: "invalid_request", error_description: error.message });
			}
			return void res.destroy();
		}
		const judged = judgeTokenRequest(
			{
				contentType: req.headers["content-type"],
				authorization: req.headers.authorization,
				body: body.toString("utf8"),
			},
			clients,
		);
		const base = {
			at,
			authMethod: judged.authMethod,
			...(judged.clientId === undefined ? {} : { clientId: judged.clientId }),
			...(judged.grantType === undefined ? {} : { grantType: judged.grantType }),
			...(faultText === undefined ? {} : { fault: faultText }),
		};
		if (judged.error !== undefined || judged.grant === undefined) {
			const error = judged.error;
			const code = error?.code ?? "invalid_request";
			const status = error?.status ?? 400;
			log(`token request from ${judged.clientId ?? "<no client>"}: ${code} (${error?.message})`);
			record({ ...base, status, outcome: code });
			// RFC 6749 §5.2: a 401 names the authentication scheme the client should use.
			const headers: Record<string, string> =
				status === 401 ? { "www-authenticate": 'Basic realm="sandbox-edge-proxy dev token endpoint"' } : {};
			return sendJson(res, status, { error: code, error_description: error?.message ?? "" }, headers);
		}
		const { token, jti, exp, scope } = await issue(judged.grant);
		log(`token issued to ${judged.grant.client.clientId} (scope "${scope}", jti ${jti}, ${ttl}s)`);
		record({
			...base,
			status: 200,
			outcome: "granted",
			scope,
			...(judged.grant.audience === undefined ? {} : { audience: judged.grant.audience }),
			jti,
			expiresAt: exp,
		});
		sendJson(res, 200, { access_token: token, token_type: "Bearer", expires_in: ttl, scope }, { pragma: "no-cache" });
	}

	async function readJson(req: IncomingMessage): Promise<unknown> {
		const body = await readBody(req, MAX_BODY_BYTES).catch((error: unknown) => {
			throw error instanceof BodyTooLargeError ? new HttpError(413, error.message) : error;
		});
		if (body.byteLength === 0) return {};
		try {
			return JSON.parse(body.toString("utf8"));
		} catch {
			throw new HttpError(400, "request body must be JSON");
		}
	}

	async function handleAdmin(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
		const refusal = refuseAdminRequest(req);
		if (refusal !== undefined) {
			const { status, reason, message } = refusal;
			return sendJson(res, status, { message, code: status, reason }, { connection: "close" });
		}
		const method = req.method ?? "GET";
		if (path === "/admin" || path === "/admin/") return sendJson(res, 200, { routes: ADMIN_ROUTES });
		if (path === "/admin/fault") {
			if (method === "GET") return sendJson(res, 200, { fault: fault ?? null });
			if (method === "PUT") {
				const next = parseTokenFault(await readJson(req));
				if (next.down === true && next.durationMs === undefined) {
					throw new HttpError(400, "down takes this route down with the port: give durationMs, after which it returns");
				}
				if (next.down !== true) {
					await setFault(next);
					return sendJson(res, 200, { fault: fault ?? null });
				}
				// Answer first: going down destroys this connection too.
				res.once("finish", () => void setFault(next));
				return sendJson(res, 200, { fault: next }, { connection: "close" });
			}
			if (method === "DELETE") {
				await clearFault();
				return sendNoContent(res);
			}
			throw new HttpError(405, "method not allowed; use GET, PUT or DELETE");
		}
		if (path === "/admin/requests") {
			if (method === "GET") return sendJson(res, 200, { requests: records });
			if (method === "DELETE") {
				records = [];
				return sendNoContent(res);
			}
			throw new HttpError(405, "method not allowed; use GET or DELETE");
		}
		throw new HttpError(404, `no admin route ${method} ${path}; GET /admin lists them`);
	}

	function discovery(): object {
		const scopes = [...new Set([...clients.values()].flatMap((client) => client.scopes))];
		return {
			issuer,
			token_endpoint: `${issuer}${TOKEN_PATH}`,
			jwks_uri: `${issuer}${JWKS_PATH}`,
			grant_types_supported: ["client_credentials"],
			token_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post"],
			response_types_supported: ["token"],
			subject_types_supported: ["public"],
			id_token_signing_alg_values_supported: ["RS256"],
			scopes_supported: scopes,
			claims_supported: ["iss", "sub", "aud", "iat", "exp", "jti", "client_id", "scope", "org_id"],
		};
	}

	async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
		const path = pathOf(req);
		const method = req.method ?? "GET";
		if (path === "/admin" || path.startsWith("/admin/")) return handleAdmin(req, res, path);
		if (path === TOKEN_PATH) {
			if (method === "POST") return handleToken(req, res);
			return sendJson(
				res,
				405,
				{ error: "invalid_request", error_description: "the token endpoint takes POST" },
				{ allow: "POST" },
			);
		}
		const readable = method === "GET" || method === "HEAD";
		if (path === DISCOVERY_PATH && readable) return sendJson(res, 200, discovery());
		if (path === JWKS_PATH && readable) {
			const keys: PublicJwk[] = [key.publicJwk, ...(previousKey === undefined ? [] : [previousKey.publicJwk])];
			return sendJson(res, 200, { keys });
		}
		sendJson(res, 404, { message: `no route ${method} ${path}`, code: 404 });
	}

	server.requestTimeout = 0;
	server.headersTimeout = 60_000;
	await up();
	port = (server.address() as AddressInfo).port;
	issuer = `http://127.0.0.1:${port}`;
	log(`listening on ${issuer} (token endpoint ${TOKEN_PATH}, discovery ${DISCOVERY_PATH}, JWKS ${JWKS_PATH})`);

	return {
		url: issuer,
		tokenUrl: `${issuer}${TOKEN_PATH}`,
		jwksUrl: `${issuer}${JWKS_PATH}`,
		port,
		requests: () => records.map((entry) => ({ ...entry })),
		resetRequests: () => {
			records = [];
		},
		fault: () => (fault === undefined ? undefined : { ...fault }),
		setFault,
		clearFault,
		async rotateKey() {
			const next = await generateSigningKey();
			previousKey = key;
			key = next;
			log(`signing key rotated to ${key.kid}`);
			return key.kid;
		},
		signToken: (claims) => signJwt(claims, key),
		async close() {
			closed = true;
			clearTimeout(faultTimer);
			await settle();
		},
	};
}
