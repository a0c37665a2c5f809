import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { catalogSecret, type E2eStack, startE2eStack } from "./fixture.ts";

// The README's walk-through, run as written, against a stack on ports other
// than the defaults: its commands must reach that stack through the
// variables `npm start` tells a second terminal to export.
const root = fileURLToPath(new URL("../..", import.meta.url));
const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");

/** The `sh` blocks of the README section that starts with `heading`, in order. */
function shBlocks(heading: string): string[] {
	const start = readme.indexOf(`\n${heading}\n`);
	if (start === -1) throw new Error(`README has no "${heading}"`);
	const end = readme.indexOf("\n## ", start + 1);
	const section = readme.slice(start, end === -1 ? undefined : end);
	return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((match) => match[1] ?? "");
}

/** A block's commands, one a line, without comments (none of these lines has a `#` inside a string). */
function commands(block: string): string[] {
	return block
		.split("\n")
		.map((line) => line.replace(/\s+#.*$/, "").trim())
		.filter((line) => line !== "" && !line.startsWith("#"));
}

let e2e: E2eStack;
let env: NodeJS.ProcessEnv;

/** One command through bash, with the environment a second terminal would have after the `export`. */
async function sh(command: string): Promise<string> {
	const { stdout } = await promisify(execFile)("bash", ["-e", "-c", command], { cwd: root, env, timeout: 30_000 });
	return stdout;
}

beforeAll(async () => {
	e2e = await startE2eStack();
	const workerPort = e2e.worker.url.port;
	const controlPlanePort = new URL(e2e.stack.controlPlaneUrl).port;
	// Not the defaults, or the test would pass against a stack that is not there.
	expect(workerPort).not.toBe("8787");
	expect(controlPlanePort).not.toBe("8790");
	env = {
		...process.env,
		WORKER_PORT: workerPort,
		CONTROL_PLANE_PORT: controlPlanePort,
		// `npm start` and `route` take it from .dev.vars; this stack has its own.
		CATALOG_SECRET: catalogSecret,
		CONTROL_PLANE_ADMIN_URL: "",
		NO_COLOR: "1",
	};
}, 60_000);
afterAll(async () => {
	await e2e?.close();
});

describe("the README's walk-through, on other ports", () => {
	it("uses the port variables in every command that names the Worker's port", () => {
		for (const block of shBlocks("### Walk-through")) {
			for (const line of commands(block)) {
				if (/8787/.test(line)) expect(line).toMatch(/\$\{WORKER_PORT:-8787\}|process\.env\.WORKER_PORT/);
			}
		}
	});

	it("creates, serves, pauses and wakes mybox as it says", async () => {
		const [walk = ""] = shBlocks("### Walk-through");
		const lines = commands(walk);
		expect(lines).toHaveLength(9);
		const outputs: string[] = [];
		for (const line of lines) outputs.push(await sh(line));
		const [created, firstCurl, pushedRoute, noCalls, paused, noRoute, wakingCurl, listed, oneCall] = outputs;
		expect(created).toContain("id:     mybox");
		expect(firstCurl).toMatch(/^HTTP\/1\.1 200 /);
		expect(pushedRoute).toContain('"source": "push"');
		expect(noCalls).toContain("no ResumeSandbox calls received yet");
		expect(paused).toContain("mybox: paused");
		expect(noRoute).toContain("mybox: the catalog holds no route");
		expect(wakingCurl).toMatch(/^HTTP\/1\.1 200 /);
		expect(listed).toMatch(/mybox\s+running/);
		expect(oneCall?.match(/\bmybox\b/g)).toHaveLength(1);
	}, 120_000);

	it("echoes through the WebSocket snippet, which wakes the paused sandbox", async () => {
		const [, websocket = ""] = shBlocks("### Walk-through");
		expect(
			await sh(`npm run -s sandbox -- create wsbox >/dev/null && ${websocket.replaceAll("mybox", "wsbox")}`),
		).toContain("echo: hello through the edge");
		expect(e2e.stack.controlPlane.calls().filter((call) => call.sandboxId === "wsbox")).toHaveLength(1);
	}, 60_000);

	it("refuses a bad port naming mybox, and an unknown sandbox with E2B's 502", async () => {
		const [, , others = ""] = shBlocks("### Walk-through");
		const lines = commands(others);
		const badPort = lines.find((line) => line.includes("//0-mybox."));
		const unknown = lines.find((line) => line.includes("//3000-nosuchbox."));
		expect(badPort).toBeDefined();
		expect(unknown).toBeDefined();
		const refused = await sh(badPort ?? "");
		expect(refused).toMatch(/^HTTP\/1\.1 400 /);
		expect(refused).toMatch(/"sandboxId":"mybox",.*"reason":"invalid_port"}\n$/);
		expect(await sh(unknown ?? "")).toMatch(/^HTTP\/1\.1 502 [\s\S]*The sandbox was not found/);
	}, 60_000);
});
