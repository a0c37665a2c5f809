import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { bannerText, cliEnvironment, portSettings } from "../../dev/start.ts";

// `npm start` (dev/start.ts): what it says when its ports are taken, and
// what its banner tells a second terminal to export.
const root = fileURLToPath(new URL("../..", import.meta.url));
const startPath = fileURLToPath(new URL("../../dev/start.ts", import.meta.url));
const devVarsPath = fileURLToPath(new URL("../../.dev.vars", import.meta.url));

const held: Server[] = [];
afterEach(async () => {
	await Promise.all(held.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

/** A port that something listens on, as another `npm start` would. */
async function busyPort(): Promise<number> {
	const server = createServer();
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	held.push(server);
	const address = server.address();
	if (address === null || typeof address === "string") throw new Error("no port");
	return address.port;
}

/** A port that nothing listens on (closed again at once). */
async function freePort(): Promise<number> {
	const server = createServer();
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	const address = server.address();
	await new Promise((resolve) => server.close(resolve));
	if (address === null || typeof address === "string") throw new Error("no port");
	return address.port;
}

function npmStart(env: Record<string, string>): Promise<{ code: number; stderr: string; stdout: string }> {
	return new Promise((resolve) => {
		execFile(
			process.execPath,
			[startPath],
			{ cwd: root, env: { ...process.env, WRANGLER_SEND_METRICS: "false", ...env }, timeout: 20_000 },
			(error, stdout, stderr) => resolve({ code: error === null ? 0 : Number(error.code), stdout, stderr }),
		);
	});
}

function devVars(): string | undefined {
	return existsSync(devVarsPath) ? readFileSync(devVarsPath, "utf8") : undefined;
}

describe("npm start with a port taken", () => {
	it("stops before starting anything, naming the taken port and every port setting", async () => {
		const before = devVars();
		const worker = await busyPort();
		const ports = { WORKER_PORT: String(worker), CONTROL_PLANE_PORT: String(await freePort()) };
		const { code, stderr } = await npmStart({ ...ports, NODE_PORT: String(await freePort()), AUTH_MODE: "api_secret" });
		expect(code).toBe(1);
		expect(stderr).toContain(`port ${worker} (WORKER_PORT) is already in use`);
		expect(stderr).toContain("WORKER_PORT, CONTROL_PLANE_PORT and NODE_PORT");
		expect(stderr).not.toContain("TOKEN_ENDPOINT_PORT");
		// Nothing was started or written: .dev.vars is as it was (or still absent).
		expect(devVars()).toBe(before);
	});

	it("names TOKEN_ENDPOINT_PORT too with AUTH_MODE=oauth2, and a taken control-plane port", async () => {
		const controlPlane = await busyPort();
		const { code, stderr } = await npmStart({
			WORKER_PORT: String(await freePort()),
			CONTROL_PLANE_PORT: String(controlPlane),
			NODE_PORT: String(await freePort()),
			TOKEN_ENDPOINT_PORT: String(await freePort()),
			AUTH_MODE: "oauth2",
		});
		expect(code).toBe(1);
		expect(stderr).toContain(`port ${controlPlane} (CONTROL_PLANE_PORT) is already in use`);
		expect(stderr).toContain("WORKER_PORT, CONTROL_PLANE_PORT, NODE_PORT and TOKEN_ENDPOINT_PORT");
	});
});

describe("npm start's banner", () => {
	const banner = (env: Record<string, string>, mode: "api_secret" | "oauth2" = "api_secret") =>
		bannerText({
			settings: portSettings(mode, env),
			controlPlaneUrl: "http://127.0.0.1:8790",
			tokenUrl: mode === "oauth2" ? "http://127.0.0.1:8791/oauth2/token" : undefined,
			catalogWrites: true,
			timeoutMs: 300_000,
		});

	it("asks for no export on the default ports", () => {
		expect(cliEnvironment(portSettings("oauth2", {}))).toBe("");
		expect(banner({})).not.toContain("export");
	});

	it("prints the export line that the CLI and the README's commands need on other ports", () => {
		const text = banner({ WORKER_PORT: "9787", CONTROL_PLANE_PORT: "9790", NODE_PORT: "6007" });
		// NODE_PORT is the stack's own business: neither the CLI nor the README's commands use it.
		expect(text).toContain("\n                  export WORKER_PORT=9787 CONTROL_PLANE_PORT=9790\n");
		expect(text).toContain("http://3000-demo.localhost:9787/");
		expect(cliEnvironment(portSettings("oauth2", { TOKEN_ENDPOINT_PORT: "9791" }))).toBe(
			"export TOKEN_ENDPOINT_PORT=9791",
		);
	});
});
