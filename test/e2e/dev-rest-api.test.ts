import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AdminClient, createAdminClient } from "../../dev/admin-client.ts";
import type { SandboxView } from "../../dev/model.ts";
import { DEFAULT_REST_API_KEY, ENVD_VERSION } from "../../dev/rest-api.ts";
import { outcomeOf, sandboxServiceClient } from "../../dev/rpc-client.ts";
import { type Stack, startStack } from "../../dev/stack.ts";
import { type CatalogRecorder, startCatalogRecorder } from "./catalog-recorder.ts";
import { apiSecret, freshId } from "./fixture.ts";
import { fetchVia } from "./http-client.ts";
import { until } from "./until.ts";

// E2B's REST API on the development control plane, as the e2b SDK (2.51.0)
// calls it: plain HTTP here, checked against the registry, the catalog writes
// and the node, which the admin API and the RPCs share.

let stack: Stack;
let admin: AdminClient;
let catalog: CatalogRecorder;

const writesFor = (id: string) => catalog.writes.filter((write) => write.sandboxId === id);

beforeAll(async () => {
	stack = await startStack({
		apiSecret,
		controlPlanePort: 0,
		nodePort: 0,
		resumeDelayMs: 20,
		pauseDelayMs: 20,
		transitionWaitMs: 2000,
	});
	admin = createAdminClient(stack.controlPlaneUrl);
	catalog = await startCatalogRecorder();
	stack.connectCatalog({ edgeUrl: catalog.url, secret: "s" });
});
afterAll(async () => {
	await stack?.close();
	await catalog?.close();
});

interface Answer {
	status: number;
	headers: Headers;
	// biome-ignore lint/suspicious/noExplicitAny: E2B's JSON, read field by field
	json: any;
	text: string;
}

/** A request as the SDK sends it: X-API-Key, and JSON bodies. */
async function call(
	method: string,
	path: string,
	body?: unknown,
	headers: Record<string, string> = { "x-api-key": DEFAULT_REST_API_KEY },
	base = stack.controlPlaneUrl,
): Promise<Answer> {
	const response = await fetch(`${base}${path}`, {
		method,
		headers: { ...headers, ...(body === undefined ? {} : { "content-type": "application/json" }) },
		...(body === undefined ? {} : { body: JSON.stringify(body) }),
	});
	const text = await response.text();
	let json: unknown;
	try {
		json = text === "" ? undefined : JSON.parse(text);
	} catch {
		json = undefined;
	}
	return { status: response.status, headers: response.headers, json, text };
}

async function view(id: string): Promise<SandboxView> {
	return admin.get(id);
}

/** What E2B's API answers for a sandbox it does not have. */
const notFound = (id: string) => ({
	code: 404,
	message: `Sandbox "${id}" doesn't exist or you don't have access to it`,
});

async function create(body: Record<string, unknown> = {}, version = "/v2"): Promise<string> {
	const answer = await call("POST", `${version}/sandboxes`, { templateID: "base", ...body });
	expect(answer.status, answer.text).toBe(201);
	return answer.json.sandboxID as string;
}

/** GET (of / by default) on the sandbox's port 3000, through the dev node as the edge would reach it. */
async function throughNode(id: string, headers: Record<string, string> = {}, path = "/") {
	const node = new URL(`http://127.0.0.1:${stack.nodePort}`);
	// The node routes on these headers only where the Host cannot name a sandbox, as an IP cannot.
	return fetchVia(node, node.host, path, {
		headers: { "e2b-sandbox-id": id, "e2b-sandbox-port": "3000", ...headers },
	});
}

describe("create (POST /v2/sandboxes and POST /sandboxes)", () => {
	it("starts a running demo sandbox, pushes its catalog entry, and answers E2B's Sandbox", async () => {
		const answer = await call("POST", "/v2/sandboxes", {
			templateID: "base",
			timeout: 120,
			metadata: { owner: "rest-test" },
			envVars: { A: "1" },
		});
		expect(answer.status).toBe(201);
		const id = answer.json.sandboxID;
		const sandbox = await view(id);
		expect(answer.json).toEqual({
			alias: "base",
			clientID: "6532622b",
			envdAccessToken: sandbox.envdAccessToken,
			envdVersion: ENVD_VERSION,
			sandboxID: id,
			templateID: "base",
		});
		// v2 is always secure; public by default; E2B's defaults: no auto-resume, killed at its timeout.
		expect(sandbox).toMatchObject({
			state: "running",
			secure: true,
			public: true,
			autoResume: false,
			onTimeout: "kill",
			timeoutMs: 120_000,
			templateId: "base",
			metadata: { owner: "rest-test" },
			teamId: stack.controlPlane.sandboxes.teamId,
		});
		expect(sandbox.envdAccessToken).toEqual(expect.any(String));
		expect(sandbox.endTime).toBe((sandbox.startedAt ?? 0) + 120_000);
		expect(writesFor(id)).toMatchObject([{ method: "PUT", sandboxId: id }]);
		expect((await throughNode(id)).status).toBe(200);
	});

	it("maps lifecycle, auto-resume and allowPublicTraffic onto the registry; a private sandbox's answer has its traffic token", async () => {
		const answer = await call("POST", "/v2/sandboxes", {
			templateID: "my-template",
			autoPause: true,
			autoResume: { enabled: true },
			allow_internet_access: false,
			network: { allowPublicTraffic: false },
		});
		expect(answer.status).toBe(201);
		const sandbox = await view(answer.json.sandboxID);
		expect(sandbox).toMatchObject({
			public: false,
			secure: true,
			autoResume: true,
			onTimeout: "pause",
			timeoutMs: 300_000,
			allowInternetAccess: false,
		});
		expect(answer.json.trafficAccessToken).toBe(sandbox.trafficAccessToken);
		expect(answer.json.envdAccessToken).toBe(sandbox.envdAccessToken);
		expect(answer.json).toMatchObject({ templateID: "my-template", alias: "my-template" });
		// The node guards it with that token.
		expect((await throughNode(sandbox.id)).status).toBe(403);
		const traffic = { "e2b-traffic-access-token": sandbox.trafficAccessToken ?? "" };
		expect((await throughNode(sandbox.id, traffic)).status).toBe(200);
	});

	it("keeps network.maskRequestHost: the node gives the app it as Host, with the port filled in, and get shows it", async () => {
		const mask = `app.internal:\${PORT}`;
		const id = await create({ network: { maskRequestHost: mask } });
		expect((await view(id)).maskRequestHost).toBe(mask);
		const seen = (await throughNode(id, {}, "/headers")).json<Record<string, string>>();
		expect(seen.host).toBe("app.internal:3000");
		expect(seen["x-forwarded-host"]).toBe(`127.0.0.1:${stack.nodePort}`);
		const detail = await call("GET", `/sandboxes/${id}`);
		expect(detail.json.network).toEqual({ maskRequestHost: mask });
	});

	it("v1 is secure only when asked and defaults to 15 s; private needs secure, in E2B's words", async () => {
		const plain = await view(await create({}, ""));
		expect(plain).toMatchObject({ secure: false, timeoutMs: 15_000 });
		expect((await view(await create({ secure: true }, ""))).secure).toBe(true);
		const refused = await call("POST", "/sandboxes", { templateID: "base", network: { allowPublicTraffic: false } });
		expect(refused.json).toEqual({
			code: 400,
			message:
				"You cannot create a sandbox without public access unless you enable secure envd access via 'secure' flag.",
		});
	});

	it("refuses bodies and timeouts as E2B's API does", async () => {
		const before = stack.controlPlane.sandboxes.list().length;
		const refusals: [unknown, number, string | RegExp][] = [
			[{}, 400, /templateID/],
			[{ templateID: 7 }, 400, /templateID/],
			[{ templateID: "base", timeout: 0 }, 400, "Timeout must be greater than 0"],
			[{ templateID: "base", timeout: 3601 }, 400, "Timeout cannot be greater than 1 hours"],
			[{ templateID: "base", timeout: -1 }, 400, /timeout/],
			[{ templateID: "base", timeout: 1.5 }, 400, /timeout/],
			[
				{ templateID: "base", autoPauseMemory: false },
				400,
				"autoPauseMemory=false only applies when autoPause is true.",
			],
			[{ templateID: "base", metadata: { a: 1 } }, 400, /metadata/],
			[{ templateID: "base", autoResume: { enabled: "yes" } }, 400, /autoResume/],
			[{ templateID: "base", volumeMounts: [{ name: "v", path: "/v" }] }, 400, "Volume mounts are not enabled."],
			[{ templateID: "base", network: { allowOut: ["1.1.1.1"] } }, 400, /network\.allowOut/],
			[{ templateID: "base", network: { maskRequestHost: 7 } }, 400, /network\/maskRequestHost/],
			// E2B's validateNetworkConfig: the host part must pass IDNA's display profile, and be ASCII.
			[
				{ templateID: "base", network: { maskRequestHost: `app_1.internal:\${PORT}` } },
				400,
				`mask request host is not valid: app_1.internal:\${PORT}`,
			],
			[{ templateID: "base", network: { maskRequestHost: "a:b:c" } }, 400, "mask request host is not valid: a:b:c"],
			[
				{ templateID: "base", network: { maskRequestHost: "bücher.example" } },
				400,
				"mask request host 'bücher.example' is not ASCII. Please use ASCII characters only.",
			],
		];
		for (const [body, status, message] of refusals) {
			const answer = await call("POST", "/v2/sandboxes", body);
			expect(answer.status, JSON.stringify(body)).toBe(status);
			expect(answer.json.code).toBe(status);
			expect(answer.json.message).toMatch(message);
		}
		const notJson = await fetch(`${stack.controlPlaneUrl}/v2/sandboxes`, {
			method: "POST",
			headers: { "x-api-key": DEFAULT_REST_API_KEY, "content-type": "application/json" },
			body: "{not json",
		});
		expect(notJson.status).toBe(400);
		expect(stack.controlPlane.sandboxes.list()).toHaveLength(before);
	});
});

describe("get (GET /sandboxes/{sandboxID})", () => {
	it("answers E2B's SandboxDetail, for its ID or its legacy <id>-<client ID> form", async () => {
		const id = await create({ timeout: 60, metadata: { k: "v" }, autoPause: true, autoResume: { enabled: true } });
		const sandbox = await view(id);
		for (const asked of [id, `${id}-6532622b`]) {
			const answer = await call("GET", `/sandboxes/${asked}`);
			expect(answer.status).toBe(200);
			expect(answer.json).toEqual({
				alias: "base",
				clientID: "6532622b",
				cpuCount: expect.any(Number),
				diskSizeMB: expect.any(Number),
				endAt: new Date(sandbox.endTime ?? 0).toISOString(),
				envdAccessToken: sandbox.envdAccessToken,
				envdVersion: ENVD_VERSION,
				lifecycle: { autoResume: true, onTimeout: "pause" },
				memoryMB: expect.any(Number),
				metadata: { k: "v" },
				sandboxID: id,
				startedAt: new Date(sandbox.startedAt ?? 0).toISOString(),
				state: "running",
				templateID: "base",
				volumeMounts: [],
			});
		}
	});

	it("says paused for a pausing or paused sandbox, ending when it paused", async () => {
		const id = await create({ autoPause: true });
		await admin.pause(id);
		const answer = await call("GET", `/sandboxes/${id}`);
		expect(answer.json).toMatchObject({
			state: "paused",
			endAt: new Date((await view(id)).pausedAt ?? 0).toISOString(),
		});
	});

	it("404s with E2B's message for unknown, killed and other teams' sandboxes; 400 for a malformed ID", async () => {
		expect((await call("GET", "/sandboxes/nosuchsandbox")).json).toEqual(notFound("nosuchsandbox"));
		const killed = await create();
		expect((await call("DELETE", `/sandboxes/${killed}`)).status).toBe(204);
		expect((await call("GET", `/sandboxes/${killed}`)).json).toEqual(notFound(killed));
		const other = freshId("team");
		await admin.create({ id: other, teamId: "a1b2c3d4-0000-4000-8000-000000000001" });
		expect((await call("GET", `/sandboxes/${other}`)).json).toEqual(notFound(other));
		expect((await call("GET", "/sandboxes/Not-An-Id")).json).toEqual({ code: 400, message: "Invalid sandbox ID" });
	});
});

describe("list (GET /v2/sandboxes and GET /sandboxes)", () => {
	it("lists the team's running and paused sandboxes, with E2B's filters and X-Total-Running", async () => {
		const tag = freshId("list");
		const running = await create({ metadata: { tag } });
		const paused = await create({ metadata: { tag }, autoPause: true });
		await call("POST", `/sandboxes/${paused}/pause`, {});
		const killed = await create({ metadata: { tag } });
		await call("DELETE", `/sandboxes/${killed}`);
		const other = freshId("team");
		await admin.create({ id: other, teamId: "a1b2c3d4-0000-4000-8000-000000000002" });

		const mine = `metadata=${encodeURIComponent(`tag=${tag}`)}`;
		const all = await call("GET", `/v2/sandboxes?${mine}`);
		expect(all.status).toBe(200);
		expect(all.json.map((s: { sandboxID: string; state: string }) => [s.sandboxID, s.state])).toEqual([
			[paused, "paused"],
			[running, "running"],
		]);
		expect(all.headers.get("x-total-running")).toBe("1");
		expect(all.headers.get("x-next-token")).toBeNull();
		expect(all.json[1]).toMatchObject({ clientID: "6532622b", envdVersion: ENVD_VERSION, metadata: { tag } });

		const onlyPaused = await call("GET", `/v2/sandboxes?${mine}&state=paused`);
		expect(onlyPaused.json.map((s: { sandboxID: string }) => s.sandboxID)).toEqual([paused]);
		expect(onlyPaused.headers.get("x-total-running")).toBeNull();
		const ascending = await call("GET", `/v2/sandboxes?${mine}&order=asc`);
		expect(ascending.json.map((s: { sandboxID: string }) => s.sandboxID)).toEqual([running, paused]);

		const everything = (await call("GET", "/v2/sandboxes")).json.map((s: { sandboxID: string }) => s.sandboxID);
		expect(everything).not.toContain(killed);
		expect(everything).not.toContain(other);

		// v1: running ones only.
		const v1 = await call("GET", `/sandboxes?${mine}`);
		expect(v1.json.map((s: { sandboxID: string }) => s.sandboxID)).toEqual([running]);
	});

	it("pages with limit and E2B's X-Next-Token cursor", async () => {
		const tag = freshId("page");
		const ids: string[] = [];
		for (let i = 0; i < 3; i++) ids.push(await create({ metadata: { tag } }));
		const seen: string[] = [];
		const sizes: number[] = [];
		let token: string | null = null;
		let pages = 0;
		do {
			const answer: Answer = await call(
				"GET",
				`/v2/sandboxes?metadata=${encodeURIComponent(`tag=${tag}`)}&limit=2${token === null ? "" : `&nextToken=${token}`}`,
			);
			expect(answer.status).toBe(200);
			seen.push(...answer.json.map((s: { sandboxID: string }) => s.sandboxID));
			sizes.push(answer.json.length);
			token = answer.headers.get("x-next-token");
			if (token !== null) {
				expect(Buffer.from(token, "base64url").toString()).toMatch(/^\d{4}-\d\d-\d\dT[^_]+__[a-z0-9]+$/);
			}
			pages++;
		} while (token !== null && pages < 5);
		expect(sizes).toEqual([2, 1]);
		// Newest first, ties by ID, as E2B orders them.
		const views = await Promise.all(ids.map(view));
		const order = views
			.sort((a, b) => (b.startedAt ?? 0) - (a.startedAt ?? 0) || (a.id < b.id ? -1 : 1))
			.map((v) => v.id);
		expect(seen).toEqual(order);
		expect((await call("GET", "/v2/sandboxes?nextToken=garbage!")).json).toEqual({
			code: 400,
			message: "Invalid next token",
		});
		expect((await call("GET", "/v2/sandboxes?limit=0")).status).toBe(400);
		expect((await call("GET", "/v2/sandboxes?state=stopped")).status).toBe(400);
		expect((await call("GET", "/v2/sandboxes?metadata=novalue")).json).toEqual({
			code: 400,
			message: "Error parsing metadata",
		});
	});
});

describe("pause (POST /sandboxes/{sandboxID}/pause)", () => {
	it("pauses it, deletes its catalog entry by execution ID and keeps its snapshot, so the edge's resume works", async () => {
		const id = await create({ autoPause: true, autoResume: { enabled: true } });
		const { executionId } = await view(id);
		const answer = await call("POST", `/sandboxes/${id}/pause`, {});
		expect(answer.status).toBe(204);
		expect(answer.text).toBe("");
		expect(await view(id)).toMatchObject({ state: "paused", hasSnapshot: true });
		await until("the catalog DELETE", () => writesFor(id).length === 2);
		expect(writesFor(id)[1]).toEqual({ method: "DELETE", sandboxId: id, executionId });
		expect((await throughNode(id)).status).toBe(502);

		// The edge's ResumeSandbox finds the snapshot and resumes it.
		const resumed = await outcomeOf(
			sandboxServiceClient(stack.controlPlaneUrl).resumeSandbox(
				{ sandboxId: id },
				{
					headers: {
						"x-e2b-client-proxy-auth": apiSecret,
						"e2b-sandbox-request-port": "3000",
						"e2b-envd-access-token": (await view(id)).envdAccessToken ?? "",
					},
				},
			),
		);
		expect(resumed).toEqual({ code: "OK", message: "" });
		expect((await view(id)).state).toBe("running");
	});

	it("answers 409 when already paused (the SDK's false) and 404 when unknown or killed", async () => {
		const id = await create();
		expect((await call("POST", `/sandboxes/${id}/pause`, {})).status).toBe(204);
		expect((await call("POST", `/sandboxes/${id}/pause`)).json).toEqual({
			code: 409,
			message: `Error pausing sandbox - sandbox '${id}' is already paused`,
		});
		expect((await call("POST", "/sandboxes/nosuchsandbox/pause", {})).json).toEqual(notFound("nosuchsandbox"));
		await call("DELETE", `/sandboxes/${id}`);
		expect((await call("POST", `/sandboxes/${id}/pause`, {})).json).toEqual(notFound(id));
	});
});

describe("connect (POST /v2/sandboxes/{sandboxID}/connect and POST /sandboxes/{sandboxID}/connect)", () => {
	it("resumes a paused sandbox with the connect's timeout (201), pushing a new catalog entry", async () => {
		const id = await create({ timeout: 600, autoPause: true });
		await call("POST", `/sandboxes/${id}/pause`, {});
		const paused = await view(id);
		const before = Date.now();
		const answer = await call("POST", `/v2/sandboxes/${id}/connect`, { timeout: 30 });
		expect(answer.status).toBe(201);
		expect(answer.json).toEqual({
			alias: "base",
			clientID: "6532622b",
			envdAccessToken: paused.envdAccessToken,
			envdVersion: ENVD_VERSION,
			sandboxID: id,
			templateID: "base",
		});
		const resumed = await view(id);
		expect(resumed.state).toBe("running");
		expect(resumed.endTime).toBeGreaterThanOrEqual(before + 30_000);
		expect(resumed.endTime).toBeLessThanOrEqual(Date.now() + 30_000);
		// The sandbox's own timeout stays for its later runs.
		expect(resumed.timeoutMs).toBe(600_000);
		expect(writesFor(id).map((write) => write.method)).toEqual(["PUT", "DELETE", "PUT"]);
		expect((await throughNode(id)).status).toBe(200);
	});

	it("keeps a running sandbox alive (200): its end time moves later, never earlier", async () => {
		const id = await create({ timeout: 60 });
		const first = (await view(id)).endTime ?? 0;
		const longer = await call("POST", `/v2/sandboxes/${id}/connect`, { timeout: 120 });
		expect(longer.status).toBe(200);
		const moved = (await view(id)).endTime ?? 0;
		expect(moved).toBeGreaterThan(first);
		expect((await call("POST", `/v2/sandboxes/${id}/connect`, { timeout: 10 })).status).toBe(200);
		expect((await view(id)).endTime).toBe(moved);
		// v2's body is optional (300 s); v1 needs its timeout.
		expect((await call("POST", `/v2/sandboxes/${id}/connect`)).status).toBe(200);
		expect((await call("POST", `/sandboxes/${id}/connect`, {})).status).toBe(400);
		expect((await call("POST", `/sandboxes/${id}/connect`, { timeout: 5 })).status).toBe(200);
	});

	it("waits out a pause, then resumes", async () => {
		const id = freshId("pausing");
		await admin.create({ id, state: "pausing" });
		const connecting = call("POST", `/v2/sandboxes/${id}/connect`, { timeout: 60 });
		await new Promise((resolve) => setTimeout(resolve, 100));
		await admin.pause(id);
		const answer = await connecting;
		expect(answer.status).toBe(201);
		expect((await view(id)).state).toBe("running");
	});

	it("404s (the SDK's 'Paused sandbox ... not found') for unknown and killed sandboxes; 400 past the longest life", async () => {
		expect((await call("POST", "/v2/sandboxes/nosuchsandbox/connect", { timeout: 10 })).json).toEqual(
			notFound("nosuchsandbox"),
		);
		const id = await create();
		await call("DELETE", `/sandboxes/${id}`);
		expect((await call("POST", `/v2/sandboxes/${id}/connect`, { timeout: 10 })).json).toEqual(notFound(id));
		expect((await call("POST", `/v2/sandboxes/${id}/connect`, { timeout: 3601 })).json).toEqual({
			code: 400,
			message: "Timeout cannot be greater than 1 hours",
		});
	});
});

describe("set timeout (POST /sandboxes/{sandboxID}/timeout)", () => {
	it("sets its end time to now + timeout, shorter too (204)", async () => {
		const id = await create({ timeout: 600 });
		const before = Date.now();
		const answer = await call("POST", `/sandboxes/${id}/timeout`, { timeout: 100 });
		expect(answer.status).toBe(204);
		const { endTime } = await view(id);
		expect(endTime).toBeGreaterThanOrEqual(before + 100_000);
		expect(endTime).toBeLessThanOrEqual(Date.now() + 100_000);
	});

	it("kills it at its end time by default, as E2B does; pauses it with autoPause", async () => {
		const killed = await create();
		const paused = await create({ autoPause: true });
		expect((await call("POST", `/sandboxes/${killed}/timeout`, { timeout: 0 })).status).toBe(204);
		expect((await call("POST", `/sandboxes/${paused}/timeout`, { timeout: 0 })).status).toBe(204);
		await until("the kill", async () => (await view(killed)).state === "killed");
		await until("the pause", async () => (await view(paused)).state === "paused");
		expect((await view(killed)).hasSnapshot).toBe(false);
		expect((await view(paused)).hasSnapshot).toBe(true);
		await until("both catalog DELETEs", () => writesFor(killed).length === 2 && writesFor(paused).length === 2);
		expect((await call("GET", `/sandboxes/${killed}`)).status).toBe(404);
	});

	it("404s for paused and unknown sandboxes, 400 without a timeout", async () => {
		const id = await create();
		expect((await call("POST", `/sandboxes/${id}/timeout`, {})).status).toBe(400);
		await call("POST", `/sandboxes/${id}/pause`, {});
		expect((await call("POST", `/sandboxes/${id}/timeout`, { timeout: 10 })).json).toEqual(notFound(id));
		expect((await call("POST", "/sandboxes/nosuchsandbox/timeout", { timeout: 10 })).json).toEqual(
			notFound("nosuchsandbox"),
		);
	});
});

describe("kill (DELETE /sandboxes/{sandboxID})", () => {
	it("kills a running sandbox (204), deleting its catalog entry; a second kill is 404", async () => {
		const id = await create();
		const { executionId } = await view(id);
		const answer = await call("DELETE", `/sandboxes/${id}`);
		expect(answer.status).toBe(204);
		expect((await view(id)).state).toBe("killed");
		await until("the catalog DELETE", () => writesFor(id).length === 2);
		expect(writesFor(id)[1]).toEqual({ method: "DELETE", sandboxId: id, executionId });
		expect((await call("DELETE", `/sandboxes/${id}`)).json).toEqual(notFound(id));
	});

	it("deletes a paused sandbox's snapshot, so nothing can resume it", async () => {
		const id = await create({ autoPause: true, autoResume: { enabled: true } });
		await call("POST", `/sandboxes/${id}/pause`, {});
		expect((await call("DELETE", `/sandboxes/${id}`)).status).toBe(204);
		const resume = await outcomeOf(
			sandboxServiceClient(stack.controlPlaneUrl).resumeSandbox(
				{ sandboxId: id },
				{ headers: { "x-e2b-client-proxy-auth": apiSecret, "e2b-sandbox-request-port": "3000" } },
			),
		);
		expect(resume).toEqual({ code: "NotFound", message: "snapshot not found" });
		expect((await call("POST", `/v2/sandboxes/${id}/connect`, {})).status).toBe(404);
	});
});

describe("authentication and routes", () => {
	const routes: [string, string, unknown?][] = [
		["POST", "/v2/sandboxes", { templateID: "base" }],
		["POST", "/sandboxes", { templateID: "base" }],
		["GET", "/v2/sandboxes"],
		["GET", "/sandboxes"],
		["GET", "/sandboxes/abc"],
		["DELETE", "/sandboxes/abc"],
		["POST", "/v2/sandboxes/abc/connect", { timeout: 10 }],
		["POST", "/sandboxes/abc/connect", { timeout: 10 }],
		["POST", "/sandboxes/abc/pause", {}],
		["POST", "/sandboxes/abc/timeout", { timeout: 10 }],
	];

	it("answers 401 with E2B's messages without X-API-Key, or with a wrong one, on every route, and changes nothing", async () => {
		const before = stack.controlPlane.sandboxes.list().length;
		const wrong: [Record<string, string>, string][] = [
			[{}, "authorization header is missing"],
			[{ "x-api-key": "" }, "authorization header is missing"],
			[{ "x-api-key": "sk_e2b_0123" }, "authorization header is malformed"],
			[
				{ "x-api-key": "e2b_not-hex" },
				"Invalid API key, please visit https://e2b.dev/docs/api-key for more information.\nInvalid API key format",
			],
			[
				{ "x-api-key": "e2b_0123456789abcdef0123456789abcdef01234568" },
				"Invalid API key, please visit https://e2b.dev/docs/api-key for more information.\nCannot get the team for the given API key",
			],
			[
				{ authorization: `Bearer ${DEFAULT_REST_API_KEY}` },
				"authorization header is missing", // only X-API-Key is looked at
			],
		];
		for (const [method, path, body] of routes) {
			for (const [headers, message] of wrong) {
				const answer = await call(method, path, body, headers);
				expect(answer.status, `${method} ${path} ${JSON.stringify(headers)}`).toBe(401);
				expect(answer.json).toEqual({ code: 401, message });
			}
		}
		expect(stack.controlPlane.sandboxes.list()).toHaveLength(before);
	});

	it("answers unknown paths 404 and other methods 400 as E2B's validator does, before credentials", async () => {
		for (const path of ["/", "/nope", "/sandboxes/abc/nope", "/v2/sandboxes/abc", "/sandboxes/"]) {
			expect((await call("GET", path, undefined, {})).json, path).toEqual({
				code: 404,
				message: "validation error: no matching operation was found",
			});
		}
		for (const [method, path] of [
			["PATCH", "/sandboxes/abc"],
			["PUT", "/v2/sandboxes"],
			["GET", "/sandboxes/abc/pause"],
		] as const) {
			expect((await call(method, path, undefined, {})).json, `${method} ${path}`).toEqual({
				code: 400,
				message: "validation error: method not allowed",
			});
		}
	});

	it("answers 501 for E2B's operations it does not serve, once authenticated", async () => {
		expect((await call("GET", "/sandboxes/abc/metrics", undefined, {})).status).toBe(401);
		for (const [method, path] of [
			["GET", "/sandboxes/abc/metrics"],
			["POST", "/sandboxes/abc/resume"],
			["GET", "/sandboxes/metrics"],
			["GET", "/templates"],
		] as const) {
			const answer = await call(method, path);
			expect(answer.status, `${method} ${path}`).toBe(501);
			expect(answer.json.code).toBe(501);
		}
		const health = await call("GET", "/health", undefined, {});
		expect([health.status, health.text]).toEqual([200, "Health check successful"]);
	});

	it("keeps web pages out: a Host that is not loopback gets 403", async () => {
		const answer = await fetchVia(new URL(stack.controlPlaneUrl), "evil.example", "/v2/sandboxes", {
			headers: { "x-api-key": DEFAULT_REST_API_KEY },
		});
		expect(answer.status).toBe(403);
		expect(answer.json()).toMatchObject({ code: 403 });
		const local = await fetchVia(new URL(stack.controlPlaneUrl), "localhost", "/v2/sandboxes", {
			headers: { "x-api-key": DEFAULT_REST_API_KEY },
		});
		expect(local.status).toBe(200);
	});

	it("leaves the admin API and the RPCs where they were", async () => {
		expect((await call("GET", "/admin/sandboxes", undefined, {})).status).toBe(200);
		const rpc = await outcomeOf(
			sandboxServiceClient(stack.controlPlaneUrl).resumeSandbox(
				{ sandboxId: "nosuchsandbox" },
				{ headers: { "x-e2b-client-proxy-auth": apiSecret } },
			),
		);
		expect(rpc.code).toBe("NotFound");
	});
});

describe("the restApiKey option", () => {
	it("takes another key, refuses one E2B's API would refuse, and false turns the API off", async () => {
		const key = "e2b_00112233445566778899aabbccddeeff00112233";
		const other = await startStack({ apiSecret, controlPlanePort: 0, nodePort: 0, restApiKey: key });
		try {
			expect(other.restApiKey).toBe(key);
			expect((await call("GET", "/v2/sandboxes", undefined, { "x-api-key": key }, other.controlPlaneUrl)).status).toBe(
				200,
			);
			expect((await call("GET", "/v2/sandboxes", undefined, undefined, other.controlPlaneUrl)).status).toBe(401);
		} finally {
			await other.close();
		}
		await expect(
			startStack({ apiSecret, controlPlanePort: 0, nodePort: 0, restApiKey: "e2b_dev_api_key" }),
		).rejects.toThrow(/restApiKey/);
		const off = await startStack({ apiSecret, controlPlanePort: 0, nodePort: 0, restApiKey: false });
		try {
			expect(off.restApiKey).toBeUndefined();
			const answer = await call("GET", "/v2/sandboxes", undefined, undefined, off.controlPlaneUrl);
			expect(answer.status).toBe(404);
			expect(answer.json.message).toMatch(/^no route/);
		} finally {
			await off.close();
		}
	});
});
