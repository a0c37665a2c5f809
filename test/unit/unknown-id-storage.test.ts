import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { SandboxRoute } from "../../src/catalog/sandbox-route.ts";
import { spyUpstream } from "./spied-upstream.ts";
import { grpcCode } from "./upstream-model.ts";

// An object asked about an ID the control plane does not know learns
// nothing, and so stores nothing: its not-found is kept in memory only.

let counter = 0;
function freshSandboxId(): string {
	counter += 1;
	return `unknown${counter}${Date.now().toString(36)}`;
}

afterEach(() => {
	vi.restoreAllMocks();
});

async function storedState(sandboxId: string) {
	const stub = env.SANDBOX_ROUTE.getByName(sandboxId);
	return runInDurableObject(stub, async (_instance: SandboxRoute, state) => ({
		tables: state.storage.sql
			.exec<{ name: string }>(
				"SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'",
			)
			.toArray()
			.map((row) => row.name),
		kv: [...state.storage.kv.list()].map(([key]) => key),
		alarm: await state.storage.getAlarm(),
	}));
}

describe("an object for an ID the control plane does not know", () => {
	it("stores nothing, remembers its not-found in memory, and after an eviction costs one more RPC", async () => {
		const upstream = spyUpstream({ resume: () => ({ kind: "status", code: grpcCode.notFound, message: "not found" }) });
		const sandboxId = freshSandboxId();
		const stub = env.SANDBOX_ROUTE.getByName(sandboxId);
		const ask = () => stub.lookup(sandboxId, { port: 3000 }, "203.0.113.9");
		expect(await ask()).toMatchObject({ ok: false, error: { code: "sandbox_not_found" } });
		expect(await ask()).toMatchObject({ ok: false, error: { code: "sandbox_not_found" } });
		expect(upstream.resumes).toHaveLength(1);
		expect(await storedState(sandboxId)).toEqual({ tables: [], kv: [], alarm: null });

		// The cost of keeping it in memory: an evicted object asks once more.
		await evictDurableObject(stub);
		expect(await ask()).toMatchObject({ ok: false, error: { code: "sandbox_not_found" } });
		expect(upstream.resumes).toHaveLength(2);
		expect(await storedState(sandboxId)).toEqual({ tables: [], kv: [], alarm: null });
	});

	it("stores nothing either when the control plane is down (its backoff is kept in memory)", async () => {
		spyUpstream({ resume: () => ({ kind: "status", code: grpcCode.unavailable, message: "down" }) });
		const sandboxId = freshSandboxId();
		const result = await env.SANDBOX_ROUTE.getByName(sandboxId).lookup(sandboxId, { port: 3000 }, "203.0.113.9");
		expect(result).toMatchObject({ ok: false, error: { code: "control_plane_unavailable" } });
		expect(await storedState(sandboxId)).toEqual({ tables: [], kv: [], alarm: null });
	});
});
