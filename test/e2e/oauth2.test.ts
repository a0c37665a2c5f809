import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_OAUTH_CLIENT_ID, DEFAULT_OAUTH_CLIENT_SECRET } from "../../dev/stack.ts";
import { type E2eStack, freshId, sandboxHost, startE2eStack } from "./fixture.ts";
import { fetchVia } from "./http-client.ts";
import { until } from "./until.ts";

// CONTROL_PLANE_AUTH=oauth2 against the development stack's real token
// endpoint, whose tokens the development control plane verifies as E2B's
// API does: signature against the issuer's JWKS, expiry, scope, org_id.

const authOrgId = "org-e2e-7d1c";
const json = { accept: "application/json" };

function oauth2Stack(
	options: { tokenTtlSeconds?: number; workerVars?: Record<string, string>; clientOrg?: string } = {},
) {
	return startE2eStack({
		resumeDelayMs: 100,
		catalogWrites: false,
		workerVars: options.workerVars ?? {},
		auth: {
			mode: "oauth2",
			authOrgId,
			tokenEndpoint: {
				...(options.tokenTtlSeconds === undefined ? {} : { tokenTtlSeconds: options.tokenTtlSeconds }),
				...(options.clientOrg === undefined
					? {}
					: {
							clients: [
								{
									clientId: DEFAULT_OAUTH_CLIENT_ID,
									clientSecret: DEFAULT_OAUTH_CLIENT_SECRET,
									orgId: options.clientOrg,
									scopes: ["sandboxes:lifecycle"],
								},
							],
						}),
			},
		},
	});
}

async function pausedSandbox(env: E2eStack, options: { public?: boolean } = {}) {
	const id = freshId("oa");
	const view = await env.admin.create({ id, ...options });
	await env.admin.pause(id);
	return { id, view };
}

function callsFor(env: E2eStack, sandboxId: string) {
	return env.stack.controlPlane.calls().filter((call) => call.sandboxId === sandboxId);
}

function tokenRequests(env: E2eStack) {
	const endpoint = env.stack.tokenEndpoint;
	if (endpoint === undefined) throw new Error("the stack has no token endpoint");
	return endpoint.requests();
}

function expectNoSecrets(env: E2eStack, ...texts: string[]): void {
	for (const text of [...texts, env.worker.logText()]) {
		expect(text).not.toContain(DEFAULT_OAUTH_CLIENT_SECRET);
		expect(text).not.toMatch(/eyJ[\w-]+\.[\w-]+\.[\w-]+/); // no JWT
	}
}

describe("OAuth2 client credentials", () => {
	let env: E2eStack;
	beforeAll(async () => {
		env = await oauth2Stack();
	});
	afterAll(async () => {
		await env?.close();
	});

	it("gets one token for many concurrent wakes, and sends it as E2B's verifier reads it", async () => {
		const sandboxes = await Promise.all(Array.from({ length: 8 }, () => pausedSandbox(env)));
		const responses = await Promise.all(
			sandboxes.map(({ id }) => fetchVia(env.worker.url, sandboxHost(id), "/", { headers: json })),
		);
		expect(responses.map((r) => r.status)).toEqual(Array(8).fill(200));

		const requests = tokenRequests(env);
		expect(requests).toHaveLength(1);
		expect(requests[0]).toMatchObject({
			outcome: "granted",
			clientId: DEFAULT_OAUTH_CLIENT_ID,
			grantType: "client_credentials",
			scope: "sandboxes:lifecycle",
			authMethod: "client_secret_basic",
		});
		const bearers = new Set<string>();
		for (const { id } of sandboxes) {
			const calls = callsFor(env, id);
			expect(calls).toHaveLength(1);
			expect(calls[0]?.headers.authorization).toMatch(/^Bearer eyJ/);
			expect(calls[0]?.headers).not.toHaveProperty("x-e2b-client-proxy-auth");
			bearers.add(calls[0]?.headers.authorization ?? "");
		}
		expect(bearers.size).toBe(1);
		expectNoSecrets(env, ...responses.map((r) => `${JSON.stringify(r.headers)}${r.text}`));
	});

	it("refreshes once and retries once when the control plane answers Unauthenticated, and no more", async () => {
		const once = await pausedSandbox(env);
		const before = tokenRequests(env).length;
		await env.admin.setFault({ sandboxId: once.id, code: "Unauthenticated", times: 1 });
		const retried = await fetchVia(env.worker.url, sandboxHost(once.id), "/", { headers: json });
		expect(retried.status).toBe(200);
		const calls = callsFor(env, once.id);
		expect(calls).toHaveLength(2);
		expect(calls[1]?.headers.authorization).not.toBe(calls[0]?.headers.authorization);
		expect(tokenRequests(env)).toHaveLength(before + 1);

		const always = await pausedSandbox(env);
		await env.admin.setFault({ sandboxId: always.id, code: "Unauthenticated" });
		try {
			const refused = await fetchVia(env.worker.url, sandboxHost(always.id), "/", { headers: json });
			expect(refused.status).toBe(403);
			expect(callsFor(env, always.id)).toHaveLength(2);
			expect(tokenRequests(env)).toHaveLength(before + 2);
		} finally {
			await env.admin.clearFault();
		}
	});

	it("does not refresh a fresh token on PermissionDenied: a stranger's wrong token costs no token request", async () => {
		const { id } = await pausedSandbox(env, { public: false });
		const before = tokenRequests(env).length;
		const refused = await fetchVia(env.worker.url, sandboxHost(id), "/", {
			headers: { ...json, "e2b-traffic-access-token": "a-stranger's-guess" },
		});
		expect(refused.status).toBe(403);
		expect(callsFor(env, id)).toHaveLength(1);
		expect(tokenRequests(env)).toHaveLength(before);
	});
});

describe("OAuth2 token expiry", () => {
	// Replaced after three quarters of it (3 s): room for two wakes on one
	// token even on a loaded machine. (Its exp is in whole seconds, so it
	// lives at least 3 s.)
	const tokenTtlSeconds = 4;
	let env: E2eStack;
	beforeAll(async () => {
		env = await oauth2Stack({ tokenTtlSeconds });
	});
	afterAll(async () => {
		await env?.close();
	});

	it("uses a token until shortly before it expires, then gets a new one", async () => {
		// Both paused first, so that their wakes come close together.
		const first = await pausedSandbox(env);
		const second = await pausedSandbox(env);
		expect((await fetchVia(env.worker.url, sandboxHost(first.id), "/")).status).toBe(200);
		expect((await fetchVia(env.worker.url, sandboxHost(second.id), "/")).status).toBe(200);
		expect(tokenRequests(env)).toHaveLength(1);
		const firstBearer = callsFor(env, first.id)[0]?.headers.authorization;
		expect(callsFor(env, second.id)[0]?.headers.authorization).toBe(firstBearer);

		// Past three quarters of its life: the control plane would refuse the
		// old one once it expires.
		await new Promise((resolve) => setTimeout(resolve, (tokenTtlSeconds * 3_000) / 4 + 100));
		const third = await pausedSandbox(env);
		expect((await fetchVia(env.worker.url, sandboxHost(third.id), "/")).status).toBe(200);
		const thirdCalls = callsFor(env, third.id);
		expect(thirdCalls).toHaveLength(1);
		expect(thirdCalls[0]?.headers.authorization).not.toBe(firstBearer);
		expect(tokenRequests(env).map((r) => r.outcome)).toEqual(["granted", "granted"]);
	});
});

describe("a token endpoint that fails", () => {
	let env: E2eStack;
	beforeAll(async () => {
		env = await oauth2Stack({ workerVars: { OAUTH_TOKEN_TIMEOUT_MS: "500" } });
	});
	afterAll(async () => {
		await env?.close();
	});

	async function expectAuthUnavailable(id: string): Promise<void> {
		const response = await fetchVia(env.worker.url, sandboxHost(id), "/", { headers: json });
		expect(response.status).toBe(503);
		expect(response.json()).toMatchObject({ reason: "control_plane_auth_unavailable", code: 503, sandboxId: id });
		expect(Number(response.headers["retry-after"])).toBeGreaterThanOrEqual(1);
		expect(callsFor(env, id)).toHaveLength(0);
		expectNoSecrets(env, `${JSON.stringify(response.headers)}${response.text}`);
	}

	it("answers 503 in our format while it is down, makes no RPC, and wakes the sandbox once it is back", async () => {
		const endpoint = env.stack.tokenEndpoint;
		if (endpoint === undefined) throw new Error("no token endpoint");
		const { id } = await pausedSandbox(env);
		await endpoint.setFault({ down: true });
		try {
			await expectAuthUnavailable(id);
		} finally {
			await endpoint.clearFault();
		}
		// The token object waits a second before asking again, and the
		// sandbox's object backs off as from a failing control plane.
		const response = await until("the sandbox to wake", async () => {
			const r = await fetchVia(env.worker.url, sandboxHost(id), "/", { headers: json });
			return r.status === 200 ? r : undefined;
		});
		expect(response.text).toContain(id);
		expect(callsFor(env, id)).toHaveLength(1);
		expect(env.worker.logText()).toContain('"event":"control_plane_token","outcome":"failed"');
	});

	it("answers 503 for a slow endpoint (past OAUTH_TOKEN_TIMEOUT_MS) and for garbage, asking it again only after a wait", async () => {
		const endpoint = env.stack.tokenEndpoint;
		if (endpoint === undefined) throw new Error("no token endpoint");
		// A 401 from the control plane drops the token, so the next call needs a
		// new one; and when none can be had, that is ours to report, not a refusal.
		const { id: dropper } = await pausedSandbox(env);
		await env.admin.setFault({ sandboxId: dropper, code: "Unauthenticated" });
		// Far slower than OAUTH_TOKEN_TIMEOUT_MS (0.5 s): the answers below come
		// by that timeout, long before this, even on a loaded machine.
		const slowMs = 10_000;
		await endpoint.setFault({ delayMs: slowMs });
		const slowStart = Date.now();
		try {
			const response = await fetchVia(env.worker.url, sandboxHost(dropper), "/", { headers: json });
			expect(response.status).toBe(503);
			expect(response.json()).toMatchObject({ reason: "control_plane_auth_unavailable" });
			expect(callsFor(env, dropper)).toHaveLength(1);
			const { id } = await pausedSandbox(env);
			await expectAuthUnavailable(id);
			expect(Date.now() - slowStart).toBeLessThan(slowMs - 1_000);
			await endpoint.setFault({ garbage: "not-json" });
			// Within the token object's wait, nobody reaches the endpoint.
			const before = endpoint.requests().length;
			const { id: another } = await pausedSandbox(env);
			await expectAuthUnavailable(another);
			expect(endpoint.requests().length).toBeLessThanOrEqual(before + 1);
			await new Promise((resolve) => setTimeout(resolve, 1_100));
			const { id: third } = await pausedSandbox(env);
			await expectAuthUnavailable(third);
			expect(endpoint.requests().at(-1)?.outcome).toBe("fault");
		} finally {
			await endpoint.clearFault();
			await env.admin.clearFault();
		}
	});
});

describe("a token the control plane refuses for good", () => {
	let env: E2eStack;
	beforeAll(async () => {
		env = await oauth2Stack({ clientOrg: "some-other-org" });
	});
	afterAll(async () => {
		await env?.close();
	});

	it("gets 403 when the token's org_id is not the cluster's, with one RPC and one token request", async () => {
		const { id } = await pausedSandbox(env);
		const response = await fetchVia(env.worker.url, sandboxHost(id), "/", { headers: json });
		expect(response.status).toBe(403);
		expect(response.json()).toMatchObject({ reason: "resume_forbidden" });
		expect(callsFor(env, id)).toHaveLength(1);
		expect(tokenRequests(env)).toHaveLength(1);
		expect((await env.admin.get(id)).state).toBe("paused");
	});
});
