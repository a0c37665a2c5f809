import { createPublicKey, type JsonWebKey, verify } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type OAuthClient, startTokenEndpoint, type TokenEndpoint } from "../../dev/token-endpoint.ts";
import { fetchVia } from "./http-client.ts";
import { until } from "./until.ts";

// The token endpoint the edge gets its bearer tokens from must behave as an
// OAuth2 authorization server does (RFC 6749 §4.4, §2.3.1, §5), and publish
// its keys as an OIDC provider does, or the edge's token client is tested
// against something no identity provider is.
const edge: OAuthClient = {
	clientId: "edge proxy",
	// Characters that §2.3.1's form-encoding changes: a client that skips it fails.
	clientSecret: "s3cret+with:odd&chars é",
	orgId: "org-a",
	scopes: ["sandboxes:lifecycle", "metrics:read"],
};
let endpoint: TokenEndpoint;

beforeAll(async () => {
	endpoint = await startTokenEndpoint({ clients: [edge], port: 0 });
});
afterAll(async () => {
	await endpoint?.close();
});

const formEncode = (value: string) => encodeURIComponent(value).replace(/%20/g, "+");

function basic(id: string, secret: string): string {
	return `Basic ${Buffer.from(`${formEncode(id)}:${formEncode(secret)}`).toString("base64")}`;
}

function tokenRequest(
	params: Record<string, string>,
	headers: Record<string, string> = { authorization: basic(edge.clientId, edge.clientSecret) },
): Promise<Response> {
	return fetch(endpoint.tokenUrl, {
		method: "POST",
		headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
		body: new URLSearchParams(params).toString(),
	});
}

function decodePart(part: string | undefined): Record<string, unknown> {
	return JSON.parse(Buffer.from(part ?? "", "base64url").toString("utf8"));
}

/** Verifies with the key the discovery document leads to, by its own means (not dev/jwt.ts). */
async function verifyAgainstJwks(token: string): Promise<boolean> {
	const discovery = (await (await fetch(`${endpoint.url}/.well-known/openid-configuration`)).json()) as {
		jwks_uri: string;
	};
	const { keys } = (await (await fetch(discovery.jwks_uri)).json()) as { keys: (JsonWebKey & { kid: string })[] };
	const [header, payload, signature] = token.split(".");
	const jwk = keys.find((key) => key.kid === decodePart(header).kid);
	if (jwk === undefined) return false;
	return verify(
		"sha256",
		Buffer.from(`${header}.${payload}`),
		createPublicKey({ key: jwk, format: "jwk" }),
		Buffer.from(signature ?? "", "base64url"),
	);
}

/** What a token request on a new connection ends in: a status, or the network error's code. */
async function outcome(): Promise<number | string> {
	const url = new URL(endpoint.tokenUrl);
	try {
		const answer = await fetchVia(url, url.host, url.pathname, {
			method: "POST",
			headers: {
				"content-type": "application/x-www-form-urlencoded",
				authorization: basic(edge.clientId, edge.clientSecret),
			},
			body: "grant_type=client_credentials",
		});
		return answer.status;
	} catch (error) {
		return (error as NodeJS.ErrnoException).code ?? "failed";
	}
}

describe("the token endpoint, for the client-credentials grant", () => {
	it("issues a signed JWT to a client authenticated by HTTP Basic, with E2B's claims", async () => {
		const before = Math.floor(Date.now() / 1000);
		const res = await tokenRequest({ grant_type: "client_credentials", scope: "sandboxes:lifecycle" });
		expect(res.status).toBe(200);
		expect(res.headers.get("cache-control")).toBe("no-store");
		expect(res.headers.get("content-type")).toMatch(/^application\/json/);
		const body = (await res.json()) as Record<string, unknown>;
		expect(body).toMatchObject({ token_type: "Bearer", expires_in: 3600, scope: "sandboxes:lifecycle" });
		const token = body.access_token as string;

		const [header, payload] = token.split(".");
		expect(decodePart(header)).toMatchObject({ alg: "RS256", typ: "JWT", kid: expect.any(String) });
		const claims = decodePart(payload);
		expect(claims).toMatchObject({
			iss: endpoint.url,
			sub: edge.clientId,
			org_id: "org-a",
			scope: "sandboxes:lifecycle",
			jti: expect.any(String),
		});
		expect(claims).not.toHaveProperty("aud");
		expect(claims.iat).toBeGreaterThanOrEqual(before);
		expect((claims.exp as number) - (claims.iat as number)).toBe(3600);
		expect(await verifyAgainstJwks(token)).toBe(true);

		const recorded = endpoint.requests().find((r) => r.jti === claims.jti);
		expect(recorded).toMatchObject({
			outcome: "granted",
			status: 200,
			clientId: edge.clientId,
			authMethod: "client_secret_basic",
			scope: "sandboxes:lifecycle",
			expiresAt: claims.exp,
		});
	});

	it("takes the credentials in the body too (client_secret_post), and grants every allowed scope when none is asked", async () => {
		const res = await tokenRequest(
			{ grant_type: "client_credentials", client_id: edge.clientId, client_secret: edge.clientSecret, audience: "api" },
			{},
		);
		expect(res.status).toBe(200);
		const body = (await res.json()) as { access_token: string; scope: string };
		expect(body.scope).toBe("sandboxes:lifecycle metrics:read");
		const claims = decodePart(body.access_token.split(".")[1]);
		expect(claims).toMatchObject({ scope: "sandboxes:lifecycle metrics:read", aud: "api", sub: edge.clientId });
		expect(await verifyAgainstJwks(body.access_token)).toBe(true);
		expect(endpoint.requests().at(-1)).toMatchObject({ authMethod: "client_secret_post", audience: "api" });
	});

	it("gives every token its own jti", async () => {
		const jtis = new Set<string>();
		for (let i = 0; i < 3; i++) {
			const { access_token } = (await (await tokenRequest({ grant_type: "client_credentials" })).json()) as {
				access_token: string;
			};
			jtis.add(decodePart(access_token.split(".")[1]).jti as string);
		}
		expect(jtis.size).toBe(3);
	});

	it("answers a wrong or unknown client 401 invalid_client, with WWW-Authenticate", async () => {
		const cases: Record<string, string>[] = [
			{ authorization: basic(edge.clientId, "wrong") },
			{ authorization: basic("nobody", edge.clientSecret) },
			// The secret without §2.3.1's form-encoding is another secret.
			{ authorization: `Basic ${Buffer.from(`${edge.clientId}:${edge.clientSecret}`).toString("base64")}` },
			{ authorization: "Bearer something" },
			{},
		];
		for (const headers of cases) {
			const res = await tokenRequest({ grant_type: "client_credentials" }, headers);
			expect(res.status, JSON.stringify(headers)).toBe(401);
			expect(res.headers.get("www-authenticate")).toMatch(/^Basic realm=/);
			expect(await res.json()).toMatchObject({ error: "invalid_client" });
		}
		const inBody = await tokenRequest(
			{ grant_type: "client_credentials", client_id: edge.clientId, client_secret: "wrong" },
			{},
		);
		expect(inBody.status).toBe(401);
		expect(await inBody.json()).toMatchObject({ error: "invalid_client" });
	});

	it("answers 400 invalid_scope for a scope the client may not have, granting nothing", async () => {
		const count = endpoint.requests().length;
		const res = await tokenRequest({ grant_type: "client_credentials", scope: "sandboxes:lifecycle admin" });
		expect(res.status).toBe(400);
		expect(await res.json()).toMatchObject({ error: "invalid_scope" });
		expect(endpoint.requests().slice(count)).toEqual([
			expect.objectContaining({ outcome: "invalid_scope", status: 400, clientId: edge.clientId }),
		]);
		expect(endpoint.requests().at(-1)).not.toHaveProperty("jti");
	});

	it("answers malformed requests 400 with RFC 6749's codes", async () => {
		const expectError = async (res: Response, error: string) => {
			expect(res.status).toBe(400);
			expect(await res.json()).toMatchObject({ error });
		};
		await expectError(await tokenRequest({ grant_type: "password" }), "unsupported_grant_type");
		await expectError(await tokenRequest({}), "invalid_request");
		await expectError(
			await tokenRequest({ grant_type: "client_credentials", client_secret: edge.clientSecret }),
			"invalid_request",
		);
		await expectError(
			await fetch(endpoint.tokenUrl, {
				method: "POST",
				headers: { "content-type": "application/json", authorization: basic(edge.clientId, edge.clientSecret) },
				body: JSON.stringify({ grant_type: "client_credentials" }),
			}),
			"invalid_request",
		);
		await expectError(
			await fetch(endpoint.tokenUrl, {
				method: "POST",
				headers: {
					"content-type": "application/x-www-form-urlencoded",
					authorization: basic(edge.clientId, edge.clientSecret),
				},
				body: "grant_type=client_credentials&grant_type=client_credentials",
			}),
			"invalid_request",
		);
		expect((await fetch(endpoint.tokenUrl)).status).toBe(405);
	});

	it("never records a client's secret", async () => {
		await tokenRequest({ grant_type: "client_credentials", client_id: edge.clientId, client_secret: "guess" }, {});
		const recorded = JSON.stringify(endpoint.requests());
		expect(recorded).not.toContain(edge.clientSecret);
		expect(recorded).not.toContain("guess");
	});
});

describe("the token endpoint, as an OIDC provider", () => {
	it("serves a discovery document that names itself, its token endpoint and its JWKS", async () => {
		const doc = (await (await fetch(`${endpoint.url}/.well-known/openid-configuration`)).json()) as Record<
			string,
			unknown
		>;
		expect(doc).toMatchObject({
			issuer: endpoint.url,
			token_endpoint: endpoint.tokenUrl,
			jwks_uri: endpoint.jwksUrl,
			grant_types_supported: ["client_credentials"],
			id_token_signing_alg_values_supported: ["RS256"],
		});
		expect(doc.token_endpoint_auth_methods_supported).toEqual(["client_secret_basic", "client_secret_post"]);
	});

	it("lists a rotated key beside the one before, and signs with the new one", async () => {
		const kid = await endpoint.rotateKey();
		const { keys } = (await (await fetch(endpoint.jwksUrl)).json()) as { keys: { kid: string; alg: string }[] };
		expect(keys).toHaveLength(2);
		expect(keys[0]).toMatchObject({ kid, kty: "RSA", alg: "RS256", use: "sig" });
		const { access_token } = (await (await tokenRequest({ grant_type: "client_credentials" })).json()) as {
			access_token: string;
		};
		expect(decodePart(access_token.split(".")[0]).kid).toBe(kid);
		expect(await verifyAgainstJwks(access_token)).toBe(true);
	});
});

describe("the token endpoint's faults", () => {
	it("down: the port refuses connections until cleared, then listens again on the same port", async () => {
		await endpoint.setFault({ down: true });
		try {
			expect(await outcome()).toBe("ECONNREFUSED");
			await expect(fetch(endpoint.jwksUrl)).rejects.toThrow();
		} finally {
			await endpoint.clearFault();
		}
		expect(await outcome()).toBe(200);
	});

	it("down for durationMs comes back by itself", async () => {
		// Long enough to be seen down first, even on a loaded machine.
		await endpoint.setFault({ down: true, durationMs: 2000 });
		expect(await outcome()).toBe("ECONNREFUSED");
		await until("the port to listen again", async () => (await outcome()) === 200);
		expect(endpoint.fault()).toBeUndefined();
	});

	it("reset: the connection ends without an answer, `times` times", async () => {
		await endpoint.setFault({ reset: true, times: 2 });
		expect(await outcome()).not.toBe(200);
		expect(await outcome()).not.toBe(200);
		expect(await outcome()).toBe(200);
		expect(endpoint.requests().slice(-3)).toMatchObject([
			{ outcome: "fault" },
			{ outcome: "fault" },
			{ outcome: "granted" },
		]);
	});

	it("delayMs: answers, normally, that much later", async () => {
		// Long enough that an undelayed answer is told from it on a loaded machine.
		const delayMs = 1500;
		await endpoint.setFault({ delayMs, times: 1 });
		const started = Date.now();
		expect(await outcome()).toBe(200);
		expect(Date.now() - started).toBeGreaterThanOrEqual(delayMs - 10);
		// Used up: the next answer is not delayed.
		expect(endpoint.fault()).toBeUndefined();
		const started2 = Date.now();
		expect(await outcome()).toBe(200);
		expect(Date.now() - started2).toBeLessThan(delayMs - 10);
	});

	it("garbage: a 200 that is not JSON, or JSON without access_token", async () => {
		await endpoint.setFault({ garbage: true, times: 1 });
		const notJson = await tokenRequest({ grant_type: "client_credentials" });
		expect(notJson.status).toBe(200);
		const text = await notJson.text();
		expect(() => JSON.parse(text)).toThrow();

		await endpoint.setFault({ garbage: "no-access-token", times: 1 });
		const noToken = await tokenRequest({ grant_type: "client_credentials" });
		expect(noToken.status).toBe(200);
		const body = (await noToken.json()) as Record<string, unknown>;
		expect(body).not.toHaveProperty("access_token");
		expect(endpoint.fault()).toBeUndefined();
	});

	it("httpStatus: that status with an HTML body", async () => {
		await endpoint.setFault({ httpStatus: 503, times: 1 });
		const res = await tokenRequest({ grant_type: "client_credentials" });
		expect(res.status).toBe(503);
		expect(res.headers.get("content-type")).toBe("text/html");
		expect(await res.text()).toContain("<html>");
		expect(await outcome()).toBe(200);
	});

	it("rejects faults it cannot apply, naming the field", async () => {
		await expect(endpoint.setFault({ down: true, times: 1 })).rejects.toThrow(/times/);
		await expect(endpoint.setFault({ httpStatus: 99 })).rejects.toThrow(/httpStatus/);
		await expect(endpoint.setFault({ nonsense: true } as never)).rejects.toThrow(/nonsense/);
		expect(endpoint.fault()).toBeUndefined();
	});
});

describe("the token endpoint's admin route", () => {
	const base = () => new URL(endpoint.url);
	const put = (body: unknown, host = `127.0.0.1:${base().port}`, type = "application/json") =>
		fetchVia(base(), host, "/admin/fault", {
			method: "PUT",
			headers: { "content-type": type },
			body: JSON.stringify(body),
		});

	it("keeps web pages out, as the control plane's does", async () => {
		expect((await put({ httpStatus: 500 }, "evil.example")).status).toBe(403);
		expect((await put({ httpStatus: 500 }, undefined, "text/plain")).status).toBe(415);
		expect(endpoint.fault()).toBeUndefined();
	});

	it("sets and clears a fault", async () => {
		const set = await put({ httpStatus: 500 });
		expect(set.status).toBe(200);
		expect(set.json()).toEqual({ fault: { httpStatus: 500 } });
		expect(await outcome()).toBe(500);
		const cleared = await fetchVia(base(), "localhost", "/admin/fault", {
			method: "DELETE",
			headers: { "content-type": "application/json" },
		});
		expect(cleared.status).toBe(204);
		expect(await outcome()).toBe(200);
	});

	it("takes the port down only for a while, since the route goes down with it", async () => {
		const refused = await put({ down: true });
		expect(refused.status).toBe(400);
		expect(refused.json().message).toContain("durationMs");

		// Long enough that polling sees it down, even on a loaded machine.
		const accepted = await put({ down: true, durationMs: 2000 });
		expect(accepted.status).toBe(200);
		await until("the port to go down", async () => (await outcome()) === "ECONNREFUSED");
		await until("the port to come back", async () => (await outcome()) === 200);
	});
});
