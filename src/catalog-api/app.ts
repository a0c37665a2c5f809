import { Hono } from "hono";
import { callCatalogObject } from "../catalog/catalog-client.ts";
import { isolateFailureCache } from "../catalog/failure-cache.ts";
import { locationCache } from "../catalog/location-cache.ts";
import type { CatalogEntry, CatalogWrite } from "../catalog/route.ts";
import { isolateRouteCache } from "../catalog/route-cache.ts";
import { type Config, configFrom } from "../config.ts";
import { ProxyError } from "../errors/proxy-error.ts";
import { renderJsonError } from "../errors/render.ts";
import { reportError } from "../errors/report.ts";
import { logEvent } from "../log.ts";
import { checkBearer } from "./auth.ts";
import { applyBatch, parseBatch } from "./batch.ts";
import { configProblemFor } from "./config-problem.ts";
import {
	checkedExecutionId,
	checkedSandboxId,
	maxBatchBodyBytes,
	maxSingleBodyBytes,
	pushedRoute,
	readJson,
} from "./input.ts";

type CatalogApiEnv = { Bindings: Env; Variables: { config: Config } };

/**
 * The catalog API on `edge.<domain>`, through which the control plane tells
 * the edge where sandboxes run: it pushes a route when a sandbox starts or
 * resumes, and deletes it (by execution) when the sandbox pauses or dies.
 * Each write lands in the sandbox's SandboxRoute object. Always JSON.
 */
export const catalogApi = new Hono<CatalogApiEnv>();

catalogApi.get("/healthz", async (c) => {
	const config = configFrom(c.env);
	if (config.catalogSecretError !== undefined) {
		reportError(config.catalogSecretError, "catalog_api_error");
		return renderJsonError(await configProblemFor(c.req.raw, c.env, config.catalogSecretError));
	}
	return c.json({ status: "ok", catalog_api: config.catalogSecret === undefined ? "off" : "on" });
});

// Only the API's own paths need credentials: any other path is a 404, with or without them.
catalogApi.use("/v1/sandboxes/:sandboxId", async (c, next) => {
	const config = configFrom(c.env);
	if (config.catalogSecretError !== undefined) throw config.catalogSecretError;
	// Off without its secret: as if there were nothing here.
	if (config.catalogSecret === undefined) throw new ProxyError("not_found");
	const check = await checkBearer(c.req.header("authorization") ?? null, config.catalogSecret);
	if (check === "missing") throw new ProxyError("catalog_unauthenticated");
	if (check === "wrong") throw new ProxyError("catalog_forbidden");
	c.set("config", config);
	await next();
});

catalogApi.post("/v1/sandboxes/batch", async (c) => {
	const batch = parseBatch(await readJson(c.req.raw, maxBatchBodyBytes));
	const results = await applyBatch(batch, (sandboxId, writes) => write(c.env, c.var.config, sandboxId, writes));
	const failed = results.filter((result) => result.status !== 204).length;
	logEvent("catalog_batch", { items: results.length, failed });
	return c.json({ results });
});

catalogApi.put("/v1/sandboxes/:sandboxId", async (c) => {
	const sandboxId = checkedSandboxId(c.req.param("sandboxId"), "sandboxId");
	const route = pushedRoute(await readJson(c.req.raw, maxSingleBodyBytes));
	await write(c.env, c.var.config, sandboxId, [{ op: "put", route }]);
	return c.body(null, 204);
});

catalogApi.delete("/v1/sandboxes/:sandboxId", async (c) => {
	const sandboxId = checkedSandboxId(c.req.param("sandboxId"), "sandboxId");
	const executionId = checkedExecutionId(c.req.query("execution_id"), "execution_id");
	await write(c.env, c.var.config, sandboxId, [{ op: "delete", executionId }]);
	return c.body(null, 204);
});

catalogApi.get("/v1/sandboxes/:sandboxId", async (c) => {
	const sandboxId = checkedSandboxId(c.req.param("sandboxId"), "sandboxId");
	const entry = await callCatalogObject(
		c.env,
		configFrom(c.env),
		sandboxId,
		(stub) => stub.describe() as Promise<CatalogEntry | null>,
	);
	if (entry === null) throw new ProxyError("route_not_found", { sandboxId });
	return c.json(describeEntry(sandboxId, entry));
});

catalogApi.all("/v1/sandboxes/:sandboxId", () => {
	throw new ProxyError("method_not_allowed");
});

catalogApi.notFound(() => renderJsonError(new ProxyError("not_found")));

catalogApi.onError((error) => {
	const proxyError = reportError(error, "catalog_api_error");
	const headers: Record<string, string> = {};
	if (proxyError.code === "catalog_unauthenticated") headers["www-authenticate"] = 'Bearer realm="catalog"';
	if (proxyError.code === "method_not_allowed") headers.allow = "GET, PUT, DELETE";
	return renderJsonError(proxyError, headers);
});

/** Stores the writes in the sandbox's object, and drops this isolate's and this location's copies at once. */
async function write(env: Env, config: Config, sandboxId: string, writes: CatalogWrite[]): Promise<void> {
	await callCatalogObject(env, config, sandboxId, (stub) => stub.write(sandboxId, writes));
	isolateRouteCache(config).delete(sandboxId);
	isolateFailureCache(config).delete(sandboxId);
	await locationCache(config).delete(sandboxId);
}

/** A stored route in the API's field names, which are E2B's SandboxInfo names. */
function describeEntry(sandboxId: string, entry: CatalogEntry): Record<string, unknown> {
	const { details } = entry;
	return {
		sandbox_id: sandboxId,
		orchestrator_ip: entry.nodeIp,
		...(entry.executionId === undefined ? {} : { execution_id: entry.executionId }),
		expires_at: new Date(entry.expiresAt).toISOString(),
		source: entry.source,
		...(details.orchestratorId === undefined ? {} : { orchestrator_id: details.orchestratorId }),
		...(details.sandboxStartedAt === undefined ? {} : { sandbox_started_at: details.sandboxStartedAt }),
		...(details.sandboxEndTime === undefined ? {} : { sandbox_end_time: details.sandboxEndTime }),
		...(details.sandboxMaxLengthInHours === undefined
			? {}
			: { sandbox_max_length_in_hours: details.sandboxMaxLengthInHours }),
		...(details.teamId === undefined ? {} : { team_id: details.teamId }),
		...(details.trafficKeepalive === undefined ? {} : { traffic_keepalive: details.trafficKeepalive }),
	};
}
