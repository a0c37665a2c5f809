import { env, exports } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { LocationCache } from "../../src/catalog/location-cache.ts";
import worker from "../../src/index.ts";
import { notHere, spyUpstream } from "./spied-upstream.ts";

afterEach(() => {
	vi.restoreAllMocks();
});

let counter = 0;
function freshId(label: string): string {
	counter += 1;
	return `loc${label}${counter}${Date.now().toString(36)}`;
}

const route = (nodeIp: string, now: number) => ({ nodeIp, learnedAt: now, expiresAt: now + 300_000 });

describe("LocationCache", () => {
	const cache = new LocationCache({ ttlMs: 5_000, keyOrigin: "https://edge.localhost" });

	it("keeps a route for its TTL, and no longer", async () => {
		const id = freshId("ttl");
		const now = Date.now();
		await cache.put(id, { kind: "route", route: route("10.0.0.1", now) }, now);
		expect((await cache.get(id, now + 4_999))?.entry).toEqual({ kind: "route", route: route("10.0.0.1", now) });
		expect((await cache.get(id, now))?.cachedUntil).toBe(now + 5_000);
		expect(await cache.get(id, now + 5_000)).toBeUndefined();
	});

	it("keeps a failure no longer than the object does", async () => {
		const id = freshId("fail");
		const now = Date.now();
		const failure = { code: "sandbox_not_found" as const };
		await cache.put(id, { kind: "failure", failure, until: now + 2_500 }, now);
		expect((await cache.get(id, now + 2_000))?.entry).toEqual({ kind: "failure", failure, until: now + 2_500 });
		expect(await cache.get(id, now + 2_500)).toBeUndefined();
	});

	it("stores nothing that would last under a second, and forgets on delete", async () => {
		const short = freshId("short");
		const now = Date.now();
		await cache.put(short, { kind: "failure", failure: { code: "sandbox_not_found" }, until: now + 900 }, now);
		expect(await cache.get(short, now)).toBeUndefined();
		const deleted = freshId("deleted");
		await cache.put(deleted, { kind: "route", route: route("10.0.0.2", now) }, now);
		await cache.delete(deleted);
		expect(await cache.get(deleted, now)).toBeUndefined();
	});

	it("is off below a second of TTL", async () => {
		const off = new LocationCache({ ttlMs: 999, keyOrigin: "https://edge.localhost" });
		const id = freshId("off");
		await off.put(id, { kind: "route", route: route("10.0.0.3", Date.now()) });
		expect(off.enabled).toBe(false);
		expect(await off.get(id)).toBeUndefined();
	});
});

describe("the location tier in the Worker", () => {
	it("asks the object once for a sandbox that every isolate of the location misses", async () => {
		// The isolate cache is off for this file's isolate: every request misses it.
		let objectCalls = 0;
		const counted = {
			...env,
			ROUTE_CACHE_TTL_MS: "0",
			SANDBOX_ROUTE: new Proxy(env.SANDBOX_ROUTE, {
				get(target, property, receiver) {
					if (property !== "getByName") return Reflect.get(target, property, receiver);
					return (name: string, options?: DurableObjectNamespaceGetDurableObjectOptions) => {
						objectCalls += 1;
						return target.getByName(name, options);
					};
				},
			}),
		};
		const pending: Promise<unknown>[] = [];
		const ctx = {
			waitUntil: (promise: Promise<unknown>) => pending.push(promise),
			passThroughOnException: () => {},
			props: {},
		} as unknown as ExecutionContext;
		const send = async (request: Request) => {
			const response = await worker.fetch(request, counted, ctx);
			await Promise.all(pending.splice(0));
			return response;
		};

		const id = freshId("tier");
		const pushed = await send(
			new Request(`http://edge.localhost/v1/sandboxes/${id}`, {
				method: "PUT",
				headers: { authorization: "Bearer unit-test-catalog-secret", "content-type": "application/json" },
				body: JSON.stringify({ orchestrator_ip: "10.1.2.3", execution_id: "exec-1", ttl_seconds: 600 }),
			}),
		);
		expect(pushed.status).toBe(204);
		objectCalls = 0;

		// The node answers every forwarded request.
		const nodeRequests: string[] = [];
		vi.spyOn(globalThis, "fetch").mockImplementation(async (input) => {
			nodeRequests.push(new Request(input).url);
			return new Response("from the node");
		});
		for (let i = 0; i < 20; i++) {
			const response = await send(
				new Request("http://localhost/", { headers: { "e2b-sandbox-id": id, "e2b-sandbox-port": "3000" } }),
			);
			expect(await response.text()).toBe("from the node");
		}
		expect(nodeRequests).toHaveLength(20);
		expect(nodeRequests.every((url) => url.startsWith("http://10.1.2.3:5007/"))).toBe(true);
		expect(objectCalls).toBe(1);
	});
});

describe("a stale route in the location's cache", () => {
	it("is caught by the node's 'not here', dropped from the location, and the sandbox is resumed", {
		timeout: 20_000,
	}, async () => {
		const id = freshId("stale");
		// Another location's write moved the sandbox; this location still holds its old node.
		const now = Date.now();
		const location = new LocationCache({ ttlMs: 5_000, keyOrigin: "https://edge.localhost" });
		await location.put(id, { kind: "route", route: route("10.9.9.1", now) }, now);
		const upstream = spyUpstream({
			resume: () => ({ kind: "ok", ip: "10.9.9.2" }),
			nodes: {
				"10.9.9.1": notHere,
				"10.9.9.2": () => new Response("from the new node"),
			},
		});
		const response = await exports.default.fetch(
			new Request("http://localhost/", { headers: { "e2b-sandbox-id": id, "e2b-sandbox-port": "3000" } }),
		);
		expect(await response.text()).toBe("from the new node");
		expect(upstream.nodes.get("10.9.9.1")).toHaveLength(1);
		expect(upstream.resumes.map((call) => call.sandboxId)).toEqual([id]);
		// The location now holds the new node, once the write that follows the answer lands.
		await vi.waitFor(
			async () => {
				const entry = (await location.get(id))?.entry;
				expect(entry?.kind === "route" && entry.route.nodeIp).toBe("10.9.9.2");
			},
			{ timeout: 10_000 },
		);
	});
});

describe("puts of one route", () => {
	it("are made once by an isolate, however many requests learned the route at once", async () => {
		const cache = new LocationCache({ ttlMs: 5_000, keyOrigin: "https://edge.localhost" });
		const id = freshId("once");
		const now = Date.now();
		const cachePut = vi.spyOn(Cache.prototype, "put");
		await Promise.all(
			Array.from({ length: 50 }, () => cache.put(id, { kind: "route", route: route("10.0.0.9", now) }, now)),
		);
		expect(cachePut).toHaveBeenCalledTimes(1);
		// Another route, or the same one after a delete, is put again.
		await cache.put(id, { kind: "route", route: route("10.0.0.10", now) }, now);
		await cache.delete(id);
		await cache.put(id, { kind: "route", route: route("10.0.0.10", now) }, now);
		expect(cachePut).toHaveBeenCalledTimes(3);
	});
});
