import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type AdminClient, createAdminClient } from "../../dev/admin-client.ts";
import { DEV_TEAM_ID, type SandboxView } from "../../dev/model.ts";
import { outcomeOf, type RpcOutcome, sandboxServiceClient } from "../../dev/rpc-client.ts";
import { type Stack, startStack } from "../../dev/stack.ts";
import { type CatalogRecorder, startCatalogRecorder } from "./catalog-recorder.ts";
import { apiSecret, freshId } from "./fixture.ts";
import { fetchVia } from "./http-client.ts";
import { until } from "./until.ts";

// KeepAliveSandbox must answer as E2B's API does, in its order, and a
// sandbox with a timeout must pause by itself at its end time, as an E2B
// sandbox with auto-pause does, catalog DELETE included: the edge's keepalive
// is tested against that.
const ok: RpcOutcome = { code: "OK", message: "" };
const otherTeam = "7b0f3c52-1d6e-4a8b-9c2d-3e4f5a6b7c8d";

let stack: Stack;
let admin: AdminClient;
let catalog: CatalogRecorder;

beforeAll(async () => {
	stack = await startStack({ apiSecret, controlPlanePort: 0, nodePort: 0, resumeDelayMs: 20, pauseDelayMs: 20 });
	admin = createAdminClient(stack.controlPlaneUrl);
	catalog = await startCatalogRecorder();
	stack.connectCatalog({ edgeUrl: catalog.url, secret: "s" });
});
afterAll(async () => {
	await stack?.close();
	await catalog?.close();
});
beforeEach(() => {
	stack.controlPlane.clearFault();
});

const writesFor = (id: string) => catalog.writes.filter((write) => write.sandboxId === id);

function keepAlive(sandboxId: string, options: { teamId?: string; headers?: Record<string, string> } = {}) {
	return outcomeOf(
		sandboxServiceClient(stack.controlPlaneUrl).keepAliveSandbox(
			{ sandboxId, teamId: options.teamId ?? DEV_TEAM_ID },
			{ headers: { "x-e2b-client-proxy-auth": apiSecret, ...options.headers } },
		),
	);
}

function resume(sandboxId: string) {
	return outcomeOf(
		sandboxServiceClient(stack.controlPlaneUrl).resumeSandbox(
			{ sandboxId },
			{ headers: { "x-e2b-client-proxy-auth": apiSecret, "e2b-sandbox-request-port": "3000" } },
		),
	);
}

function view(id: string): SandboxView {
	const sandbox = stack.controlPlane.sandboxes.get(id);
	if (sandbox === undefined) throw new Error(`no sandbox ${id}`);
	return sandbox;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("KeepAliveSandbox", () => {
	it("moves a running sandbox's end time to now + its timeout, and never shortens it", async () => {
		const id = freshId();
		const timeoutMs = 5000;
		const before = Date.now();
		const created = await admin.create({ id, timeoutMs, trafficKeepalive: true });
		expect(created).toMatchObject({ teamId: DEV_TEAM_ID, trafficKeepalive: true, timeoutMs });
		expect(created.endTime).toBeGreaterThanOrEqual(before + timeoutMs);
		expect(created.endTime).toBeLessThanOrEqual(Date.now() + timeoutMs);

		await sleep(200);
		const sent = Date.now();
		expect(await keepAlive(id)).toEqual(ok);
		const moved = view(id).endTime ?? 0;
		expect(moved).toBeGreaterThanOrEqual(sent + timeoutMs);
		expect(moved).toBeGreaterThanOrEqual((created.endTime ?? 0) + 150);
		expect(moved).toBeLessThanOrEqual(Date.now() + timeoutMs);
		expect((await admin.get(id)).endTime).toBe(moved);
	});

	it("takes E2B's composite sandbox ID and any form of UUID that Go's uuid.Parse takes", async () => {
		const id = freshId();
		await admin.create({ id, trafficKeepalive: true });
		const bare = DEV_TEAM_ID.replace(/-/g, "");
		for (const teamId of [DEV_TEAM_ID.toUpperCase(), `{${DEV_TEAM_ID}}`, `urn:uuid:${DEV_TEAM_ID}`, bare]) {
			expect(await keepAlive(id, { teamId }), teamId).toEqual(ok);
		}
		expect(await keepAlive(`${id}-legacyclientid`)).toEqual(ok);
	});

	it("answers InvalidArgument for a malformed sandbox ID or a team ID that is not a UUID", async () => {
		const id = freshId();
		await admin.create({ id, trafficKeepalive: true });
		expect(await keepAlive("Not-An-ID")).toEqual({ code: "InvalidArgument", message: "invalid sandbox ID" });
		expect(await keepAlive(`${id}-a-b`)).toEqual({ code: "InvalidArgument", message: "invalid sandbox ID" });
		for (const teamId of ["dev-team", "", `${DEV_TEAM_ID}x`, DEV_TEAM_ID.replace(/-/g, "_")]) {
			expect(await keepAlive(id, { teamId }), teamId).toEqual({ code: "InvalidArgument", message: "invalid team ID" });
		}
	});

	it("answers Internal for a team that does not exist", async () => {
		const id = freshId();
		await admin.create({ id, trafficKeepalive: true });
		expect(await keepAlive(id, { teamId: "00000000-0000-4000-8000-00000000abcd" })).toEqual({
			code: "Internal",
			message: "failed to get team: team not found",
		});
	});

	it("answers NotFound for a paused, killed, unknown or other team's sandbox", async () => {
		const notFound = { code: "NotFound", message: "sandbox not found" };
		const paused = freshId();
		await admin.create({ id: paused, trafficKeepalive: true, timeoutMs: 5000 });
		await admin.pause(paused);
		expect(await keepAlive(paused)).toEqual(notFound);
		expect(view(paused)).toMatchObject({ state: "paused" });
		expect(view(paused)).not.toHaveProperty("endTime");

		const killed = freshId();
		await admin.create({ id: killed, trafficKeepalive: true });
		await admin.kill(killed);
		expect(await keepAlive(killed)).toEqual(notFound);
		expect(await keepAlive(freshId("nosuch"))).toEqual(notFound);

		const theirs = freshId();
		expect((await admin.create({ id: theirs, trafficKeepalive: true, teamId: otherTeam })).teamId).toBe(otherTeam);
		expect(await keepAlive(theirs)).toEqual(notFound);
		expect(await keepAlive(theirs, { teamId: otherTeam })).toEqual(ok);
	});

	it("answers FailedPrecondition when the sandbox's traffic keepalive is off, also once turned off after its catalog entry", async () => {
		const disabled = { code: "FailedPrecondition", message: "sandbox traffic keepalive disabled" };
		const off = freshId();
		await admin.create({ id: off, timeoutMs: 5000 });
		const endTime = view(off).endTime;
		expect(await keepAlive(off)).toEqual(disabled);
		expect(view(off).endTime).toBe(endTime);

		const turned = freshId();
		await admin.create({ id: turned, trafficKeepalive: true });
		expect(writesFor(turned).at(-1)?.body).toMatchObject({ traffic_keepalive: true });
		const written = writesFor(turned).length;
		expect(await keepAlive(turned)).toEqual(ok);
		expect((await admin.update(turned, { trafficKeepalive: false })).trafficKeepalive).toBe(false);
		expect(await keepAlive(turned)).toEqual(disabled);
		expect((await admin.update(turned, { trafficKeepalive: true })).trafficKeepalive).toBe(true);
		expect(await keepAlive(turned)).toEqual(ok);
		// E2B's policy changes without a new catalog entry; the next start or resume writes the new value.
		expect(writesFor(turned)).toHaveLength(written);
		await admin.update(turned, { trafficKeepalive: false });
		await admin.pause(turned);
		await admin.resume(turned);
		expect(writesFor(turned).at(-1)?.body).toMatchObject({ traffic_keepalive: false });
	});

	it("answers PermissionDenied for a private sandbox without its traffic token", async () => {
		const id = freshId();
		const created = await admin.create({ id, public: false, trafficKeepalive: true });
		const token = created.trafficAccessToken ?? "";
		const denied = { code: "PermissionDenied", message: "permission denied" };
		expect(await keepAlive(id)).toEqual(denied);
		expect(await keepAlive(id, { headers: { "e2b-traffic-access-token": `${token}x` } })).toEqual(denied);
		expect(await keepAlive(id, { headers: { "e2b-traffic-access-token": token } })).toEqual(ok);
	});

	it("answers AlreadyExists while the sandbox is pausing, as KeepAliveFor's 409 maps", async () => {
		const id = freshId();
		await admin.create({ id, state: "pausing", trafficKeepalive: true });
		expect(await keepAlive(id)).toEqual({ code: "AlreadyExists", message: `Sandbox "${id}" is being paused` });
	});

	it("answers OK for a sandbox without a timeout, which has no end time to move", async () => {
		const id = freshId();
		await admin.create({ id, trafficKeepalive: true });
		expect(await keepAlive(id)).toEqual(ok);
		expect(view(id)).not.toHaveProperty("endTime");
	});

	it("needs the API secret first in api_secret mode", async () => {
		expect(await keepAlive("Not-An-ID", { headers: { "x-e2b-client-proxy-auth": "wrong" } })).toEqual({
			code: "Unauthenticated",
			message: "invalid client proxy auth",
		});
	});

	it("is recorded apart from ResumeSandbox, with its team", async () => {
		const id = freshId();
		await admin.create({ id, trafficKeepalive: true });
		const resumes = stack.controlPlane.calls().length;
		await keepAlive(id);
		await keepAlive(id, { teamId: "dev-team" });
		expect(stack.controlPlane.calls()).toHaveLength(resumes);
		const recorded = stack.controlPlane.keepAliveCalls().filter((call) => call.sandboxId === id);
		expect(recorded).toMatchObject([
			{ teamId: DEV_TEAM_ID, protocol: "grpc-web", finishedAt: expect.any(Number) },
			{ teamId: "dev-team" },
		]);
		const listed = (await admin.keepAliveCalls()).filter((call) => call.sandboxId === id);
		expect(listed).toHaveLength(2);
		expect(listed[0]?.headers["x-e2b-client-proxy-auth"]).toBe("(present)");
		await admin.resetKeepAliveCalls();
		expect(stack.controlPlane.keepAliveCalls()).toEqual([]);
		expect(stack.controlPlane.calls()).toHaveLength(resumes);
	});
});

describe("faults for KeepAliveSandbox", () => {
	it("apply to that RPC only when they name it, `times` times", async () => {
		const id = freshId();
		await admin.create({ id, trafficKeepalive: true });
		await admin.pause(id);
		await admin.resume(id);
		await admin.setFault({ rpc: "KeepAliveSandbox", code: "PermissionDenied", times: 2 });
		expect(await resume(id)).toEqual(ok);
		expect((await keepAlive(id)).code).toBe("PermissionDenied");
		expect(await resume(id)).toEqual(ok);
		expect((await keepAlive(id)).code).toBe("PermissionDenied");
		expect(await keepAlive(id)).toEqual(ok);
		expect(await admin.fault()).toBeNull();
	});

	it("leave it alone when they name no RPC: the default is ResumeSandbox, as before", async () => {
		const id = freshId();
		await admin.create({ id, trafficKeepalive: true });
		await admin.pause(id);
		await admin.setFault({ code: "Unavailable" });
		expect((await resume(id)).code).toBe("Unavailable");
		await admin.resume(id);
		expect(await keepAlive(id)).toEqual(ok);
	});

	it("can be raw HTTP, garbage or a delay, and scoped to a sandbox", async () => {
		const id = freshId();
		await admin.create({ id, trafficKeepalive: true });
		await admin.setFault({ rpc: "KeepAliveSandbox", httpStatus: 502, sandboxId: id, times: 1 });
		expect((await keepAlive(id)).code).toBe("Unavailable");
		await admin.setFault({ rpc: "KeepAliveSandbox", garbage: true, times: 1 });
		expect((await keepAlive(id)).code).not.toBe("OK");
		await admin.setFault({ rpc: "KeepAliveSandbox", code: "Unavailable", sandboxId: "someoneelse" });
		expect(await keepAlive(id)).toEqual(ok);
		await admin.setFault({ rpc: "KeepAliveSandbox", delayMs: 300, times: 1 });
		const started = Date.now();
		expect(await keepAlive(id)).toEqual(ok);
		expect(Date.now() - started).toBeGreaterThanOrEqual(290);
	});

	it("refuse ok-empty-ip, which KeepAliveSandbox's empty answer cannot carry, and an unknown rpc", async () => {
		await expect(admin.setFault({ rpc: "KeepAliveSandbox", code: "ok-empty-ip" })).rejects.toMatchObject({
			status: 400,
		});
		await expect(admin.setFault({ rpc: "Nope" as never, code: "Unavailable" })).rejects.toMatchObject({ status: 400 });
		expect(await admin.fault()).toBeNull();
	});
});

describe("a sandbox with a timeout", () => {
	it("pauses by itself at its end time, and its catalog entry is deleted as a pause by hand deletes it", async () => {
		const id = freshId();
		const timeoutMs = 400;
		const created = await admin.create({ id, timeoutMs, trafficKeepalive: true });
		const put = writesFor(id)[0];
		expect(put).toMatchObject({ method: "PUT", body: { team_id: DEV_TEAM_ID, traffic_keepalive: true } });
		const executionId = put?.body?.execution_id;
		expect(executionId).toBe(created.executionId);

		await until("the sandbox to pause by itself", () => view(id).state === "paused");
		expect(Date.now()).toBeGreaterThanOrEqual(created.endTime ?? 0);
		expect(view(id)).toMatchObject({ hasSnapshot: true, timeoutMs });
		expect(view(id)).not.toHaveProperty("endTime");
		await until("the catalog DELETE", () => writesFor(id).length === 2);
		expect(writesFor(id)[1]).toEqual({ method: "DELETE", sandboxId: id, executionId });
		// The node no longer routes to it.
		expect(stack.controlPlane.sandboxes.lookup(id)).toBeUndefined();
	});

	it("gets a new end time at each resume, and pauses again", async () => {
		const id = freshId();
		// Long enough that the sandbox is still running when the test looks,
		// right after the resume, even on a loaded machine.
		const timeoutMs = 1000;
		await admin.create({ id, timeoutMs, trafficKeepalive: true });
		await until("the first auto-pause", () => view(id).state === "paused");
		const resumedAt = Date.now();
		expect(await resume(id)).toEqual(ok);
		expect(view(id).state).toBe("running");
		expect(view(id).endTime).toBeGreaterThanOrEqual(resumedAt + timeoutMs);
		await until("the second auto-pause", () => view(id).state === "paused");
		expect(Date.now()).toBeGreaterThanOrEqual(resumedAt + timeoutMs);
		expect(writesFor(id).map((write) => write.method)).toEqual(["PUT", "DELETE", "PUT", "DELETE"]);
	});

	it("stays running across several timeouts while KeepAliveSandbox keeps coming, then pauses once they stop", async () => {
		const id = freshId();
		// A keepalive every tenth of it: a loaded machine may hold one back by
		// most of a timeout before the sandbox rightly pauses.
		const timeoutMs = 1000;
		await admin.create({ id, timeoutMs, trafficKeepalive: true });
		const keptUntil = Date.now() + 3 * timeoutMs;
		let sent = 0;
		// Three timeouts, and at least six keepalives however slowly they go.
		while (Date.now() < keptUntil || sent < 6) {
			expect(await keepAlive(id)).toEqual(ok);
			sent += 1;
			expect(view(id).state).toBe("running");
			await sleep(timeoutMs / 10);
		}
		expect(view(id).state).toBe("running");
		expect(writesFor(id).map((write) => write.method)).toEqual(["PUT"]);

		const lastEnd = view(id).endTime ?? 0;
		await until("the sandbox to pause once left alone", () => view(id).state === "paused");
		expect(Date.now()).toBeGreaterThanOrEqual(lastEnd);
		await until("the catalog DELETE", () => writesFor(id).length === 2);
	});

	it("pauses anyway when KeepAliveSandbox is refused for its policy", async () => {
		const id = freshId();
		// Long enough that the keepalive comes while it still runs.
		await admin.create({ id, timeoutMs: 1000 });
		expect((await keepAlive(id)).code).toBe("FailedPrecondition");
		await until("the sandbox to pause", () => view(id).state === "paused");
	});
});

describe("the admin API and CLI for keepalive settings", () => {
	const base = () => new URL(stack.controlPlaneUrl);
	const patch = (id: string, body: string, type = "application/json") =>
		fetchVia(base(), base().host, `/admin/sandboxes/${id}`, {
			method: "PATCH",
			headers: { "content-type": type },
			body,
		});

	it("validates create's teamId and timeoutMs, and PATCH's body", async () => {
		await expect(admin.create({ teamId: "dev-team" })).rejects.toMatchObject({ status: 400 });
		await expect(admin.create({ timeoutMs: 0 })).rejects.toMatchObject({ status: 400 });
		await expect(admin.create({ timeoutMs: 3_600_001 })).rejects.toMatchObject({ status: 400 });
		await expect(admin.create({ timeoutMs: "5" as never })).rejects.toMatchObject({ status: 400 });
		const id = freshId();
		await admin.create({ id });
		expect((await patch(id, JSON.stringify({ trafficKeepalive: true }), "text/plain")).status).toBe(415);
		expect((await patch(id, JSON.stringify({ trafficKeepalive: "yes" }))).status).toBe(400);
		expect((await patch(id, JSON.stringify({ timeoutMs: 5 }))).status).toBe(400);
		expect((await patch(freshId("nosuch"), JSON.stringify({ trafficKeepalive: true }))).status).toBe(404);
		const patched = await patch(id, JSON.stringify({ trafficKeepalive: true }));
		expect(patched.status).toBe(200);
		expect(patched.json()).toMatchObject({ id, trafficKeepalive: true });
	});

	it("create takes --timeout-ms, --traffic-keepalive and --team-id; keepalive turns the policy on and off", async () => {
		const id = freshId();
		const printed = await cli("create", id, "--timeout-ms", "60000", "--traffic-keepalive", "--team-id", otherTeam);
		expect(printed).toContain(`team:   ${otherTeam}`);
		expect(printed).toContain("traffic keepalive: on");
		expect(printed).toMatch(/timeout: 60000ms; pauses at /);
		expect(view(id)).toMatchObject({ timeoutMs: 60000, trafficKeepalive: true, teamId: otherTeam });
		expect(await cli("keepalive", id, "off")).toContain(`${id}: traffic keepalive off`);
		expect(view(id).trafficKeepalive).toBe(false);
		await expect(cli("keepalive", id, "maybe")).rejects.toMatchObject({ code: 2 });
		await expect(cli("create", freshId(), "--timeout-ms", "soon")).rejects.toMatchObject({ code: 2 });
		await keepAlive(id, { teamId: otherTeam });
		expect(await cli("keepalive-calls")).toContain(otherTeam);
	});
});

const cliPath = fileURLToPath(new URL("../../dev/cli.ts", import.meta.url));

/** `npm run sandbox -- <args>`, against this stack. */
async function cli(...args: string[]): Promise<string> {
	const { stdout } = await promisify(execFile)(process.execPath, [cliPath, ...args], {
		env: { ...process.env, CONTROL_PLANE_ADMIN_URL: stack.controlPlaneUrl },
	});
	return stdout;
}
