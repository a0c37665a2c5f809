// `npm start`: the dev stack plus `wrangler dev`, wired to each other, with one
// demo sandbox to try.

import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { DEFAULT_CONTROL_PLANE_PORT } from "./control-plane.ts";
import { DevVarsError, loadDevVars } from "./dev-vars.ts";
import { DEFAULT_NODE_PORT } from "./node.ts";
import { type Stack, startStack } from "./stack.ts";

const repoRoot = new URL("../", import.meta.url);
const DEFAULT_WORKER_PORT = 8787;
const DEMO_SANDBOX_ID = "demo";

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
	let catalogSecret = vars.CATALOG_SECRET;
	if (catalogSecret === undefined || catalogSecret === "") {
		// A .dev.vars from before the catalog API: give it one, as the example would have.
		catalogSecret = randomBytes(24).toString("hex");
		appendFileSync(path, `\n# Added by npm start: the catalog API's bearer token.\nCATALOG_SECRET=${catalogSecret}\n`);
		console.log(`[dev] added a CATALOG_SECRET to ${path}`);
	}
	return { apiSecret, catalogSecret };
}

function prefixLines(stream: NodeJS.ReadableStream | null, write: (line: string) => void): void {
	if (stream === null) return;
	createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on("line", write);
}

function startWrangler(workerPort: number, cpPort: number, nodePort: number, onReady: () => void): ChildProcess {
	const args = ["dev", "--ip", "127.0.0.1", "--port", String(workerPort)];
	if (cpPort !== DEFAULT_CONTROL_PLANE_PORT) args.push("--var", `CONTROL_PLANE_URL:http://127.0.0.1:${cpPort}`);
	if (nodePort !== DEFAULT_NODE_PORT) args.push("--var", `NODE_ORIGIN_TEMPLATE:http://{ip}:${nodePort}`);
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

function printBanner(stack: Stack, workerPort: number, catalogWrites: boolean): void {
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
			`  CLI             ${cliEnv}npm run sandbox -- list | create [id] [--private] [--secure] [--no-auto-resume]`,
			`                  ${cliEnv}npm run sandbox -- pause|resume|kill|get <id> | calls`,
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
	const { apiSecret, catalogSecret } = readSecrets();
	const catalogWrites = catalogWritesOn();
	const controlPlanePort = envInt("CONTROL_PLANE_PORT", DEFAULT_CONTROL_PLANE_PORT, 1, 65535);
	const nodePort = envInt("NODE_PORT", DEFAULT_NODE_PORT, 1, 65535);
	const workerPort = envInt("WORKER_PORT", DEFAULT_WORKER_PORT, 1, 65535);
	const resumeDelayMs = envInt("RESUME_DELAY_MS", 1000, 0, 600_000);

	let stack: Stack;
	try {
		stack = await startStack({
			apiSecret,
			controlPlanePort,
			nodePort,
			resumeDelayMs,
			log: (line) => console.log(line),
		});
	} catch (error) {
		if ((error as NodeJS.ErrnoException).code === "EADDRINUSE") {
			throw new StartError(
				`a port is already in use (${(error as Error).message}); is another \`npm start\` running? ` +
					"Set CONTROL_PLANE_PORT or NODE_PORT to use other ports.",
			);
		}
		throw error;
	}
	if (catalogWrites) stack.connectCatalog({ edgeUrl: `http://edge.localhost:${workerPort}`, secret: catalogSecret });

	// The demo sandbox is created once the Worker listens, so that its route
	// reaches the catalog, as a sandbox's does when E2B creates it.
	const child = startWrangler(workerPort, stack.controlPlane.port, stack.nodePort, () => {
		stack.controlPlane.sandboxes.create({ id: DEMO_SANDBOX_ID }).catch((error: unknown) => {
			console.error(`[dev] could not create the demo sandbox: ${error instanceof Error ? error.message : error}`);
		});
	});
	printBanner(stack, workerPort, catalogWrites);

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
