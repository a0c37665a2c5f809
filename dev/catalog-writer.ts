// How the development control plane writes the edge's catalog, as E2B's API
// writes its routing catalog: a PUT when a sandbox starts or resumes, a
// DELETE by execution ID when it pauses or dies. A failed write is logged and
// the lifecycle goes on, as in E2B; the edge's resume path covers the gap.

import { request } from "node:http";
import { request as httpsRequest } from "node:https";
import { resolveLocalhost } from "../bridge/edge-client.ts";
import type { Log } from "./model.ts";

export interface PushedSandbox {
	sandboxId: string;
	orchestratorIp: string;
	executionId: string;
	startedAt: Date;
	maxLengthInHours: number;
	/** The team's UUID. */
	teamId: string;
	/** E2B's traffic keepalive policy, which tells the edge to call KeepAliveSandbox. */
	trafficKeepalive: boolean;
}

/** Where the registry reports sandboxes starting and stopping. */
export interface CatalogSink {
	put(sandbox: PushedSandbox): Promise<void>;
	remove(sandboxId: string, executionId: string): Promise<void>;
}

export interface CatalogWriterOptions {
	/** The catalog API's origin, e.g. http://edge.localhost:8787. */
	edgeUrl: string;
	/** CATALOG_SECRET, sent as a bearer token. */
	secret: string;
	log?: Log;
	timeoutMs?: number;
}

interface EdgeAnswer {
	status: number;
	body: string;
}

/** One call to the catalog API; never follows redirects, never logs the secret. */
function callEdge(options: CatalogWriterOptions, method: string, path: string, body?: unknown): Promise<EdgeAnswer> {
	const base = new URL(options.edgeUrl);
	const timeoutMs = options.timeoutMs ?? 5000;
	const payload = body === undefined ? undefined : JSON.stringify(body);
	const send = base.protocol === "https:" ? httpsRequest : request;
	return new Promise((resolve, reject) => {
		const req = send(
			new URL(path, base),
			{
				method,
				// Node does not resolve `*.localhost`; the Host header keeps the name.
				lookup: resolveLocalhost,
				timeout: timeoutMs,
				headers: {
					authorization: `Bearer ${options.secret}`,
					...(payload === undefined
						? {}
						: { "content-type": "application/json", "content-length": Buffer.byteLength(payload) }),
				},
			},
			(res) => {
				let text = "";
				res.setEncoding("utf8");
				res.on("data", (chunk: string) => {
					text += chunk;
				});
				res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
				res.on("error", reject);
			},
		);
		req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
		req.on("error", reject);
		req.end(payload);
	});
}

export function createCatalogWriter(options: CatalogWriterOptions): CatalogSink {
	const log = options.log ?? (() => {});

	async function write(what: string, method: string, path: string, body?: unknown): Promise<void> {
		try {
			const { status } = await callEdge(options, method, path, body);
			if (status === 204) log(`catalog ${what}`);
			else log(`catalog ${what} failed: the edge answered ${status}`);
		} catch (error) {
			log(`catalog ${what} failed: ${error instanceof Error ? error.message : String(error)}`);
		}
	}

	return {
		put: (sandbox) =>
			write(`PUT ${sandbox.sandboxId} (execution ${sandbox.executionId})`, "PUT", sandboxPath(sandbox.sandboxId), {
				orchestrator_ip: sandbox.orchestratorIp,
				execution_id: sandbox.executionId,
				// E2B stores the catalog entry for the sandbox's longest possible life.
				ttl_seconds: sandbox.maxLengthInHours * 3600,
				orchestrator_id: "dev-node",
				sandbox_started_at: sandbox.startedAt.toISOString(),
				sandbox_max_length_in_hours: sandbox.maxLengthInHours,
				team_id: sandbox.teamId,
				traffic_keepalive: sandbox.trafficKeepalive,
			}),
		remove: (sandboxId, executionId) =>
			write(
				`DELETE ${sandboxId} (execution ${executionId})`,
				"DELETE",
				`${sandboxPath(sandboxId)}?execution_id=${encodeURIComponent(executionId)}`,
			),
	};
}

/** What the edge's catalog holds for a sandbox, as the catalog API answers (for the CLI). */
export function readCatalogEntry(options: CatalogWriterOptions, sandboxId: string): Promise<EdgeAnswer> {
	return callEdge(options, "GET", sandboxPath(sandboxId));
}

function sandboxPath(sandboxId: string): string {
	return `/v1/sandboxes/${encodeURIComponent(sandboxId)}`;
}
