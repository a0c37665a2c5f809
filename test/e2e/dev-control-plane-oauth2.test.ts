import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAdminClient } from "../../dev/admin-client.ts";
import { startControlPlane } from "../../dev/control-plane.ts";
import { createDemoRuntime } from "../../dev/demo-sandbox.ts";
import { generateSigningKey, signJwt } from "../../dev/jwt.ts";
import { DEV_TEAM_ID } from "../../dev/model.ts";
import { createRegistry } from "../../dev/registry.ts";
import { outcomeOf, type RpcOutcome, sandboxServiceClient } from "../../dev/rpc-client.ts";
import { type Stack, startStack } from "../../dev/stack.ts";
import { type OAuthClient, startTokenEndpoint, type TokenEndpoint } from "../../dev/token-endpoint.ts";
import { apiSecret, freshId } from "./fixture.ts";
import { until } from "./until.ts";

// In oauth2 mode the development control plane must check the edge's bearer
// tokens as E2B's API does (packages/api/internal/oauth: go-oidc, then scope
// and org), answering every failure PermissionDenied "permission denied", and
// only once the sandbox's team is known.
const lifecycle = "sandboxes:lifecycle";
const edge: OAuthClient = { clientId: "edge", clientSecret: "edge-secret-1", orgId: "org-a", scopes: [lifecycle] };
const reader: OAuthClient = { clientId: "reader", clientSecret: "reader-secret-1", orgId: "org-a", scopes: ["read"] };
const foreign: OAuthClient = {
	clientId: "foreign",
	clientSecret: "foreign-secret",
	orgId: "org-b",
	scopes: [lifecycle],
};
const denied: RpcOutcome = { code: "PermissionDenied", message: "permission denied" };
const ok: RpcOutcome = { code: "OK", message: "" };

function oauthStack(options: { authOrgId?: string; clients?: OAuthClient[]; tokenTtlSeconds?: number } = {}) {
	return startStack({
		apiSecret,
		auth: {
			mode: "oauth2",
			authOrgId: options.authOrgId ?? "org-a",
			tokenEndpoint: {
				clients: options.clients ?? [edge, reader, foreign],
				...(options.tokenTtlSeconds === undefined ? {} : { tokenTtlSeconds: options.tokenTtlSeconds }),
			},
		},
		controlPlanePort: 0,
		nodePort: 0,
		resumeDelayMs: 20,
		pauseDelayMs: 20,
	});
}

async function tokenFrom(endpoint: TokenEndpoint, client: OAuthClient): Promise<string> {
	const res = await fetch(endpoint.tokenUrl, {
		method: "POST",
		headers: {
			"content-type": "application/x-www-form-urlencoded",
			authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString("base64")}`,
		},
		body: "grant_type=client_credentials",
	});
	if (res.status !== 200) throw new Error(`token request for ${client.clientId}: ${res.status}`);
	return ((await res.json()) as { access_token: string }).access_token;
}

let stack: Stack;
let endpoint: TokenEndpoint;
let goodToken: string;

beforeAll(async () => {
	stack = await oauthStack();
	endpoint = stack.tokenEndpoint as TokenEndpoint;
	goodToken = await tokenFrom(endpoint, edge);
});
afterAll(async () => {
	await stack?.close();
});

/** A paused sandbox with a snapshot and its keepalive on: both RPCs would succeed with good credentials. */
async function pausedSandbox(target: Stack = stack): Promise<string> {
	const id = freshId();
	await target.controlPlane.sandboxes.create({ id, trafficKeepalive: true });
	await target.controlPlane.sandboxes.pause(id);
	return id;
}

function resume(
	id: string,
	headers: Record<string, string>,
	target = stack,
	protocol: "grpc-web" | "connect" = "grpc-web",
) {
	return outcomeOf(
		sandboxServiceClient(target.controlPlaneUrl, protocol).resumeSandbox(
			{ sandboxId: id },
			{ headers: { "e2b-sandbox-request-port": "3000", ...headers } },
		),
	);
}

function keepAlive(
	id: string,
	headers: Record<string, string>,
	target = stack,
	teamId = DEV_TEAM_ID,
	protocol: "grpc-web" | "connect" = "grpc-web",
) {
	return outcomeOf(
		sandboxServiceClient(target.controlPlaneUrl, protocol).keepAliveSandbox({ sandboxId: id, teamId }, { headers }),
	);
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe("the control plane in oauth2 mode", () => {
	it("takes a good bearer token for both RPCs, over gRPC-web and Connect, and needs no API secret", async () => {
		for (const protocol of ["grpc-web", "connect"] as const) {
			const id = await pausedSandbox();
			expect(await resume(id, bearer(goodToken), stack, protocol)).toEqual(ok);
			expect(stack.controlPlane.sandboxes.get(id)?.state).toBe("running");
			expect(await keepAlive(id, bearer(goodToken), stack, DEV_TEAM_ID, protocol)).toEqual(ok);
		}
		// The scheme is case-insensitive, and x-e2b-client-proxy-auth is not looked at.
		const id = await pausedSandbox();
		expect(await resume(id, { authorization: `bearer ${goodToken}`, "x-e2b-client-proxy-auth": "wrong" })).toEqual(ok);
		expect(await keepAlive(id, { authorization: `BEARER  ${goodToken}` })).toEqual(ok);
	});

	it("refuses a call without a usable bearer token, the API secret included, and resumes nothing", async () => {
		const id = await pausedSandbox();
		const attempts: Record<string, string>[] = [
			{},
			{ "x-e2b-client-proxy-auth": apiSecret },
			{ authorization: goodToken },
			{ authorization: `Basic ${goodToken}` },
			{ authorization: "Bearer " },
			{ authorization: "Bearer not-a-jwt" },
		];
		for (const headers of attempts) {
			expect(await resume(id, headers), JSON.stringify(headers)).toEqual(denied);
		}
		expect(stack.controlPlane.sandboxes.get(id)?.state).toBe("paused");
		await stack.controlPlane.sandboxes.resume(id);
		for (const headers of attempts) {
			expect(await keepAlive(id, headers), JSON.stringify(headers)).toEqual(denied);
		}
	});

	it("refuses a token whose signature is not the issuer's", async () => {
		const other = await startTokenEndpoint({ clients: [edge], port: 0 });
		try {
			const [header, payload, signature] = goodToken.split(".");
			const claims = JSON.parse(Buffer.from(payload ?? "", "base64url").toString("utf8"));
			const tampered = `${header}.${Buffer.from(JSON.stringify({ ...claims, org_id: "org-a", scope: `${lifecycle} x` })).toString("base64url")}.${signature}`;
			const kid = JSON.parse(Buffer.from(header ?? "", "base64url").toString("utf8")).kid as string;
			// Right issuer, right kid, right claims: only the key is wrong.
			const forged = await signJwt(claims, { kid, privateKey: (await generateSigningKey()).privateKey });
			const cases = {
				"another issuer's token": await tokenFrom(other, edge),
				"a tampered payload": tampered,
				"a forged signature": forged,
				"no signature": `${header}.${payload}.`,
			};
			const id = await pausedSandbox();
			for (const [what, token] of Object.entries(cases)) {
				expect(await resume(id, bearer(token)), what).toEqual(denied);
				expect(await keepAlive(id, bearer(token)), what).toEqual(denied);
			}
			expect(stack.controlPlane.sandboxes.get(id)?.state).toBe("paused");
			// The same claims signed by the issuer pass.
			expect(await resume(id, bearer(await endpoint.signToken(claims)))).toEqual(ok);
		} finally {
			await other.close();
		}
	});

	it("refuses a token without the sandboxes:lifecycle scope, or of another org", async () => {
		const id = await pausedSandbox();
		for (const client of [reader, foreign]) {
			const token = await tokenFrom(endpoint, client);
			expect(await resume(id, bearer(token)), client.clientId).toEqual(denied);
			expect(await keepAlive(id, bearer(token)), client.clientId).toEqual(denied);
		}
		expect(stack.controlPlane.sandboxes.get(id)?.state).toBe("paused");
	});

	it("refuses claims of the wrong type, and a token without exp, as go-oidc does", async () => {
		const id = await pausedSandbox();
		const now = Math.floor(Date.now() / 1000);
		const base = { iss: endpoint.url, sub: "edge", iat: now, exp: now + 60, org_id: "org-a", scope: lifecycle };
		const cases = {
			"scope as an array": { ...base, scope: [lifecycle] },
			"org_id as a number": { ...base, org_id: 7 },
			"no exp": { ...base, exp: undefined },
			"exp as a string": { ...base, exp: String(now + 60) },
			"another iss": { ...base, iss: `${endpoint.url}/` },
		};
		for (const [what, claims] of Object.entries(cases)) {
			expect(await resume(id, bearer(await endpoint.signToken(claims))), what).toEqual(denied);
		}
		expect(await resume(id, bearer(await endpoint.signToken(base)))).toEqual(ok);
	});

	it("checks the token only after the sandbox ID, the snapshot and the team, as E2B's newest handlers do", async () => {
		const running = freshId();
		await stack.controlPlane.sandboxes.create({ id: running });
		const noAutoResume = freshId();
		await stack.controlPlane.sandboxes.create({ id: noAutoResume, autoResume: false });
		await stack.controlPlane.sandboxes.pause(noAutoResume);
		const paused = await pausedSandbox();

		expect(await resume("Not-An-ID", {})).toEqual({ code: "InvalidArgument", message: "invalid sandbox ID" });
		expect(await resume(freshId("nosuch"), {})).toEqual({ code: "NotFound", message: "snapshot not found" });
		expect(await resume(running, {})).toEqual({ code: "NotFound", message: "snapshot not found" });
		expect(await resume(noAutoResume, {})).toEqual({ code: "NotFound", message: "sandbox auto-resume disabled" });
		expect(await resume(paused, {})).toEqual(denied);

		expect(await keepAlive("Not-An-ID", {})).toEqual({ code: "InvalidArgument", message: "invalid sandbox ID" });
		expect(await keepAlive(running, {}, stack, "dev-team")).toEqual({
			code: "InvalidArgument",
			message: "invalid team ID",
		});
		expect((await keepAlive(running, {}, stack, "6f1c1f5e-0000-4000-8000-000000000000")).code).toBe("Internal");
		// The sandbox is looked up only after the token: an unknown one is refused, not "not found".
		expect(await keepAlive(freshId("nosuch"), {})).toEqual(denied);
		expect(await keepAlive(freshId("nosuch"), bearer(goodToken))).toEqual({
			code: "NotFound",
			message: "sandbox not found",
		});
	});

	it("records the authorization header, and masks it in the admin API's listings", async () => {
		const id = await pausedSandbox();
		await resume(id, bearer(goodToken));
		await keepAlive(id, bearer(goodToken));
		const resumeCall = stack.controlPlane.calls().find((call) => call.sandboxId === id);
		expect(resumeCall?.headers.authorization).toBe(`Bearer ${goodToken}`);
		const keepAliveCall = stack.controlPlane.keepAliveCalls().find((call) => call.sandboxId === id);
		expect(keepAliveCall).toMatchObject({ teamId: DEV_TEAM_ID, headers: { authorization: `Bearer ${goodToken}` } });

		const admin = createAdminClient(stack.controlPlaneUrl);
		const listed = [...(await admin.calls()), ...(await admin.keepAliveCalls())].filter((c) => c.sandboxId === id);
		expect(listed).toHaveLength(2);
		for (const call of listed) expect(call.headers.authorization).toBe("(present)");
		expect(JSON.stringify(listed)).not.toContain(goodToken);
	});
});

describe("the control plane's keys", () => {
	it("are fetched once and kept through an issuer outage; a new kid fetches them again", async () => {
		const id = await pausedSandbox();
		await stack.controlPlane.sandboxes.resume(id);
		const before = await tokenFrom(endpoint, edge);
		expect(await keepAlive(id, bearer(before))).toEqual(ok);

		await endpoint.rotateKey();
		const after = await tokenFrom(endpoint, edge);
		await endpoint.setFault({ down: true });
		try {
			// The cached key still verifies the old token; the new kid needs the JWKS, which is down.
			expect(await keepAlive(id, bearer(before))).toEqual(ok);
			expect(await keepAlive(id, bearer(after))).toEqual(denied);
		} finally {
			await endpoint.clearFault();
		}
		expect(await keepAlive(id, bearer(after))).toEqual(ok);
	});

	it("are not there when the issuer is down before the first call, which is then refused", async () => {
		const fresh = await oauthStack();
		try {
			const freshEndpoint = fresh.tokenEndpoint as TokenEndpoint;
			const token = await tokenFrom(freshEndpoint, edge);
			const id = await pausedSandbox(fresh);
			await freshEndpoint.setFault({ down: true });
			expect(await resume(id, bearer(token), fresh)).toEqual(denied);
			await freshEndpoint.clearFault();
			expect(await resume(id, bearer(token), fresh)).toEqual(ok);
		} finally {
			await fresh.close();
		}
	});
});

describe("an expired token", () => {
	it("is refused once its exp has passed", async () => {
		const short = await oauthStack({ tokenTtlSeconds: 1 });
		try {
			const id = await pausedSandbox(short);
			await short.controlPlane.sandboxes.resume(id);
			// A keepalive answered before the token's exp was checked before it,
			// and must pass. One answered later says nothing (a loaded machine can
			// take the whole second): then a new token is taken.
			const { token, exp } = await until(
				"a keepalive answered before its token's exp",
				async () => {
					// Early in a second, so that the token's one second is most of a second.
					await until("the start of a second", () => Date.now() % 1000 < 100);
					const token = await tokenFrom(short.tokenEndpoint as TokenEndpoint, edge);
					const claims = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8"));
					const exp = claims.exp as number;
					const answer = await keepAlive(id, bearer(token), short);
					if (Date.now() >= exp * 1000) return undefined;
					expect(answer).toEqual(ok);
					return { token, exp };
				},
				30_000,
			);
			await until("the token to expire", () => Date.now() > exp * 1000, 5000);
			expect(await keepAlive(id, bearer(token), short)).toEqual(denied);
		} finally {
			await short.close();
		}
	});
});

describe("an empty auth org ID", () => {
	it("denies every token, even one whose org_id is empty too", async () => {
		const noOrg: OAuthClient = { ...edge, orgId: "" };
		const empty = await oauthStack({ authOrgId: "", clients: [noOrg] });
		try {
			const id = await pausedSandbox(empty);
			const token = await tokenFrom(empty.tokenEndpoint as TokenEndpoint, noOrg);
			expect(await resume(id, bearer(token), empty)).toEqual(denied);
		} finally {
			await empty.close();
		}
	});
});

describe("starting the control plane in oauth2 mode", () => {
	it("fails, naming the issuer, when discovery fails or names another issuer", async () => {
		const registry = createRegistry({ runtime: createDemoRuntime() });
		try {
			const start = (issuerUrl: string) =>
				startControlPlane({ apiSecret, registry, port: 0, auth: { mode: "oauth2", issuerUrl, authOrgId: "org-a" } });
			await expect(start("http://127.0.0.1:9")).rejects.toThrow(/http:\/\/127\.0\.0\.1:9 cannot be used/);
			await expect(start(`${endpoint.url}/`)).rejects.toThrow(/issuer did not match/);
		} finally {
			await registry.close();
		}
	});
});
