import {
	createExecutionContext,
	evictDurableObject,
	runInDurableObject,
	waitOnExecutionContext,
} from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { RouteStore } from "../../src/catalog/route-store.ts";
import worker from "../../src/index.ts";

// The unit project's CATALOG_SECRET; CONTROL_PLANE_URL points where nothing
// listens, so any resume fails at once as "temporarily unavailable".
const catalogSecret = "unit-test-catalog-secret";
const auth = { authorization: `Bearer ${catalogSecret}` };
const edge = "http://edge.localhost";
// No server binds 127.0.0.2: a pushed route to it has no node behind it.
const deadNodeIp = "127.0.0.2";

let counter = 0;
function freshSandboxId(label: string): string {
	counter += 1;
	return `api${label}${counter}${Date.now().toString(36)}`;
}

function call(path: string, init: RequestInit & { headers?: Record<string, string> } = {}): Promise<Response> {
	return exports.default.fetch(new Request(`${edge}${path}`, { ...init, headers: { ...auth, ...init.headers } }));
}

function put(sandboxId: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
	return call(`/v1/sandboxes/${sandboxId}`, {
		method: "PUT",
		headers: { "content-type": "application/json", ...headers },
		body: typeof body === "string" ? body : JSON.stringify(body),
	});
}

function route(overrides: Record<string, unknown> = {}): Record<string, unknown> {
	return { orchestrator_ip: "10.0.0.5", execution_id: "exec-1", ttl_seconds: 3600, ...overrides };
}

interface ErrorJson {
	sandboxId: string;
	message: string;
	code: number;
	reason: string;
}

async function errorOf(response: Response): Promise<ErrorJson> {
	expect(response.headers.get("content-type")).toBe("application/json; charset=utf-8");
	const body = (await response.json()) as ErrorJson;
	expect(body.code).toBe(response.status);
	return body;
}

async function stored(sandboxId: string): Promise<Record<string, unknown> | null> {
	const response = await call(`/v1/sandboxes/${sandboxId}`);
	if (response.status === 404) {
		expect((await errorOf(response)).reason).toBe("route_not_found");
		return null;
	}
	expect(response.status).toBe(200);
	return (await response.json()) as Record<string, unknown>;
}

describe("catalog API: the host and its paths", () => {
	it("answers /healthz without credentials", async () => {
		const response = await exports.default.fetch(new Request(`${edge}/healthz`));
		expect(response.status).toBe(200);
		expect(await response.json()).toEqual({ status: "ok", catalog_api: "on" });
	});

	it.each(["EDGE.localhost", "edge.localhost:8787", "edge.localhost."])("is served on the host %s", async (host) => {
		const response = await exports.default.fetch(new Request(`${edge}/healthz`, { headers: { host } }));
		expect(response.status).toBe(200);
	});

	it("is not a sandbox: a sandbox named edge has its own host", async () => {
		const response = await exports.default.fetch(
			new Request("http://3000-edge.localhost/healthz", { headers: { accept: "application/json" } }),
		);
		// Routed to the sandbox "edge", whose resume fails here: not the API's answer.
		expect(response.status).toBe(503);
		expect((await errorOf(response)).reason).toBe("control_plane_unavailable");
	});

	it.each(["/", "/v1", "/v1/sandboxes", "/v2/sandboxes/abc", "/v1/sandboxes/abc/extra", "/healthz/x"])(
		"answers the unknown path %s with 404, with or without credentials",
		async (path) => {
			for (const headers of [{}, auth]) {
				const response = await exports.default.fetch(new Request(`${edge}${path}`, { headers }));
				expect(response.status).toBe(404);
				expect((await errorOf(response)).reason).toBe("not_found");
			}
		},
	);

	it("answers another method on a sandbox path with 405 and Allow", async () => {
		const response = await call(`/v1/sandboxes/${freshSandboxId("method")}`, { method: "PATCH" });
		expect(response.status).toBe(405);
		expect(response.headers.get("allow")).toBe("GET, PUT, DELETE");
	});
});

describe("catalog API: credentials", () => {
	const path = () => `/v1/sandboxes/${freshSandboxId("auth")}`;

	it.each([
		["no Authorization header", {}],
		["another scheme", { authorization: `Basic ${btoa(`x:${catalogSecret}`)}` }],
		["a bare token", { authorization: catalogSecret }],
		["an empty bearer", { authorization: "Bearer " }],
	])("answers %s with 401 and a Bearer challenge", async (_label, headers) => {
		const response = await exports.default.fetch(new Request(`${edge}${path()}`, { headers }));
		expect(response.status).toBe(401);
		expect(response.headers.get("www-authenticate")).toBe('Bearer realm="catalog"');
		expect((await errorOf(response)).reason).toBe("catalog_unauthenticated");
	});

	it.each([
		["a wrong token", "Bearer not-the-catalog-secret"],
		["a prefix of the token", `Bearer ${catalogSecret.slice(0, -1)}`],
		["the token with more after it", `Bearer ${catalogSecret}x`],
		["the API secret", "Bearer unit-test-secret"],
	])("answers %s with 403, and stores nothing", async (_label, authorization) => {
		const sandboxId = freshSandboxId("forbidden");
		const response = await put(sandboxId, route(), { authorization });
		expect(response.status).toBe(403);
		const body = await errorOf(response);
		expect(body.reason).toBe("catalog_forbidden");
		expect(JSON.stringify(body)).not.toContain(catalogSecret);
		expect(await stored(sandboxId)).toBeNull();
	});

	it("takes the scheme in any case", async () => {
		const sandboxId = freshSandboxId("scheme");
		expect((await put(sandboxId, route(), { authorization: `bearer ${catalogSecret}` })).status).toBe(204);
	});

	it("is off without CATALOG_SECRET: 404 for everything but /healthz", async () => {
		const { CATALOG_SECRET: _unset, ...withoutSecret } = env;
		const fetchWithout = async (path: string, init: RequestInit = {}) => {
			const ctx = createExecutionContext();
			const response = await worker.fetch(new Request(`${edge}${path}`, init), withoutSecret as Env, ctx);
			await waitOnExecutionContext(ctx);
			return response;
		};
		const health = await fetchWithout("/healthz");
		expect(health.status).toBe(200);
		expect(await health.json()).toEqual({ status: "ok", catalog_api: "off" });
		const sandboxId = freshSandboxId("off");
		const response = await fetchWithout(`/v1/sandboxes/${sandboxId}`, {
			method: "PUT",
			headers: auth,
			body: JSON.stringify(route()),
		});
		expect(response.status).toBe(404);
		expect(await stored(sandboxId)).toBeNull();
	});

	it("is a 503 when CATALOG_SECRET equals API_SECRET, naming it only on /healthz to the secret's holder and never echoing either; sandboxes are still served", async () => {
		const shared = "shared-secret-for-both-1234";
		const misconfigured = { ...env, API_SECRET: shared, CATALOG_SECRET: shared } as Env;
		const fetchWith = async (url: string, headers: Record<string, string>) => {
			const ctx = createExecutionContext();
			const response = await worker.fetch(new Request(url, { headers }), misconfigured, ctx);
			await waitOnExecutionContext(ctx);
			return response;
		};
		for (const path of ["/v1/sandboxes/abc", "/healthz"]) {
			const response = await fetchWith(`${edge}${path}`, { authorization: `Bearer ${shared}` });
			expect(response.status).toBe(503);
			const body = await errorOf(response);
			expect(body.reason).toBe("proxy_misconfigured");
			if (path === "/healthz") expect(body.message).toContain("CATALOG_SECRET");
			else expect(body.message).not.toContain("CATALOG_SECRET");
			expect(JSON.stringify(body)).not.toContain(shared);
		}
		// A sandbox's traffic does not need the catalog API's secret: it goes on
		// to its lookup (whose control plane is unreachable here).
		const sandbox = await fetchWith(`http://3000-${freshSandboxId("stillserved")}.localhost/`, {
			accept: "application/json",
		});
		expect(sandbox.status).toBe(503);
		expect((await errorOf(sandbox)).reason).toBe("control_plane_unavailable");
	});
});

describe("catalog API: PUT and GET", () => {
	it("stores a pushed route with every field, and describes it", async () => {
		const sandboxId = freshSandboxId("put");
		const before = Date.now();
		const response = await put(
			sandboxId,
			route({
				orchestrator_id: "node-a",
				sandbox_started_at: "2026-11-29T03:55:00.123456789Z",
				sandbox_end_time: "2026-11-30T03:55:00Z",
				sandbox_max_length_in_hours: 24,
				team_id: "team-1",
				traffic_keepalive: true,
			}),
		);
		expect(response.status).toBe(204);
		expect(await response.text()).toBe("");

		const described = await stored(sandboxId);
		expect(described).toEqual({
			sandbox_id: sandboxId,
			orchestrator_ip: "10.0.0.5",
			execution_id: "exec-1",
			expires_at: expect.any(String),
			source: "push",
			orchestrator_id: "node-a",
			sandbox_started_at: "2026-11-29T03:55:00.123456789Z",
			sandbox_end_time: "2026-11-30T03:55:00Z",
			sandbox_max_length_in_hours: 24,
			team_id: "team-1",
			traffic_keepalive: true,
		});
		const expiresAt = Date.parse(String(described?.expires_at));
		expect(expiresAt).toBeGreaterThanOrEqual(before + 3_600_000 - 1000);
		expect(expiresAt).toBeLessThanOrEqual(Date.now() + 3_600_000 + 1000);
	});

	it("replaces whatever was stored, whatever its execution", async () => {
		const sandboxId = freshSandboxId("replace");
		expect((await put(sandboxId, route())).status).toBe(204);
		expect((await put(sandboxId, route({ orchestrator_ip: "fd00::7", execution_id: "exec-0" }))).status).toBe(204);
		expect(await stored(sandboxId)).toMatchObject({ orchestrator_ip: "fd00::7", execution_id: "exec-0" });
	});

	it("routes the sandbox's traffic to the pushed node without asking the control plane", async () => {
		const sandboxId = freshSandboxId("routed");
		expect((await put(sandboxId, route({ orchestrator_ip: deadNodeIp }))).status).toBe(204);
		const response = await exports.default.fetch(
			new Request(`http://3000-${sandboxId}.localhost/`, { headers: { accept: "application/json" } }),
		);
		// The pushed node is tried (and is not there); a resume would have been a 503 instead.
		expect(response.status).toBe(502);
		expect((await errorOf(response)).reason).toBe("node_unreachable");
	});

	it("takes a ttl_seconds of up to 366 days, and refuses more", async () => {
		const sandboxId = freshSandboxId("longttl");
		const longest = 366 * 24 * 3600;
		expect((await put(sandboxId, route({ ttl_seconds: longest + 1 }))).status).toBe(400);
		expect(await stored(sandboxId)).toBeNull();
		expect((await put(sandboxId, route({ ttl_seconds: longest }))).status).toBe(204);
		expect(Date.parse(String((await stored(sandboxId))?.expires_at))).toBeGreaterThan(Date.now() + 365 * 86_400_000);
	});

	it("does not serve a pushed route past its ttl_seconds", async () => {
		const sandboxId = freshSandboxId("expired");
		expect((await put(sandboxId, route())).status).toBe(204);
		// Age the stored route past its expiry, as time would.
		const stub = env.SANDBOX_ROUTE.getByName(sandboxId);
		await runInDurableObject(stub, (_instance, state) => {
			const store = new RouteStore(state.storage.sql);
			const entry = store.current(0);
			if (entry === null) throw new Error("no route stored");
			store.save(sandboxId, { ...entry, expiresAt: Date.now() - 1 });
		});
		await evictDurableObject(stub);
		expect(await stored(sandboxId)).toBeNull();
	});

	it.each([
		["a missing orchestrator_ip", { orchestrator_ip: undefined }, "orchestrator_ip: is required"],
		["a host name for orchestrator_ip", { orchestrator_ip: "node.example.com" }, "orchestrator_ip:"],
		["an IP with a port", { orchestrator_ip: "10.0.0.5:5007" }, "orchestrator_ip:"],
		["an IP with a path", { orchestrator_ip: "10.0.0.5/x" }, "orchestrator_ip:"],
		["an octet over 255", { orchestrator_ip: "10.0.0.256" }, "orchestrator_ip:"],
		["a number for orchestrator_ip", { orchestrator_ip: 167772165 }, "orchestrator_ip:"],
		["a missing execution_id", { execution_id: undefined }, "execution_id: is required"],
		["an empty execution_id", { execution_id: "" }, "execution_id:"],
		["an execution_id with spaces", { execution_id: "a b" }, "execution_id:"],
		["an overlong execution_id", { execution_id: "e".repeat(129) }, "execution_id:"],
		["a missing ttl_seconds", { ttl_seconds: undefined }, "ttl_seconds: is required"],
		["a zero ttl_seconds", { ttl_seconds: 0 }, "ttl_seconds:"],
		["a fractional ttl_seconds", { ttl_seconds: 1.5 }, "ttl_seconds:"],
		["a string ttl_seconds", { ttl_seconds: "60" }, "ttl_seconds:"],
		["an enormous ttl_seconds", { ttl_seconds: 1e12 }, "ttl_seconds:"],
		["a bad sandbox_started_at", { sandbox_started_at: "yesterday" }, "sandbox_started_at:"],
		["a negative sandbox_max_length_in_hours", { sandbox_max_length_in_hours: -1 }, "sandbox_max_length_in_hours:"],
		["a string traffic_keepalive", { traffic_keepalive: "true" }, "traffic_keepalive:"],
		["a number team_id", { team_id: 7 }, "team_id:"],
		["an unknown field", { orchestratorIp: "10.0.0.5" }, "orchestratorIp: is not a known field"],
	])("refuses %s with a 400 naming the field, and stores nothing", async (_label, overrides, message) => {
		const sandboxId = freshSandboxId("bad");
		const response = await put(sandboxId, route(overrides));
		expect(response.status).toBe(400);
		const body = await errorOf(response);
		expect(body.reason).toBe("invalid_request");
		expect(body.message.startsWith(message)).toBe(true);
		expect(await stored(sandboxId)).toBeNull();
	});

	it.each([
		["malformed JSON", "{", "body: is not valid JSON"],
		["an empty body", "", "body: is required"],
		["a JSON array", "[]", "body: must be a JSON object"],
		["JSON null", "null", "body: must be a JSON object"],
		["a body over 16 KiB", JSON.stringify(route({ pad: "x".repeat(17_000) })), "body: must be at most 16384 bytes"],
	])("refuses %s with a 400, and stores nothing", async (_label, body, message) => {
		const sandboxId = freshSandboxId("badbody");
		const response = await put(sandboxId, body);
		expect(response.status).toBe(400);
		expect((await errorOf(response)).message).toBe(message);
		expect(await stored(sandboxId)).toBeNull();
	});

	it.each(["ABC", "a-b", "a_b", "x".repeat(64), "%E2%9C%93"])(
		"refuses the sandbox ID %s with a 400 naming it",
		async (sandboxId) => {
			const response = await put(sandboxId, route());
			expect(response.status).toBe(400);
			expect((await errorOf(response)).message.startsWith("sandboxId:")).toBe(true);
		},
	);
});

describe("catalog API: DELETE", () => {
	const remove = (sandboxId: string, query: string) => call(`/v1/sandboxes/${sandboxId}${query}`, { method: "DELETE" });

	it("removes a pushed route only for its own execution", async () => {
		const sandboxId = freshSandboxId("delete");
		expect((await put(sandboxId, route({ execution_id: "exec-2" }))).status).toBe(204);
		// A late delete for an older execution leaves the newer route alone.
		expect((await remove(sandboxId, "?execution_id=exec-1")).status).toBe(204);
		expect(await stored(sandboxId)).toMatchObject({ execution_id: "exec-2" });
		expect((await remove(sandboxId, "?execution_id=exec-2")).status).toBe(204);
		expect(await stored(sandboxId)).toBeNull();
		// Deleting what is not there is still a 204.
		expect((await remove(sandboxId, "?execution_id=exec-2")).status).toBe(204);
	});

	it("removes a route learned from a resume, whatever execution it names", async () => {
		const sandboxId = freshSandboxId("learned");
		const stub = env.SANDBOX_ROUTE.getByName(sandboxId);
		const now = Date.now();
		await runInDurableObject(stub, (_instance, state) => {
			new RouteStore(state.storage.sql).save(sandboxId, {
				nodeIp: "10.0.0.9",
				learnedAt: now,
				expiresAt: now + 60_000,
				source: "resume",
				details: {},
			});
		});
		// The next call wakes a new instance, which reads the route from storage.
		await evictDurableObject(stub);
		const learned = await stored(sandboxId);
		expect(learned).toMatchObject({ source: "resume", orchestrator_ip: "10.0.0.9" });
		expect(learned).not.toHaveProperty("execution_id");
		expect((await remove(sandboxId, "?execution_id=anything")).status).toBe(204);
		expect(await stored(sandboxId)).toBeNull();
	});

	it.each([
		["no execution_id", "", "execution_id: is required"],
		["an empty execution_id", "?execution_id=", "execution_id:"],
	])("refuses %s with a 400, and removes nothing", async (_label, query, message) => {
		const sandboxId = freshSandboxId("nodelete");
		expect((await put(sandboxId, route())).status).toBe(204);
		const response = await remove(sandboxId, query);
		expect(response.status).toBe(400);
		expect((await errorOf(response)).message.startsWith(message)).toBe(true);
		expect(await stored(sandboxId)).not.toBeNull();
	});
});

describe("catalog API: batch", () => {
	const batch = (body: unknown) =>
		call("/v1/sandboxes/batch", {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: typeof body === "string" ? body : JSON.stringify(body),
		});

	it("applies puts and deletes and answers each as its single call would, puts first", async () => {
		const [a, b, c] = [freshSandboxId("ba"), freshSandboxId("bb"), freshSandboxId("bc")];
		expect((await put(c, route({ execution_id: "old" }))).status).toBe(204);
		const response = await batch({
			put: [
				{ sandbox_id: a, ...route() },
				{ sandbox_id: "NOT-AN-ID", ...route() },
				{ sandbox_id: b, ...route({ orchestrator_ip: "nope" }) },
				{ sandbox_id: b, ...route({ orchestrator_ip: "10.0.0.6", execution_id: "exec-b" }) },
			],
			delete: [{ sandbox_id: c, execution_id: "old" }, { sandbox_id: a, execution_id: "another" }, { sandbox_id: a }],
		});
		expect(response.status).toBe(200);
		const { results } = (await response.json()) as { results: Record<string, unknown>[] };
		expect(results.map((r) => [r.sandbox_id, r.op, r.status])).toEqual([
			[a, "put", 204],
			["NOT-AN-ID", "put", 400],
			[b, "put", 400],
			[b, "put", 204],
			[c, "delete", 204],
			[a, "delete", 204],
			[a, "delete", 400],
		]);
		expect(results[1]?.message).toMatch(/^put\[1\]\.sandbox_id:/);
		expect(results[2]?.message).toMatch(/^put\[2\]\.orchestrator_ip:/);
		expect(results[6]?.message).toBe("delete[2].execution_id: is required");
		expect(await stored(a)).toMatchObject({ orchestrator_ip: "10.0.0.5", execution_id: "exec-1" });
		expect(await stored(b)).toMatchObject({ orchestrator_ip: "10.0.0.6", execution_id: "exec-b" });
		expect(await stored(c)).toBeNull();
	});

	// A thousand new objects, each a new SQLite database in the local runtime: seconds, not milliseconds.
	it("takes 1,000 items and refuses 1,001, storing nothing", { timeout: 60_000 }, async () => {
		const ids = Array.from({ length: 1001 }, () => freshSandboxId("many"));
		const tooMany = await batch({
			put: ids.slice(0, 600).map((id) => ({ sandbox_id: id, ...route() })),
			delete: ids.slice(600).map((id) => ({ sandbox_id: id, execution_id: "x" })),
		});
		expect(tooMany.status).toBe(400);
		expect((await errorOf(tooMany)).message).toBe("put, delete: hold 1001 items; at most 1000 in all");
		expect(await stored(ids[0] ?? "")).toBeNull();

		const enough = await batch({ put: ids.slice(0, 1000).map((id) => ({ sandbox_id: id, ...route() })) });
		expect(enough.status).toBe(200);
		const { results } = (await enough.json()) as { results: { status: number }[] };
		expect(results).toHaveLength(1000);
		expect(results.every((r) => r.status === 204)).toBe(true);
		expect(await stored(ids[999] ?? "")).toMatchObject({ source: "push" });
	});

	it.each([
		["malformed JSON", "{]", "body: is not valid JSON"],
		["put that is not a list", { put: { sandbox_id: "a" } }, "put: must be a list"],
		["an unknown field", { puts: [] }, "puts: is not a known field"],
		[
			"a body over 1 MiB",
			{ put: [{ sandbox_id: "a", pad: "x".repeat(1_100_000) }] },
			"body: must be at most 1048576 bytes",
		],
	])("refuses %s as a whole, with a 400", async (_label, body, message) => {
		const response = await batch(body);
		expect(response.status).toBe(400);
		expect((await errorOf(response)).message).toBe(message);
	});
});
