// `npm start`: the dev stack plus `wrangler dev`, wired to each other, with one
// demo sandbox to try.

import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { SANDBOX_LIFECYCLE_SCOPE } from "./client-proxy-auth.ts";
import { DEFAULT_CONTROL_PLANE_PORT } from "./control-plane.ts";
import { DevVarsError, loadDevVars } from "./dev-vars.ts";
import { DEFAULT_NODE_PORT } from "./node.ts";
import { DEFAULT_OAUTH_CLIENT_ID, type Stack, type StackAuth, startStack } from "./stack.ts";
import { DEFAULT_TOKEN_ENDPOINT_PORT } from "./token-endpoint.ts";

const repoRoot = new URL("../", import.meta.url);
const DEFAULT_WORKER_PORT = 8787;
const DEMO_SANDBOX_ID = "demo";
const DEFAULT_SANDBOX_TIMEOUT_MS = 300_000;
/** The cluster's auth org ID in oauth2 mode, which the dev client's tokens carry. */
const DEV_AUTH_ORG_ID = "dev-org";

class StartError extends Error {}

function envInt(name: string, fallback: number, min: number, max: number): number {
	const raw = process.env[name];
	if (raw === undefined || raw === "") return fallback;
	const value = Number(raw);
	if (!Number.isInteger(value) || value < min || value > max) {
		throw new StartError(`${name} must be an integer from ${min} to ${max} (got "${raw}")`);
	}
	return value;
}

interface Secrets {
	apiSecret: string;
	catalogSecret: string;
	oauthClientSecret: string;
}

/** The secrets the Worker reads from .dev.vars, which the control plane must share. */
function readSecrets(): Secrets {
	const { vars, path, created } = loadDevVars(repoRoot);
	if (created) console.log(`[dev] created ${path} from .dev.vars.example; change the secrets there if you like`);
	const apiSecret = vars.API_SECRET;
	if (apiSecret === undefined || apiSecret === "") {
		throw new StartError(
			`API_SECRET is missing from ${path}; add a line API_SECRET=<any secret> (the Worker reads the same file)`,
		);
	}
	// A .dev.vars from before a secret existed gets one, as the example would have given it.
	const orAdd = (name: string, what: string): string => {
		const value = vars[name];
		if (value !== undefined && value !== "") return value;
		const added = randomBytes(24).toString("hex");
		appendFileSync(path, `\n# Added by npm start: ${what}.\n${name}=${added}\n`);
		console.log(`[dev] added a ${name} to ${path}`);
		return added;
	};
	return {
		apiSecret,
		catalogSecret: orAdd("CATALOG_SECRET", "the catalog API's bearer token"),
		oauthClientSecret: orAdd("OAUTH_CLIENT_SECRET", "the Worker's OAuth2 client secret (AUTH_MODE=oauth2)"),
	};
}

type AuthMode = StackAuth["mode"];

function authMode(): AuthMode {
	const value = process.env.AUTH_MODE ?? "api_secret";
	if (value !== "api_secret" && value !== "oauth2") {
		throw new StartError(`AUTH_MODE must be "api_secret" or "oauth2" (got "${value}")`);
	}
	return value;
}

function prefixLines(stream: NodeJS.ReadableStream | null, write: (line: string) => void): void {
	if (stream === null) return;
	createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on("line", write);
}

function startWrangler(workerPort: number, stack: Stack, onReady: () => void): ChildProcess {
	const args = ["dev", "--ip", "127.0.0.1", "--port", String(workerPort)];
	const cpPort = stack.controlPlane.port;
	if (cpPort !== DEFAULT_CONTROL_PLANE_PORT) args.push("--var", `CONTROL_PLANE_URL:http://127.0.0.1:${cpPort}`);
	if (stack.nodePort !== DEFAULT_NODE_PORT) args.push("--var", `NODE_ORIGIN_TEMPLATE:http://{ip}:${stack.nodePort}`);
	if (stack.tokenEndpoint !== undefined) {
		// OAUTH_CLIENT_SECRET comes from .dev.vars, as the other secrets do.
		args.push(
			"--var",
			"CONTROL_PLANE_AUTH:oauth2",
			"--var",
			`OAUTH_TOKEN_URL:${stack.tokenEndpoint.tokenUrl}`,
			"--var",
			`OAUTH_CLIENT_ID:${DEFAULT_OAUTH_CLIENT_ID}`,
		);
	}
	const wrangler = fileURLToPath(new URL("node_modules/.bin/wrangler", repoRoot));
	// Run it with this Node rather than whatever `node` is first on PATH.
	const child = spawn(process.execPath, [wrangler, ...args], {
		cwd: fileURLToPath(repoRoot),
		env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
		// No stdin: wrangler's hotkeys would put the terminal in raw mode and swallow Ctrl-C.
		stdio: ["ignore", "pipe", "pipe"],
	});
	let ready = false;
	prefixLines(child.stdout, (line) => {
		console.log(`[worker] ${line}`);
		if (!ready && line.includes("Ready on")) {
			ready = true;
			onReady();
		}
	});
	prefixLines(child.stderr, (line) => console.error(`[worker] ${line}`));
	return child;
}

function printBanner(stack: Stack, workerPort: number, catalogWrites: boolean, timeoutMs: number): void {
	const worker = `http://3000-${DEMO_SANDBOX_ID}.localhost:${workerPort}/`;
	// The CLI needs to be told about non-default ports too.
	const cliEnv = [
		stack.controlPlane.port === DEFAULT_CONTROL_PLANE_PORT ? "" : `CONTROL_PLANE_ADMIN_URL=${stack.controlPlaneUrl} `,
		workerPort === DEFAULT_WORKER_PORT ? "" : `WORKER_PORT=${workerPort} `,
	].join("");
	console.log(
		[
			"",
			"sandbox-edge-proxy local stack",
			`  Worker          ${worker}  (demo sandbox "${DEMO_SANDBOX_ID}", port 3000)`,
			`                  http://8080-${DEMO_SANDBOX_ID}.localhost:${workerPort}/  (port 8080)`,
			`  Control plane   ${stack.controlPlaneUrl}/admin/sandboxes`,
			`  Catalog API     http://edge.localhost:${workerPort}/v1/sandboxes/<id>  (${
				catalogWrites ? "the control plane writes it" : "CATALOG_WRITES=off: routes come from resumes alone"
			})`,
			`  Node            http://127.0.0.1:${stack.nodePort}  (routes on E2b-Sandbox-Id / E2b-Sandbox-Port)`,
			stack.tokenEndpoint === undefined
				? "  Auth            API_SECRET as x-e2b-client-proxy-auth (AUTH_MODE=oauth2 for bearer tokens)"
				: `  Auth            OAuth2: tokens from ${stack.tokenEndpoint.tokenUrl} for client ${DEFAULT_OAUTH_CLIENT_ID} (org ${DEV_AUTH_ORG_ID})`,
			timeoutMs === 0
				? `  Keepalive       "${DEMO_SANDBOX_ID}" has no timeout (SANDBOX_TIMEOUT_MS=0)`
				: `  Keepalive       "${DEMO_SANDBOX_ID}" pauses ${timeoutMs}ms after its last start, resume or KeepAliveSandbox`,
			`  CLI             ${cliEnv}npm run sandbox -- list | create [id] [--private] [--secure] [--no-auto-resume]`,
			`                  ${cliEnv}npm run sandbox -- pause|resume|kill|get <id> | calls | keepalive-calls`,
			`  Try             ${cliEnv}npm run sandbox -- pause demo, then reload the page: it resumes on the way in.`,
			"",
		].join("\n"),
	);
}

function catalogWritesOn(): boolean {
	const value = (process.env.CATALOG_WRITES ?? "on").toLowerCase();
	if (value !== "on" && value !== "off") throw new StartError(`CATALOG_WRITES must be "on" or "off" (got "${value}")`);
	return value === "on";
}

async function main(): Promise<void> {
	const { apiSecret, catalogSecret, oauthClientSecret } = readSecrets();
	const catalogWrites = catalogWritesOn();
	const mode = authMode();
	const controlPlanePort = envInt("CONTROL_PLANE_PORT", DEFAULT_CONTROL_PLANE_PORT, 1, 65535);
	const nodePort = envInt("NODE_PORT", DEFAULT_NODE_PORT, 1, 65535);
	const workerPort = envInt("WORKER_PORT", DEFAULT_WORKER_PORT, 1, 65535);
	const tokenEndpointPort = envInt("TOKEN_ENDPOINT_PORT", DEFAULT_TOKEN_ENDPOINT_PORT, 1, 65535);
	const resumeDelayMs = envInt("RESUME_DELAY_MS", 1000, 0, 600_000);
	// 0: no timeout. At most the sandbox's longest life, 1 h.
	const sandboxTimeoutMs = envInt("SANDBOX_TIMEOUT_MS", DEFAULT_SANDBOX_TIMEOUT_MS, 0, 3_600_000);
	const auth: StackAuth =
		mode === "oauth2"
			? {
					mode,
					authOrgId: DEV_AUTH_ORG_ID,
					tokenEndpoint: {
						clients: [
							{
								clientId: DEFAULT_OAUTH_CLIENT_ID,
								clientSecret: oauthClientSecret,
								orgId: DEV_AUTH_ORG_ID,
								scopes: [SANDBOX_LIFECYCLE_SCOPE],
							},
						],
					},
				}
			: { mode };

	let stack: Stack;
	try {
		stack = await startStack({
			apiSecret,
			auth,
			tokenEndpointPort,
			controlPlanePort,
			nodePort,
			resumeDelayMs,
			log: (line) => console.log(line),
		});
	} catch (error) {
		if ((error as NodeJS.ErrnoException).code === "EADDRINUSE") {
			const ports =
				mode === "oauth2" ? "CONTROL_PLANE_PORT, NODE_PORT or TOKEN_ENDPOINT_PORT" : "CONTROL_PLANE_PORT or NODE_PORT";
			throw new StartError(
				`a port is already in use (${(error as Error).message}); is another \`npm start\` running? ` +
					`Set ${ports} to use other ports.`,
			);
		}
		throw error;
	}
	if (catalogWrites) stack.connectCatalog({ edgeUrl: `http://edge.localhost:${workerPort}`, secret: catalogSecret });

	// The demo sandbox is created once the Worker listens, so that its route
	// reaches the catalog, as a sandbox's does when E2B creates it.
	// Its traffic keepalive is on, so that requests through the Worker keep it from pausing.
	const demo = {
		id: DEMO_SANDBOX_ID,
		trafficKeepalive: true,
		...(sandboxTimeoutMs > 0 ? { timeoutMs: sandboxTimeoutMs } : {}),
	};
	const child = startWrangler(workerPort, stack, () => {
		stack.controlPlane.sandboxes.create(demo).catch((error: unknown) => {
			console.error(`[dev] could not create the demo sandbox: ${error instanceof Error ? error.message : error}`);
		});
	});
	printBanner(stack, workerPort, catalogWrites, sandboxTimeoutMs);

	let stopping = false;
	const exited = new Promise<number>((resolve) => {
		child.once("exit", (code, signal) => resolve(code ?? (signal === null ? 1 : 128)));
		child.once("error", (error) => {
			console.error(`[dev] could not start wrangler: ${error.message}`);
			resolve(1);
		});
	});

	async function stop(exitCode: number): Promise<never> {
		if (child.exitCode === null && child.signalCode === null) {
			child.kill("SIGTERM");
			const killTimer = setTimeout(() => child.kill("SIGKILL"), 5000);
			await exited;
			clearTimeout(killTimer);
		}
		await stack.close();
		process.exit(exitCode);
	}

	const onSignal = (signal: NodeJS.Signals, code: number) => {
		if (stopping) {
			console.error(`[dev] ${signal} again, exiting now`);
			process.exit(code);
		}
		stopping = true;
		console.log(`[dev] ${signal}: stopping wrangler and the stack`);
		void stop(code);
	};
	process.on("SIGINT", () => onSignal("SIGINT", 130));
	process.on("SIGTERM", () => onSignal("SIGTERM", 143));

	const code = await exited;
	if (!stopping) {
		stopping = true;
		console.log(`[dev] wrangler exited with code ${code}; stopping the stack`);
		await stop(code);
	}
}

main().catch((error: unknown) => {
	if (error instanceof StartError || error instanceof DevVarsError) {
		console.error(`[dev] ${error.message}`);
	} else {
		console.error("[dev] failed to start:", error);
	}
	process.exit(1);
});
