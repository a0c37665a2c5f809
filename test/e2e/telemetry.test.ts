import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { gunzipSync, gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
	catalogSecret,
	type E2eStack,
	freshId,
	type RunningWorker,
	sandboxHost,
	startE2eStack,
	startWorker,
} from "./fixture.ts";
import { echo, fetchVia, openWebSocket } from "./http-client.ts";
import { until } from "./until.ts";

// What an operator sees of each request: one JSON log line, Server-Timing,
// and Sandbox-Edge-Wake on a response that woke a sandbox or waited for it.

let env: E2eStack;

beforeAll(async () => {
	env = await startE2eStack({ resumeDelayMs: 300, catalogWrites: false });
});
afterAll(async () => {
	await env?.close();
});

interface RequestLine {
	event: string;
	requestId: string;
	sandboxId?: string;
	port?: number;
	status: number;
	reason?: string;
	routeSource?: string;
	negativeHit?: string;
	wake?: string;
	durationMs: number;
	lookupMs?: number;
	resumeMs?: number;
	waitMs?: number;
	nodeMs?: number;
}

function requestLines(sandboxId: string, worker = env.worker): (RequestLine & { sampleRate?: number })[] {
	return worker
		.logText()
		.split("\n")
		.filter((line) => line.startsWith('{"event":"request"'))
		.map((line) => JSON.parse(line) as RequestLine)
		.filter((line) => line.sandboxId === sandboxId);
}

/** Runs `check` against a Worker of its own, with `vars` over the stack's, and closes it. */
async function withWorker(
	vars: Record<string, string>,
	check: (worker: RunningWorker) => Promise<void>,
): Promise<void> {
	const worker = await startWorker({ ...env.vars, ...vars });
	try {
		await check(worker);
	} finally {
		await worker.close();
	}
}

function timing(header: string | string[] | undefined): Map<string, { desc?: string; dur?: number }> {
	const metrics = new Map<string, { desc?: string; dur?: number }>();
	for (const part of String(header ?? "").split(",")) {
		const [name = "", ...params] = part.trim().split(";");
		const metric: { desc?: string; dur?: number } = {};
		for (const param of params) {
			const [key, value = ""] = param.split("=");
			if (key === "dur") metric.dur = Number(value);
			if (key === "desc") metric.desc = value.replace(/^"|"$/g, "");
		}
		metrics.set(name, metric);
	}
	return metrics;
}

describe("telemetry by phase", () => {
	it("says that a cold request woke the sandbox, how long each phase took, and logs one line for it", async () => {
		const id = freshId("tm");
		await env.admin.create({ id });
		await env.admin.pause(id);
		const response = await fetchVia(env.worker.url, sandboxHost(id), "/");
		expect(response.status).toBe(200);

		const phases = timing(response.headers["server-timing"]);
		expect(phases.get("route")?.desc).toBe("resume");
		expect(phases.get("resume")?.dur).toBeGreaterThanOrEqual(300);
		expect(phases.get("node")?.dur).toBeGreaterThanOrEqual(0);
		expect(phases.get("edge")?.dur).toBeGreaterThanOrEqual(phases.get("resume")?.dur ?? 0);
		expect(response.headers["sandbox-edge-wake"]).toMatch(/^resumed; wait=\d+$/);

		const lines = await until("the request's log line", () => requestLines(id).length === 1 && requestLines(id));
		expect(lines[0]).toMatchObject({ port: 3000, status: 200, routeSource: "resume", wake: "resumed" });
		expect(lines[0]?.requestId).toMatch(/^[\w-]{8,}$/);
		expect(lines[0]?.resumeMs).toBeGreaterThanOrEqual(300);

		// The next request finds the route in the isolate: by default it is not
		// timed, since adding the header costs the hot path a rebuilt response.
		const hot = await fetchVia(env.worker.url, sandboxHost(id), "/");
		expect(hot.headers["server-timing"]).toBeUndefined();
		expect(hot.headers["sandbox-edge-wake"]).toBeUndefined();
	});

	it("marks one request of a burst as the wake and the others as joined, with the wait each saw", async () => {
		const id = freshId("tm");
		await env.admin.create({ id });
		await env.admin.pause(id);
		// The wake is held long enough that all six arrive while it goes on, even on a loaded machine.
		await env.admin.setFault({ sandboxId: id, delayMs: 2000, times: 1 });
		const responses = await Promise.all(
			Array.from({ length: 6 }, () => fetchVia(env.worker.url, sandboxHost(id), "/headers")),
		);
		await env.admin.clearFault();
		const wakes = responses.map((r) => String(r.headers["sandbox-edge-wake"]).split(";")[0]);
		expect(wakes.filter((wake) => wake === "resumed")).toHaveLength(1);
		expect(wakes.filter((wake) => wake === "joined")).toHaveLength(5);
		for (const response of responses) {
			expect(Number(/wait=(\d+)/.exec(String(response.headers["sandbox-edge-wake"]))?.[1])).toBeGreaterThan(0);
		}
		const lines = await until("six log lines", () => requestLines(id).length === 6 && requestLines(id));
		expect(lines.filter((line) => line.wake === "joined")).toHaveLength(5);
	});

	it("logs an error with its reason, and a failure answered from the isolate's memory as a negative-cache hit", async () => {
		const id = freshId("nope");
		for (let i = 0; i < 2; i++) {
			const response = await fetchVia(env.worker.url, sandboxHost(id), "/", {
				headers: { accept: "application/json" },
			});
			expect(response.status).toBe(502);
			expect(timing(response.headers["server-timing"]).has("edge")).toBe(true);
		}
		const lines = await until("two log lines", () => requestLines(id).length === 2 && requestLines(id));
		expect(lines.map((line) => line.reason)).toEqual(["sandbox_not_found", "sandbox_not_found"]);
		expect(lines[1]?.negativeHit).toBe("isolate");
		// Nothing of the request's headers, tokens or body is in the line.
		expect(JSON.stringify(lines)).not.toContain("accept");
	});

	it("leaves a WebSocket's 101 alone, and logs it", async () => {
		const id = freshId("tm");
		await env.admin.create({ id });
		await env.admin.pause(id);
		const socket = await openWebSocket(env.worker.url, sandboxHost(id), "/ws");
		try {
			expect(await echo(socket, "ping")).toBe("ping");
		} finally {
			socket.close();
		}
		const lines = await until("the upgrade's log line", () => requestLines(id).length === 1 && requestLines(id));
		expect(lines[0]).toMatchObject({ status: 101, wake: "resumed" });
	});
});

describe("sampled request lines (REQUEST_LOG_SAMPLE_RATE)", () => {
	it("logs every request that did something, and no routine one at rate 0", async () => {
		await withWorker({ REQUEST_LOG_SAMPLE_RATE: "0" }, async (worker) => {
			const id = freshId("tm");
			await env.admin.create({ id });
			await env.admin.pause(id);
			expect((await fetchVia(worker.url, sandboxHost(id), "/")).status).toBe(200);
			for (let i = 0; i < 20; i++) expect((await fetchVia(worker.url, sandboxHost(id), "/")).status).toBe(200);
			const unknown = freshId("nope");
			expect((await fetchVia(worker.url, sandboxHost(unknown), "/")).status).toBe(502);
			const lines = await until(
				"the error's log line",
				() => requestLines(unknown, worker).length === 1 && requestLines(id, worker),
			);
			expect(lines).toHaveLength(1);
			expect(lines[0]).toMatchObject({ wake: "resumed", routeSource: "resume" });
			expect(requestLines(unknown, worker)[0]).toMatchObject({ status: 502, reason: "sandbox_not_found" });
		});
	});

	it("keeps routine requests at the rate, each line saying it, so that totals can be read back", async () => {
		await withWorker({ REQUEST_LOG_SAMPLE_RATE: "0.5" }, async (worker) => {
			const id = freshId("tm");
			await env.admin.create({ id });
			await env.admin.pause(id);
			const sent = 201;
			for (let i = 0; i < sent; i++) expect((await fetchVia(worker.url, sandboxHost(id), "/")).status).toBe(200);
			const lines = requestLines(id, worker);
			const [wake, ...routine] = lines;
			expect(wake).toMatchObject({ wake: "resumed" });
			expect(wake).not.toHaveProperty("sampleRate");
			// Binomial(200, 0.5): 100 ± 7; five deviations either way.
			expect(routine.length).toBeGreaterThan(65);
			expect(routine.length).toBeLessThan(135);
			for (const line of routine) expect(line).toMatchObject({ routeSource: "isolate", sampleRate: 0.5 });
			const estimated = lines.reduce((total, line) => total + 1 / (line.sampleRate ?? 1), 0);
			expect(Math.abs(estimated - sent)).toBeLessThan(72);
		});
	});
});

describe("SERVER_TIMING=all", () => {
	it("times the hot path too", async () => {
		await withWorker({ SERVER_TIMING: "all" }, async (worker) => {
			const id = freshId("tm");
			await env.admin.create({ id });
			await env.admin.pause(id);
			expect((await fetchVia(worker.url, sandboxHost(id), "/")).status).toBe(200);
			const hot = await fetchVia(worker.url, sandboxHost(id), "/");
			const phases = timing(hot.headers["server-timing"]);
			expect(phases.get("route")?.desc).toBe("isolate");
			expect(phases.has("resume")).toBe(false);
			expect(phases.get("node")?.dur).toBeGreaterThanOrEqual(0);
		});
	});
});

describe("Server-Timing off", () => {
	it("is left out with SERVER_TIMING=off, while a wake is still said", async () => {
		await withWorker({ SERVER_TIMING: "off" }, async (worker) => {
			const id = freshId("tm");
			await env.admin.create({ id });
			await env.admin.pause(id);
			const cold = await fetchVia(worker.url, sandboxHost(id), "/");
			expect(cold.status).toBe(200);
			expect(cold.headers["server-timing"]).toBeUndefined();
			expect(cold.headers["sandbox-edge-wake"]).toMatch(/^resumed/);
			const hot = await fetchVia(worker.url, sandboxHost(id), "/");
			expect(hot.headers["server-timing"]).toBeUndefined();
		});
	});
});

describe("a compressed body", () => {
	let node: Server;
	const original = Buffer.from("hello, compressed world\n".repeat(200));
	const gzipped = gzipSync(original);

	beforeAll(async () => {
		// A node whose app answers gzip: the edge adds its headers and must pass the body as it came.
		node = createServer((_, res) => {
			res.writeHead(200, { "content-type": "text/plain", "content-encoding": "gzip" });
			res.end(gzipped);
		});
		await new Promise<void>((resolve) => node.listen(0, "127.0.0.1", resolve));
	});
	afterAll(async () => {
		await new Promise((resolve) => node.close(resolve));
	});

	it("reaches the client encoded once, as the node sent it, with the edge's headers added", async () => {
		const port = (node.address() as AddressInfo).port;
		await withWorker({ NODE_ORIGIN_TEMPLATE: `http://{ip}:${port}` }, async (worker) => {
			const id = freshId("gz");
			const pushed = await fetchVia(worker.url, "edge.localhost", `/v1/sandboxes/${id}`, {
				method: "PUT",
				headers: { authorization: `Bearer ${catalogSecret}`, "content-type": "application/json" },
				body: JSON.stringify({ orchestrator_ip: "127.0.0.1", execution_id: "e1", ttl_seconds: 600 }),
			});
			expect(pushed.status).toBeLessThan(300);
			const response = await fetchVia(worker.url, sandboxHost(id), "/", { headers: { "accept-encoding": "gzip" } });
			expect(response.status).toBe(200);
			expect(response.headers["content-encoding"]).toBe("gzip");
			expect(response.headers["server-timing"]).toBeDefined();
			expect(gunzipSync(response.body).equals(original)).toBe(true);
		});
	});
});
