import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_REST_API_KEY } from "../../dev/rest-api.ts";
import { type E2eStack, sandboxHost, startE2eStack } from "./fixture.ts";
import { fetchVia } from "./http-client.ts";

// What E2B's REST API on the dev control plane does, as the edge sees it: the
// same registry and catalog as the admin API, so a Worker serves, wakes and
// forgets sandboxes that the REST API created, paused and killed.

let env: E2eStack;

beforeAll(async () => {
	env = await startE2eStack({ resumeDelayMs: 100 });
});
afterAll(async () => {
	await env?.close();
});

async function rest(method: string, path: string, body?: unknown) {
	const response = await fetch(`${env.stack.controlPlaneUrl}${path}`, {
		method,
		headers: {
			"x-api-key": DEFAULT_REST_API_KEY,
			...(body === undefined ? {} : { "content-type": "application/json" }),
		},
		...(body === undefined ? {} : { body: JSON.stringify(body) }),
	});
	const text = await response.text();
	return { status: response.status, json: text === "" ? undefined : JSON.parse(text) };
}

const resumeCalls = (id: string) => env.stack.controlPlane.calls().filter((call) => call.sandboxId === id);

describe("sandboxes of the REST API, through the edge", () => {
	it("serves a created one from its pushed route, wakes it after a REST pause, and forgets it after a REST kill", async () => {
		const created = await rest("POST", "/v2/sandboxes", {
			templateID: "base",
			autoPause: true,
			autoResume: { enabled: true },
		});
		expect(created.status).toBe(201);
		const id: string = created.json.sandboxID;

		const first = await fetchVia(env.worker.url, sandboxHost(id), "/headers");
		expect(first.status).toBe(200);
		// The route came from the catalog push: nothing was resumed.
		expect(resumeCalls(id)).toHaveLength(0);

		expect((await rest("POST", `/sandboxes/${id}/pause`, {})).status).toBe(204);
		const woken = await fetchVia(env.worker.url, sandboxHost(id), "/headers");
		expect(woken.status).toBe(200);
		expect(resumeCalls(id)).toHaveLength(1);
		expect((await rest("GET", `/sandboxes/${id}`)).json.state).toBe("running");

		expect((await rest("DELETE", `/sandboxes/${id}`)).status).toBe(204);
		const gone = await fetchVia(env.worker.url, sandboxHost(id), "/headers", {
			headers: { accept: "application/json" },
		});
		// E2B's answer for a sandbox that is not there, which the edge gives as E2B's client proxy does.
		expect(gone.status).toBe(502);
		expect(gone.json()).toMatchObject({ sandboxId: id, message: "The sandbox was not found" });
	});

	it("does not wake a paused sandbox created without auto-resume; connect does", async () => {
		const created = await rest("POST", "/v2/sandboxes", { templateID: "base", autoPause: true });
		const id: string = created.json.sandboxID;
		await rest("POST", `/sandboxes/${id}/pause`, {});
		const refused = await fetchVia(env.worker.url, sandboxHost(id), "/headers", {
			headers: { accept: "application/json" },
		});
		expect(refused.status).toBe(502);
		expect(refused.json()).toMatchObject({ sandboxId: id, message: "The sandbox was not found" });
		expect(resumeCalls(id)).toHaveLength(1);
		expect((await rest("GET", `/sandboxes/${id}`)).json.state).toBe("paused");

		expect((await rest("POST", `/v2/sandboxes/${id}/connect`, { timeout: 60 })).status).toBe(201);
		expect((await fetchVia(env.worker.url, sandboxHost(id), "/headers")).status).toBe(200);
	});

	it("guards a private one with the traffic token its create answer gave", async () => {
		const created = await rest("POST", "/v2/sandboxes", {
			templateID: "base",
			network: { allowPublicTraffic: false },
		});
		const id: string = created.json.sandboxID;
		const token: string = created.json.trafficAccessToken;
		const without = await fetchVia(env.worker.url, sandboxHost(id), "/headers", {
			headers: { accept: "application/json" },
		});
		expect(without.status).toBe(403);
		const withToken = await fetchVia(env.worker.url, sandboxHost(id), "/headers", {
			headers: { "e2b-traffic-access-token": token },
		});
		expect(withToken.status).toBe(200);
	});
});
