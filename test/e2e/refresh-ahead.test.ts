import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type E2eStack, freshId, sandboxHost, startE2eStack } from "./fixture.ts";
import { fetchVia } from "./http-client.ts";

// The isolate's copy of a hot route is refreshed ahead of its end by one
// request, off its path, while every other request keeps being served from
// it: a steady stream of requests never meets a lapsed copy, so none of
// them waits on the catalog. Read from the request lines (every one logged
// here): a request whose route did not come from the isolate says so.

const routeCacheTtlMs = 1_000;
let env: E2eStack;

beforeAll(async () => {
	env = await startE2eStack({
		// The location's tier off, so that each refresh asks the sandbox's object.
		workerVars: {
			ROUTE_CACHE_TTL_MS: String(routeCacheTtlMs),
			LOCATION_CACHE_TTL_MS: "0",
			REQUEST_LOG_SAMPLE_RATE: "1",
		},
	});
});
afterAll(async () => {
	await env?.close();
});

interface RequestLine {
	sandboxId?: string;
	status: number;
	routeSource?: string;
}

function requestLines(sandboxId: string): RequestLine[] {
	return env.worker
		.logText()
		.split("\n")
		.filter((line) => line.startsWith('{"event":"request"'))
		.map((line) => JSON.parse(line) as RequestLine)
		.filter((line) => line.sandboxId === sandboxId);
}

describe("refresh ahead of the isolate's copy", () => {
	it("serves a steady stream of requests over several copies' lives from the isolate, after the first lookup", async () => {
		const id = freshId("ra");
		await env.admin.create({ id });
		expect((await fetchVia(env.worker.url, sandboxHost(id), "/")).status).toBe(200);

		// Eight connections, one request after another, for four lives of the copy.
		const until = Date.now() + 4 * routeCacheTtlMs;
		const statuses: number[] = [];
		await Promise.all(
			Array.from({ length: 8 }, async () => {
				while (Date.now() < until) statuses.push((await fetchVia(env.worker.url, sandboxHost(id), "/")).status);
			}),
		);
		expect(statuses.length).toBeGreaterThan(40);
		expect(new Set(statuses)).toEqual(new Set([200]));

		const lines = requestLines(id);
		expect(lines).toHaveLength(statuses.length + 1);
		// The first request looked the route up; without the refresh, each
		// lapse would send every connection that met it to the object.
		const pastTheIsolate = lines.filter((line) => line.routeSource !== "isolate");
		expect(pastTheIsolate).toHaveLength(1);
	});
});
