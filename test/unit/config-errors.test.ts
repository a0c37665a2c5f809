import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../src/index.ts";

// What a configuration error tells whom: anyone gets a bare 503 with its
// reason code; the detail is in the log, and on GET /healthz for a caller
// that holds CATALOG_SECRET.

const catalogSecret = "unit-test-catalog-secret";

async function fetchWith(settings: Record<string, string>, url: string, headers: Record<string, string> = {}) {
	const ctx = createExecutionContext();
	const misconfigured = { ...env, ...settings } as Env;
	const response = await worker.fetch(new Request(url, { headers }), misconfigured, ctx);
	await waitOnExecutionContext(ctx);
	return { status: response.status, body: (await response.json()) as { reason?: string; message: string } };
}

// Each kind of error, with the words that must not reach a stranger.
const errors: { label: string; settings: Record<string, string>; detail: string; trafficFails?: boolean }[] = [
	{
		label: "CATALOG_SECRET equal to API_SECRET",
		settings: { API_SECRET: "shared-secret-for-both-1234", CATALOG_SECRET: "shared-secret-for-both-1234" },
		detail: "CATALOG_SECRET",
	},
	{ label: "a CATALOG_SECRET too short", settings: { CATALOG_SECRET: "short" }, detail: "CATALOG_SECRET" },
	{
		label: "a malformed CONTROL_PLANE_URL",
		settings: { CONTROL_PLANE_URL: "not a url", CATALOG_SECRET: catalogSecret },
		detail: "CONTROL_PLANE_URL",
		trafficFails: true,
	},
	{
		label: "a malformed NODE_RESOLVE_OVERRIDE",
		settings: { NODE_RESOLVE_OVERRIDE: "https://{ip}:5007", CATALOG_SECRET: catalogSecret },
		detail: "NODE_RESOLVE_OVERRIDE",
		trafficFails: true,
	},
	{
		label: "a malformed RESUME_TIMEOUT_MS",
		settings: { RESUME_TIMEOUT_MS: "soon", CATALOG_SECRET: catalogSecret },
		detail: "RESUME_TIMEOUT_MS",
		trafficFails: true,
	},
];

describe.each(errors)("with $label", ({ settings, detail, trafficFails }) => {
	const secret = settings.CATALOG_SECRET ?? catalogSecret;

	it.each([
		["an anonymous /healthz", "http://edge.localhost/healthz", {}],
		[
			"the catalog API, even with its secret",
			"http://edge.localhost/v1/sandboxes/abc",
			{ authorization: `Bearer ${secret}` },
		],
		[
			"a /healthz with a wrong token",
			"http://edge.localhost/healthz",
			{ authorization: "Bearer not-the-secret-at-all" },
		],
	])("tells %s only that the proxy is misconfigured", async (_label, url, headers) => {
		const { status, body } = await fetchWith(settings, url, headers);
		expect(status).toBe(503);
		expect(body.reason).toBe("proxy_misconfigured");
		expect(body.message).toBe("The sandbox proxy is misconfigured");
		expect(JSON.stringify(body)).not.toContain(detail);
	});

	it(trafficFails ? "fails sandbox traffic, telling it no more" : "leaves sandbox traffic alone", async () => {
		const { status, body } = await fetchWith(settings, "http://3000-abc.localhost/", { accept: "application/json" });
		// Where traffic goes on, its lookup meets the unit project's unreachable control plane.
		expect(body.reason).toBe(trafficFails ? "proxy_misconfigured" : "control_plane_unavailable");
		expect(status).toBe(503);
		expect(JSON.stringify(body)).not.toContain(detail);
	});

	it("tells a /healthz caller holding CATALOG_SECRET what is wrong, naming the setting, never a value", async () => {
		const { status, body } = await fetchWith(settings, "http://edge.localhost/healthz", {
			authorization: `Bearer ${secret}`,
		});
		expect(status).toBe(503);
		expect(body.message).toContain(detail);
		for (const value of Object.values(settings)) {
			if (value.length >= 5) expect(body.message).not.toContain(value);
		}
	});
});
