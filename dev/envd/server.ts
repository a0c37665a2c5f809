// The development envd: what a demo sandbox serves on port 49983, the part of
// E2B's envd (packages/envd) that the SDK's everyday calls use:
//
// - GET /health: 204.
// - GET and POST /files: download and upload (files.ts).
// - filesystem.Filesystem: Stat, ListDir, MakeDir, Move, Remove (filesystem-service.ts).
// - process.Process: Start, Connect, List, SendSignal, SendInput, CloseStdin (process-service.ts).
//
// Connect (JSON and binary, as the SDK's connect-web transport speaks it) and
// gRPC-web, through connectNodeAdapter as the dev control plane serves them.
// The RPCs left out answer Unimplemented; other paths 404. The sandbox's files
// live in a scratch directory on the host that stands for its "/"
// (paths.ts); commands run on the host, in it, as the host's user.
//
// A secure sandbox (one with an envd access token) checks X-Access-Token on
// every request but GET /health and /files, which check it or a signature
// themselves, as envd's WithAuthorization and validateSigning do; a refusal is
// a 401 in envd's error shape.

import { mkdirSync, realpathSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { HandlerContext } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { Filesystem } from "../../src/gen/envd/filesystem/filesystem_pb.ts";
import { Process } from "../../src/gen/envd/process/process_pb.ts";
import { pathOf } from "../http-util.ts";
import { type Log, silent } from "../model.ts";
import { listen, type ManagedServer } from "../server-lifecycle.ts";
import { getFile, HttpError, postFiles, sendEnvdError, tokenEquals } from "./files.ts";
import { filesystemService } from "./filesystem-service.ts";
import { prepareRootSync } from "./paths.ts";
import { processService } from "./process-service.ts";
import { rpcUser } from "./rpc-user.ts";

export { ENVD_VERSION } from "./version.ts";

export interface EnvdOptions {
	/** The host directory that stands for the sandbox's "/"; created if missing. The caller removes it. */
	root: string;
	/** A secure sandbox's envd access token: X-Access-Token must carry it. */
	accessToken?: string;
	/** Sets E2B_SANDBOX_ID in commands' environment. */
	sandboxId?: string;
	/** More variables for every command (envd's defaults), after E2B_SANDBOX and E2B_SANDBOX_ID. */
	env?: Readonly<Record<string, string>>;
	log?: Log;
}

export interface EnvdHandler {
	(req: IncomingMessage, res: ServerResponse): void;
	/** The sandbox's root on the host, as a real path. */
	readonly root: string;
	/** Kills the running commands; the root stays. */
	close(): Promise<void>;
}

// envd's authExcludedPaths: reachable without the header token (/files checks it or a signature itself).
const AUTH_EXCLUDED = new Set(["GET /health", "GET /files", "POST /files", "POST /init"]);
// envd's withCORS (rs/cors with connectrpc.com/cors's exposed headers).
const CORS_METHODS = new Set(["HEAD", "GET", "POST", "PUT", "PATCH", "DELETE"]);
const CORS_EXPOSED =
	"Grpc-Status, Grpc-Message, Grpc-Status-Details-Bin, Location, Cache-Control, X-Content-Type-Options";
const CORS_MAX_AGE_SECONDS = "7200";

/** Answers a CORS preflight (true) or adds CORS headers to a cross-origin request (false). */
function cors(req: IncomingMessage, res: ServerResponse): boolean {
	const origin = req.headers.origin;
	if (origin === undefined) return false;
	const requested = req.headers["access-control-request-method"];
	if (req.method === "OPTIONS" && typeof requested === "string") {
		res.setHeader("vary", ["Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers"]);
		if (CORS_METHODS.has(requested.toUpperCase())) {
			res.setHeader("access-control-allow-origin", "*");
			res.setHeader("access-control-allow-methods", requested.toUpperCase());
			const headers = req.headers["access-control-request-headers"];
			if (headers !== undefined) res.setHeader("access-control-allow-headers", headers);
			res.setHeader("access-control-max-age", CORS_MAX_AGE_SECONDS);
		}
		res.writeHead(204);
		res.end();
		return true;
	}
	res.setHeader("vary", "Origin");
	res.setHeader("access-control-allow-origin", "*");
	res.setHeader("access-control-expose-headers", CORS_EXPOSED);
	return false;
}

export function createEnvdHandler(options: EnvdOptions): EnvdHandler {
	const log = options.log ?? silent;
	mkdirSync(options.root, { recursive: true });
	const root = realpathSync(options.root);
	prepareRootSync(root);
	const accessToken = options.accessToken === "" ? undefined : options.accessToken;
	const userOf = (context: HandlerContext) => rpcUser(context.requestHeader.get("authorization"));
	const env: Record<string, string> = {
		E2B_SANDBOX: "true",
		...(options.sandboxId === undefined ? {} : { E2B_SANDBOX_ID: options.sandboxId }),
		...options.env,
	};
	const processes = processService({ root, userOf, env, log });
	const shutdown = new AbortController();
	const rpc = connectNodeAdapter({
		routes: (router) => {
			router.service(Filesystem, filesystemService({ root, userOf }));
			router.service(Process, processes.service);
		},
		connect: true,
		grpcWeb: true,
		grpc: false,
		shutdownSignal: shutdown.signal,
	});
	const files = { root, accessToken };

	const serveFiles = (what: Promise<void>, res: ServerResponse) => {
		what.catch((error: unknown) => {
			if (res.headersSent) {
				res.destroy();
				return;
			}
			if (error instanceof HttpError) {
				sendEnvdError(res, error.status, error.message);
				return;
			}
			log(`envd: /files failed: ${error instanceof Error ? error.message : String(error)}`);
			sendEnvdError(res, 500, String(error));
		});
	};

	const handler = (req: IncomingMessage, res: ServerResponse) => {
		if (cors(req, res)) return;
		const path = pathOf(req);
		const method = req.method ?? "GET";
		if (accessToken !== undefined && !AUTH_EXCLUDED.has(`${method} ${path}`)) {
			const given = req.headers["x-access-token"];
			if (typeof given !== "string" || !tokenEquals(accessToken, given)) {
				sendEnvdError(
					res,
					401,
					"unauthorized access, please provide a valid access token or method signing if supported",
				);
				return;
			}
		}
		if (path === "/health") {
			if (method !== "GET") return sendEnvdError(res, 405, "method not allowed");
			res.writeHead(204, { "cache-control": "no-store" });
			res.end();
			return;
		}
		if (path === "/files") {
			if (method === "GET") return serveFiles(getFile(files, req, res), res);
			if (method === "POST") return serveFiles(postFiles(files, req, res), res);
			return sendEnvdError(res, 405, "method not allowed");
		}
		rpc(req, res);
	};

	return Object.assign(handler, {
		root,
		async close() {
			shutdown.abort();
			await processes.close();
		},
	});
}

export interface EnvdServer extends ManagedServer {
	readonly handler: EnvdHandler;
}

/** The handler on 127.0.0.1 (`port` 0: any free one); close() stops both. */
export async function startEnvdServer(options: EnvdOptions & { port?: number }): Promise<EnvdServer> {
	const handler = createEnvdHandler(options);
	let server: ManagedServer;
	try {
		server = await listen(createServer(handler), options.port ?? 0);
	} catch (error) {
		await handler.close();
		throw error;
	}
	return {
		port: server.port,
		handler,
		async close() {
			await Promise.all([server.close(), handler.close()]);
		},
	};
}
