/**
 * How many ResumeSandbox calls the catalog object makes, counted by the fake
 * control plane (test/unit/fake-upstream.ts) that every outbound fetch of
 * this project reaches. Each test uses sandbox IDs of its own: the object
 * remembers failures, so a second lookup of a failed sandbox need not call.
 */
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { LookupResult } from "../../src/catalog/route.ts";
import type { ResumeCredentials } from "../../src/resume-types.ts";
import { freshSandboxId, headerOf, nodeDeliveries, resumeCalls, scriptNode, scriptResume } from "./upstream.ts";
import { grpcCode } from "./upstream-model.ts";

function lookup(sandboxId: string, credentials: ResumeCredentials): Promise<LookupResult> {
	return env.SANDBOX_ROUTE.getByName(sandboxId).lookup(sandboxId, credentials) as Promise<LookupResult>;
}

/** Resolves once the fake control plane has received `count` calls for the sandbox. */
async function callsReceived(sandboxId: string, count: number): Promise<void> {
	for (let attempt = 0; attempt < 500; attempt++) {
		if ((await resumeCalls(sandboxId)).length >= count) return;
		await new Promise((resolve) => setTimeout(resolve, 5));
	}
	throw new Error(`the control plane never received ${count} call(s) for ${sandboxId}`);
}

// Node IPs here are from TEST-NET-2, which the fake's unscripted answers never give.
// Long enough that every concurrent caller arrives while the call is in flight.
const slowAnswerMs = 400;

describe("resume coalescing, counted at the control plane", () => {
	it("wakes a paused sandbox with exactly one ResumeSandbox call for 25 concurrent lookups", async () => {
		const sandboxId = freshSandboxId("coalesce");
		// Every one of the 25 must join, and say so: slower still, for a loaded machine.
		await scriptResume({ sandboxId, answers: [{ kind: "ok", ip: "198.51.100.1" }], delayMs: 4 * slowAnswerMs });

		// Whatever their ports and tokens: every waiter joins the one call.
		const results = await Promise.all(
			Array.from({ length: 25 }, (_, i) =>
				lookup(sandboxId, {
					port: 3000 + (i % 5),
					...(i % 3 === 0 ? { trafficAccessToken: `token-${i}` } : {}),
					...(i % 4 === 0 ? { envdAccessToken: `envd-${i}` } : {}),
				}),
			),
		);

		const calls = await resumeCalls(sandboxId);
		expect(calls).toHaveLength(1);
		expect(calls[0]?.sandboxId).toBe(sandboxId);
		const first = results[0];
		expect(first).toMatchObject({ ok: true, route: { nodeIp: "198.51.100.1" } });
		// One wake, one route: every caller got the same learning of it, and
		// all but the one whose call woke it say they joined.
		const route = first?.ok ? first.route : undefined;
		for (const result of results) expect(result).toMatchObject({ ok: true, route });
		expect(results.map((result) => (result.ok ? result.wake : undefined)).sort()).toEqual([
			...Array(results.length - 1).fill("joined"),
			"resumed",
		]);
	});

	it("forwards each of 12 concurrent requests for a paused sandbox after one ResumeSandbox call", async () => {
		const sandboxId = freshSandboxId("coalescehttp");
		const nodeIp = "198.51.100.2";
		await scriptResume({ sandboxId, answers: [{ kind: "ok", ip: nodeIp }], delayMs: slowAnswerMs });
		await scriptNode({ ip: nodeIp, answers: [{ kind: "echo" }] });

		const responses = await Promise.all(
			Array.from({ length: 12 }, (_, i) =>
				exports.default.fetch(
					new Request(`http://${3000 + (i % 2)}-${sandboxId}.localhost/item/${i}`, {
						headers: { accept: "application/json", "cf-connecting-ip": `203.0.113.${i + 1}` },
					}),
				),
			),
		);
		for (const response of responses) expect(response.status).toBe(200);
		await Promise.all(responses.map((response) => response.arrayBuffer()));

		expect(await resumeCalls(sandboxId)).toHaveLength(1);
		const deliveries = await nodeDeliveries(nodeIp);
		expect(deliveries.map((record) => new URL(record.url).pathname).sort()).toEqual(
			Array.from({ length: 12 }, (_, i) => `/item/${i}`).sort(),
		);
	});

	it("makes one call per wake: a sandbox that was woken and then lost its route is woken again with one more", async () => {
		const sandboxId = freshSandboxId("rewake");
		await scriptResume({
			sandboxId,
			answers: [
				{ kind: "ok", ip: "198.51.100.3" },
				{ kind: "ok", ip: "198.51.100.4" },
			],
			delayMs: 100,
		});
		const firstWake = await Promise.all(Array.from({ length: 5 }, () => lookup(sandboxId, { port: 3000 })));
		expect(await resumeCalls(sandboxId)).toHaveLength(1);
		const first = firstWake[0];
		if (first === undefined || !first.ok) throw new Error("expected the first wake to give a route");

		expect(await env.SANDBOX_ROUTE.getByName(sandboxId).invalidate(first.route)).toBe(true);
		const secondWake = await Promise.all(Array.from({ length: 5 }, () => lookup(sandboxId, { port: 3000 })));
		expect(await resumeCalls(sandboxId)).toHaveLength(2);
		for (const result of secondWake) expect(result).toMatchObject({ ok: true, route: { nodeIp: "198.51.100.4" } });
	});
});

describe("a refusal answers only the credentials it was made with", () => {
	const owner: ResumeCredentials = { port: 3000, trafficAccessToken: "owner-token" };
	const stranger: ResumeCredentials = { port: 3000, trafficAccessToken: "stranger-token" };

	it("lets a waiter with other credentials make its own call when the call it joined is refused", async () => {
		const sandboxId = freshSandboxId("refusedother");
		await scriptResume({
			sandboxId,
			answers: [{ kind: "ok", ip: "198.51.100.11" }],
			allowedTrafficToken: "owner-token",
			delayMs: slowAnswerMs,
		});

		const strangers = lookup(sandboxId, stranger);
		// The owner arrives while the stranger's call is in flight, and joins it.
		await callsReceived(sandboxId, 1);
		const owners = lookup(sandboxId, owner);

		expect(await strangers).toMatchObject({ ok: false, error: { code: "resume_forbidden" } });
		expect(await owners).toMatchObject({ ok: true, route: { nodeIp: "198.51.100.11" } });
		const calls = await resumeCalls(sandboxId);
		expect(calls.map((call) => headerOf(call, "e2b-traffic-access-token"))).toEqual(["stranger-token", "owner-token"]);
	});

	it("gives a waiter with the refused call's own credentials that refusal, without another call", async () => {
		const sandboxId = freshSandboxId("refusedsame");
		await scriptResume({
			sandboxId,
			answers: [{ kind: "ok", ip: "198.51.100.12" }],
			allowedTrafficToken: "owner-token",
			delayMs: slowAnswerMs,
		});

		const first = lookup(sandboxId, stranger);
		await callsReceived(sandboxId, 1);
		const second = lookup(sandboxId, { ...stranger });

		for (const result of await Promise.all([first, second])) {
			expect(result).toMatchObject({ ok: false, error: { code: "resume_forbidden" } });
		}
		expect(await resumeCalls(sandboxId)).toHaveLength(1);
	});

	it("still wakes the sandbox for its owner after a stranger was refused", async () => {
		const sandboxId = freshSandboxId("refusedlater");
		await scriptResume({
			sandboxId,
			answers: [{ kind: "ok", ip: "198.51.100.13" }],
			allowedTrafficToken: "owner-token",
		});

		expect(await lookup(sandboxId, stranger)).toMatchObject({ ok: false, error: { code: "resume_forbidden" } });
		expect(await lookup(sandboxId, owner)).toMatchObject({ ok: true, route: { nodeIp: "198.51.100.13" } });
		expect(await resumeCalls(sandboxId)).toHaveLength(2);
	});

	it("does not let a refusal of any kind other than PermissionDenied be retried by a waiter with other credentials", async () => {
		const sandboxId = freshSandboxId("notfoundother");
		await scriptResume({
			sandboxId,
			answers: [{ kind: "status", code: grpcCode.notFound, message: "sandbox not found" }],
			delayMs: slowAnswerMs,
		});

		const first = lookup(sandboxId, stranger);
		await callsReceived(sandboxId, 1);
		const second = lookup(sandboxId, owner);

		for (const result of await Promise.all([first, second])) {
			expect(result).toMatchObject({ ok: false, error: { code: "sandbox_not_found" } });
		}
		// NotFound is the sandbox's, not the caller's: one call answers everyone.
		expect(await resumeCalls(sandboxId)).toHaveLength(1);
	});
});
