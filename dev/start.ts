// `npm start`: the dev stack plus `wrangler dev`, wired to each other, with one
// demo sandbox to try.

import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync } from "node:fs";
import { createServer } from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath, pathToFileURL } from "node:url";
import { SANDBOX_LIFECYCLE_SCOPE } from "./client-proxy-auth.ts";
import { DEFAULT_CONTROL_PLANE_PORT } from "./control-plane.ts";
import { DevVarsError, loadDevVars } from "./dev-vars.ts";
import { DEFAULT_NODE_PORT, ROUTING_DESCRIPTIONS } from "./node.ts";
import { NODE_ROUTINGS, type NodeRouting } from "./node-routing.ts";
import { DEFAULT_OAUTH_CLIENT_ID, type Stack, type StackAuth, startStack } from "./stack.ts";
import { DEFAULT_TOKEN_ENDPOINT_PORT } from "./token-endpoint.ts";

const repoRoot = new URL("../", import.meta.url);
export const DEFAULT_WORKER_PORT = 8787;
const DEMO_SANDBOX_ID = "demo";
const DEFAULT_SANDBOX_TIMEOUT_MS = 300_000;
/** The cluster's auth org ID in oauth2 mode, which the dev client's tokens carry. */
const DEV_AUTH_ORG_ID = "dev-org";

class StartError extends Error {}

function envInt(name: string, fallback: number, min: number, max: number, env = process.env): number {
	const raw = env[name];
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

/** NODE_ROUTING: how the node reads a request's sandbox. */
export function nodeRouting(env: NodeJS.ProcessEnv = process.env): NodeRouting {
	const value = env.NODE_ROUTING || "headers-or-host";
	if (!NODE_ROUTINGS.includes(value as NodeRouting)) {
		throw new StartError(`NODE_ROUTING must be ${NODE_ROUTINGS.map((r) => `"${r}"`).join(" or ")} (got "${value}")`);
	}
	return value as NodeRouting;
}

/** A port `npm start` listens on, and the variable that sets it. */
export interface PortSetting {
	name: "WORKER_PORT" | "CONTROL_PLANE_PORT" | "NODE_PORT" | "TOKEN_ENDPOINT_PORT";
	port: number;
	defaultPort: number;
}

/** Every port `npm start` listens on in this mode, from the environment. */
export function portSettings(mode: AuthMode, env: NodeJS.ProcessEnv = process.env): PortSetting[] {
	const setting = (name: PortSetting["name"], defaultPort: number): PortSetting => ({
		name,
		port: envInt(name, defaultPort, 1, 65535, env),
		defaultPort,
	});
	return [
		setting("WORKER_PORT", DEFAULT_WORKER_PORT),
		setting("CONTROL_PLANE_PORT", DEFAULT_CONTROL_PLANE_PORT),
		setting("NODE_PORT", DEFAULT_NODE_PORT),
		...(mode === "oauth2" ? [setting("TOKEN_ENDPOINT_PORT", DEFAULT_TOKEN_ENDPOINT_PORT)] : []),
	];
}

function isFree(port: number): Promise<boolean> {
	return new Promise((resolve) => {
		const probe = createServer();
		probe.once("error", () => resolve(false));
		probe.listen({ host: "127.0.0.1", port, exclusive: true }, () => probe.close(() => resolve(true)));
	});
}

/** What to say when ports are taken: which ones, and every setting that moves one. */
export function portConflictHint(settings: readonly PortSetting[], busy: readonly PortSetting[]): string {
	const taken = busy.length === 0 ? "a port" : busy.map((s) => `port ${s.port} (${s.name})`).join(", ");
	const names = settings.map((s) => s.name);
	const list = `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`;
	const other = (port: number) => (port + 10 <= 65535 ? port + 10 : port - 10);
	const example = `export ${settings.map((s) => `${s.name}=${other(s.port)}`).join(" ")}`;
	return (
		`${taken} ${busy.length > 1 ? "are" : "is"} already in use; is another \`npm start\` running? ` +
		`Its ports are set by ${list} (now ${settings.map((s) => s.port).join(", ")}). ` +
		`To run it on others, for example: \`${example}\`, then \`npm start\`; ` +
		"the same export in another terminal points `npm run sandbox` and the README's curl commands at it."
	);
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

/**
 * What a second terminal needs for the CLI and the README's commands to find
 * this stack: the port variables that differ from their defaults, as one
 * `export` line, or "" when every port is the default.
 */
export function cliEnvironment(settings: readonly PortSetting[]): string {
	const moved = settings.filter((s) => s.name !== "NODE_PORT" && s.port !== s.defaultPort);
	return moved.length === 0 ? "" : `export ${moved.map((s) => `${s.name}=${s.port}`).join(" ")}`;
}

export interface BannerInput {
	settings: readonly PortSetting[];
	controlPlaneUrl: string;
	tokenUrl: string | undefined;
	catalogWrites: boolean;
	timeoutMs: number;
	/** The REST API's X-API-Key, or undefined when it is off. */
	restApiKey?: string | undefined;
	/** Default "headers-or-host". */
	nodeRouting?: NodeRouting;
}

export function bannerText(input: BannerInput): string {
	const port = (name: PortSetting["name"]) => input.settings.find((s) => s.name === name)?.port;
	const workerPort = port("WORKER_PORT") ?? DEFAULT_WORKER_PORT;
	const worker = `http://3000-${DEMO_SANDBOX_ID}.localhost:${workerPort}/`;
	const exports = cliEnvironment(input.settings);
	const { timeoutMs } = input;
	return [
		"",
		"sandbox-edge-proxy local stack",
		`  Worker          ${worker}  (demo sandbox "${DEMO_SANDBOX_ID}", port 3000)`,
		`                  http://8080-${DEMO_SANDBOX_ID}.localhost:${workerPort}/  (port 8080)`,
		`  Control plane   ${input.controlPlaneUrl}/admin/sandboxes`,
		...(input.restApiKey === undefined
			? []
			: [
					`  E2B SDK         export E2B_API_URL=${input.controlPlaneUrl} E2B_API_KEY=${input.restApiKey}`,
					`                  export E2B_SANDBOX_URL=http://localhost:${workerPort}`,
				]),
		`  Catalog API     http://edge.localhost:${workerPort}/v1/sandboxes/<id>  (${
			input.catalogWrites ? "the control plane writes it" : "CATALOG_WRITES=off: routes come from resumes alone"
		})`,
		`  Node            http://127.0.0.1:${port("NODE_PORT")}  (${ROUTING_DESCRIPTIONS[input.nodeRouting ?? "headers-or-host"]})`,
		input.tokenUrl === undefined
			? "  Auth            API_SECRET as x-e2b-client-proxy-auth (AUTH_MODE=oauth2 for bearer tokens)"
			: `  Auth            OAuth2: tokens from ${input.tokenUrl} for client ${DEFAULT_OAUTH_CLIENT_ID} (org ${DEV_AUTH_ORG_ID})`,
		timeoutMs === 0
			? `  Keepalive       "${DEMO_SANDBOX_ID}" has no timeout (SANDBOX_TIMEOUT_MS=0)`
			: `  Keepalive       "${DEMO_SANDBOX_ID}" pauses ${timeoutMs}ms after its last start, resume or KeepAliveSandbox`,
		...(exports === ""
			? []
			: [
					`  Other ports     in the terminal where you run the CLI and the README's commands, first:`,
					`                  ${exports}`,
				]),
		"  CLI             npm run sandbox -- list | create [id] [--private] [--secure] [--no-auto-resume]",
		"                  npm run sandbox -- pause|resume|kill|get <id> | calls | keepalive-calls",
		"  Try             npm run sandbox -- pause demo, then reload the page: it resumes on the way in.",
		"",
	].join("\n");
}

function catalogWritesOn(): boolean {
	const value = (process.env.CATALOG_WRITES ?? "on").toLowerCase();
	if (value !== "on" && value !== "off") throw new StartError(`CATALOG_WRITES must be "on" or "off" (got "${value}")`);
	return value === "on";
}

async function main(): Promise<void> {
	const catalogWrites = catalogWritesOn();
	const mode = authMode();
	const routing = nodeRouting();
	const settings = portSettings(mode);
	const portOf = (name: PortSetting["name"], fallback: number) =>
		settings.find((s) => s.name === name)?.port ?? fallback;
	const controlPlanePort = portOf("CONTROL_PLANE_PORT", DEFAULT_CONTROL_PLANE_PORT);
	const nodePort = portOf("NODE_PORT", DEFAULT_NODE_PORT);
	const workerPort = portOf("WORKER_PORT", DEFAULT_WORKER_PORT);
	const tokenEndpointPort = portOf("TOKEN_ENDPOINT_PORT", DEFAULT_TOKEN_ENDPOINT_PORT);
	// Before anything starts (or .dev.vars is touched): wrangler would only say
	// that its own port is taken, after the rest of the stack had started.
	const busy: PortSetting[] = [];
	for (const setting of settings) if (!(await isFree(setting.port))) busy.push(setting);
	if (busy.length > 0) throw new StartError(portConflictHint(settings, busy));
	const { apiSecret, catalogSecret, oauthClientSecret } = readSecrets();
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
			nodeRouting: routing,
			resumeDelayMs,
			log: (line) => console.log(line),
		});
	} catch (error) {
		if ((error as NodeJS.ErrnoException).code === "EADDRINUSE") {
			// Taken since the check above.
			const port = (error as { port?: number }).port;
			throw new StartError(
				portConflictHint(
					settings,
					settings.filter((s) => s.port === port),
				),
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
	console.log(
		bannerText({
			settings,
			controlPlaneUrl: stack.controlPlaneUrl,
			tokenUrl: stack.tokenEndpoint?.tokenUrl,
			catalogWrites,
			timeoutMs: sandboxTimeoutMs,
			restApiKey: stack.restApiKey,
			nodeRouting: routing,
		}),
	);

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

// Run as `npm start`; imported (by tests), it only defines what it exports.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
	main().catch((error: unknown) => {
		if (error instanceof StartError || error instanceof DevVarsError) {
			console.error(`[dev] ${error.message}`);
		} else {
			console.error("[dev] failed to start:", error);
		}
		process.exit(1);
	});
}
