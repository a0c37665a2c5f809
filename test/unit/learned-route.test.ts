import { evictDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, expect, it, vi } from "vitest";
import { spyUpstream } from "./spied-upstream.ts";

afterEach(() => {
	vi.restoreAllMocks();
});

it("answers the waiters of a resume with the route before it is saved, and saves it after", {
	timeout: 20_000,
}, async () => {
	const upstream = spyUpstream({ resume: () => ({ kind: "ok", ip: "10.7.7.7" }), resumeDelayMs: 50 });
	const id = `learned${Date.now().toString(36)}`;
	const stub = env.SANDBOX_ROUTE.getByName(id);
	const results = await Promise.all(Array.from({ length: 5 }, () => stub.lookup(id, { port: 3000 })));
	for (const result of results) expect(result).toMatchObject({ ok: true, route: { nodeIp: "10.7.7.7" } });
	expect(upstream.resumes).toHaveLength(1);

	// Saved once the answers went: it outlives the object's eviction.
	await vi.waitFor(async () => expect(await stub.describe()).toMatchObject({ nodeIp: "10.7.7.7", source: "resume" }), {
		timeout: 10_000,
	});
	await evictDurableObject(stub);
	expect(await env.SANDBOX_ROUTE.getByName(id).describe()).toMatchObject({ nodeIp: "10.7.7.7", source: "resume" });
	expect(upstream.resumes).toHaveLength(1);
});

it("lets a push after a resume replace the learned route, in storage too", async () => {
	spyUpstream({ resume: () => ({ kind: "ok", ip: "10.7.7.8" }) });
	const id = `learnedpush${Date.now().toString(36)}`;
	const stub = env.SANDBOX_ROUTE.getByName(id);
	const lookup = stub.lookup(id, { port: 3000 });
	await lookup;
	await stub.write(id, [
		{ op: "put", route: { nodeIp: "10.7.7.9", executionId: "exec-9", ttlSeconds: 600, details: {} } },
	]);
	await new Promise((resolve) => setTimeout(resolve, 20));
	await evictDurableObject(stub);
	expect(await env.SANDBOX_ROUTE.getByName(id).describe()).toMatchObject({ nodeIp: "10.7.7.9", source: "push" });
});
