// `npm run sandbox -- <command>`: drive the running dev control plane.

import { parseArgs } from "node:util";
import { AdminApiError, AdminUnreachableError, createAdminClient } from "./admin-client.ts";
import { readCatalogEntry } from "./catalog-writer.ts";
import { loadDevVars } from "./dev-vars.ts";
import {
	type CreateSandboxInput,
	type KeepAliveCall,
	MAX_PORT_OPEN_DELAY_MS,
	type RecordedCall,
	type SandboxView,
} from "./model.ts";

const USAGE = `Usage: npm run sandbox -- <command>

Commands:
  list [--tokens]                        list sandboxes (with their access tokens if asked)
  create [id] [--private] [--secure] [--no-auto-resume] [--paused] [--port-open-delay-ms N]
         [--timeout-ms N] [--traffic-keepalive] [--team-id UUID] [--mask-request-host H]
                                         create a sandbox (running unless --paused); with
                                         --port-open-delay-ms, its app ports open N ms after
                                         each start or resume; with --timeout-ms, it pauses
                                         by itself N ms after each start or resume unless
                                         KeepAliveSandbox pushes that back, which
                                         --traffic-keepalive allows; with --mask-request-host,
                                         its app gets Host H (\${PORT}: the sandbox port)
  get <id>                               show one sandbox as JSON
  keepalive <id> on|off                  turn its traffic keepalive policy on or off (the
                                         catalog entry is not rewritten, as in E2B)
  pause <id>                             pause a sandbox
  resume <id>                            resume a paused sandbox
  kill <id>                              kill a sandbox
  delete <id>                            forget a sandbox entirely
  route <id>                             what the Worker's catalog holds for a sandbox
  calls                                  ResumeSandbox calls the control plane received
  keepalive-calls                        KeepAliveSandbox calls the control plane received
  fault [<json> | clear]                 show, set or clear the injected fault
                                         ({"rpc":"KeepAliveSandbox",...} for that RPC)
  token-fault [<json> | clear]           the same for the OAuth2 token endpoint
                                         (AUTH_MODE=oauth2 npm start), e.g.
                                         '{"down":true,"durationMs":30000}'

Environment (the same port variables as \`npm start\`, so one export serves both):
  WORKER_PORT              default 8787, for sandbox URLs and the catalog API
  CONTROL_PLANE_PORT       default 8790; or CONTROL_PLANE_ADMIN_URL, a whole URL
  TOKEN_ENDPOINT_PORT      default 8791; or TOKEN_ENDPOINT_URL, a whole URL
  CATALOG_SECRET           for route; default the one in .dev.vars, as \`npm start\` uses it`;

class UsageError extends Error {}

/** A port from the environment, as `npm start` reads it. */
function envPort(name: string, fallback: number): number {
	const raw = process.env[name];
	if (raw === undefined || raw === "") return fallback;
	const port = /^\d{1,5}$/.test(raw) ? Number(raw) : Number.NaN;
	if (!(port >= 1 && port <= 65535)) {
		console.error(`error: ${name} must be a port from 1 to 65535 (got "${raw}")`);
		process.exit(2);
	}
	return port;
}

const workerPort = envPort("WORKER_PORT", 8787);
const adminUrl = process.env.CONTROL_PLANE_ADMIN_URL || `http://127.0.0.1:${envPort("CONTROL_PLANE_PORT", 8790)}`;
const admin = createAdminClient(adminUrl);
const tokenEndpointUrl = (
	process.env.TOKEN_ENDPOINT_URL || `http://127.0.0.1:${envPort("TOKEN_ENDPOINT_PORT", 8791)}`
).replace(/\/+$/, "");

function table(headers: string[], rows: string[][]): string {
	const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
	const line = (cells: string[]) =>
		cells
			.map((c, i) => c.padEnd(widths[i] ?? 0))
			.join("  ")
			.trimEnd();
	return [line(headers), ...rows.map(line)].join("\n");
}

function sandboxUrl(id: string, port = 3000): string {
	return `http://${port}-${id}.localhost:${workerPort}/`;
}

function printSandbox(sandbox: SandboxView): void {
	console.log(`id:     ${sandbox.id}`);
	console.log(`state:  ${sandbox.state}${sandbox.resuming ? " (resuming)" : ""}`);
	console.log(`url:    ${sandboxUrl(sandbox.id)}`);
	if (sandbox.portOpenDelayMs !== undefined) {
		console.log(`ports:  the app's ports open ${sandbox.portOpenDelayMs}ms after each start or resume`);
	}
	console.log(`team:   ${sandbox.teamId}`);
	console.log(`traffic keepalive: ${sandbox.trafficKeepalive ? "on" : "off"}`);
	if (sandbox.maskRequestHost)
		console.log(`host mask: ${sandbox.maskRequestHost} (the app's Host; envd's is not masked)`);
	if (sandbox.timeoutMs !== undefined) {
		const ends = sandbox.endTime === undefined ? "" : `; pauses at ${new Date(sandbox.endTime).toISOString()}`;
		console.log(`timeout: ${sandbox.timeoutMs}ms${ends}`);
	}
	if (sandbox.trafficAccessToken !== undefined) {
		console.log(`traffic access token (send as e2b-traffic-access-token): ${sandbox.trafficAccessToken}`);
	}
	if (sandbox.envdAccessToken !== undefined) {
		console.log(`envd access token (send as X-Access-Token):             ${sandbox.envdAccessToken}`);
	}
}

function printList(sandboxes: SandboxView[], withTokens: boolean): void {
	if (sandboxes.length === 0) {
		console.log("no sandboxes; create one with `npm run sandbox -- create`");
		return;
	}
	const rows = sandboxes.map((s) => {
		const row = [
			s.id,
			s.resuming ? `${s.state} (resuming)` : s.state,
			s.autoResume ? "yes" : "no",
			s.public ? "public" : "private",
			s.secure ? "yes" : "no",
			s.ports.join(","),
			s.trafficKeepalive ? "on" : "off",
			s.endTime === undefined ? "-" : `${Math.max(0, Math.round((s.endTime - Date.now()) / 1000))}s`,
			sandboxUrl(s.id),
		];
		if (withTokens) row.push(s.trafficAccessToken ?? "-", s.envdAccessToken ?? "-");
		return row;
	});
	const headers = ["ID", "STATE", "AUTO-RESUME", "TRAFFIC", "SECURE", "PORTS", "KEEPALIVE", "PAUSES-IN", "URL"];
	if (withTokens) headers.push("TRAFFIC-TOKEN", "ENVD-TOKEN");
	console.log(table(headers, rows));
}

function parseList(args: string[]): boolean {
	if (args.length === 0) return false;
	if (args.length === 1 && args[0] === "--tokens") return true;
	throw new UsageError(`list takes only --tokens, not ${args.join(" ")}`);
}

function printCalls(calls: RecordedCall[]): void {
	if (calls.length === 0) {
		console.log("no ResumeSandbox calls received yet");
		return;
	}
	const rows = calls.map((c) => [
		new Date(c.at).toISOString(),
		c.sandboxId || "<none>",
		c.protocol,
		c.headers["e2b-sandbox-request-port"] ?? "",
		// Presence only: the values are secrets.
		c.headers["x-e2b-client-proxy-auth"] === undefined ? "missing" : "present",
		c.headers.authorization === undefined ? "missing" : "present",
	]);
	console.log(table(["AT", "SANDBOX", "PROTOCOL", "PORT", "CLIENT-PROXY-AUTH", "AUTHORIZATION"], rows));
}

function printKeepAliveCalls(calls: KeepAliveCall[]): void {
	if (calls.length === 0) {
		console.log("no KeepAliveSandbox calls received yet");
		return;
	}
	const rows = calls.map((c) => [
		new Date(c.at).toISOString(),
		c.sandboxId || "<none>",
		c.teamId || "<none>",
		c.protocol,
		c.headers["x-e2b-client-proxy-auth"] === undefined ? "missing" : "present",
		c.headers.authorization === undefined ? "missing" : "present",
	]);
	console.log(table(["AT", "SANDBOX", "TEAM", "PROTOCOL", "CLIENT-PROXY-AUTH", "AUTHORIZATION"], rows));
}

/** The token endpoint's own admin route (loopback Host, JSON), which the control plane's client does not know. */
async function tokenFault(method: "GET" | "PUT" | "DELETE", body?: unknown): Promise<unknown> {
	let res: Response;
	try {
		res = await fetch(`${tokenEndpointUrl}/admin/fault`, {
			method,
			headers: method === "GET" ? {} : { "content-type": "application/json" },
			body: body === undefined ? null : JSON.stringify(body),
		});
	} catch {
		throw new UsageError(
			`cannot reach the token endpoint at ${tokenEndpointUrl}; is \`AUTH_MODE=oauth2 npm start\` running?`,
		);
	}
	const text = await res.text();
	if (!res.ok) throw new AdminApiError(res.status, (JSON.parse(text) as { message?: string }).message ?? text);
	return text === "" ? undefined : (JSON.parse(text) as { fault: unknown }).fault;
}

/** Asks the Worker's catalog API, with CATALOG_SECRET from .dev.vars as `npm start` uses it. */
async function printRoute(id: string): Promise<void> {
	const secret = process.env.CATALOG_SECRET || loadDevVars(new URL("../", import.meta.url)).vars.CATALOG_SECRET;
	if (secret === undefined || secret === "") throw new UsageError("CATALOG_SECRET is missing from .dev.vars");
	const edgeUrl = `http://edge.localhost:${workerPort}`;
	let answer: { status: number; body: string };
	try {
		answer = await readCatalogEntry({ edgeUrl, secret }, id);
	} catch {
		throw new UsageError(`cannot reach the Worker's catalog API at ${edgeUrl}; is \`npm start\` running?`);
	}
	if (answer.status === 404) return console.log(`${id}: the catalog holds no route (the next request resumes it)`);
	console.log(answer.status === 200 ? JSON.stringify(JSON.parse(answer.body), null, 2) : answer.body);
}

function parseDelay(raw: string): number {
	const value = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
	if (!(value <= MAX_PORT_OPEN_DELAY_MS)) {
		throw new UsageError(`--port-open-delay-ms takes a number of milliseconds from 0 to ${MAX_PORT_OPEN_DELAY_MS}`);
	}
	return value;
}

function parseTimeout(raw: string): number {
	if (!/^\d+$/.test(raw) || Number(raw) < 1) {
		throw new UsageError("--timeout-ms takes a number of milliseconds of at least 1");
	}
	return Number(raw);
}

function parseTeam(raw: string): string {
	if (raw.startsWith("-")) throw new UsageError("--team-id takes a UUID");
	return raw;
}

function parseMask(raw: string): string {
	if (raw.startsWith("-")) throw new UsageError(`--mask-request-host takes a host, e.g. 'localhost:\${PORT}'`);
	return raw;
}

function parseCreate(args: string[]): CreateSandboxInput {
	let parsed: ReturnType<typeof parseCreateArgs>;
	try {
		parsed = parseCreateArgs(args);
	} catch (error) {
		// parseArgs names the flag ("Unknown option '--x'", "Option '--timeout-ms <value>' argument missing").
		throw new UsageError((error as Error).message);
	}
	const { values, positionals } = parsed;
	const [id, extra] = positionals;
	if (extra !== undefined) throw new UsageError(`unexpected argument ${extra}`);
	const input: CreateSandboxInput = {};
	if (id !== undefined) input.id = id;
	if (values["port-open-delay-ms"] !== undefined) input.portOpenDelayMs = parseDelay(values["port-open-delay-ms"]);
	if (values["timeout-ms"] !== undefined) input.timeoutMs = parseTimeout(values["timeout-ms"]);
	if (values["team-id"] !== undefined) input.teamId = parseTeam(values["team-id"]);
	if (values["mask-request-host"] !== undefined) input.maskRequestHost = parseMask(values["mask-request-host"]);
	if (values["traffic-keepalive"] === true) input.trafficKeepalive = true;
	if (values.private === true) input.public = false;
	if (values.secure === true) input.secure = true;
	if (values["no-auto-resume"] === true) input.autoResume = false;
	if (values.paused === true) input.state = "paused";
	return input;
}

function parseCreateArgs(args: string[]) {
	return parseArgs({
		args,
		strict: true,
		allowPositionals: true,
		options: {
			"port-open-delay-ms": { type: "string" },
			"timeout-ms": { type: "string" },
			"team-id": { type: "string" },
			"mask-request-host": { type: "string" },
			"traffic-keepalive": { type: "boolean" },
			private: { type: "boolean" },
			secure: { type: "boolean" },
			"no-auto-resume": { type: "boolean" },
			paused: { type: "boolean" },
		},
	});
}

function oneId(command: string, args: string[]): string {
	const [id, ...extra] = args;
	if (id === undefined || id.startsWith("-") || extra.length > 0)
		throw new UsageError(`${command} takes exactly one <id>`);
	return id;
}

async function run(argv: string[]): Promise<void> {
	const [command, ...args] = argv;
	switch (command) {
		case "list": {
			const withTokens = parseList(args);
			return printList(await admin.list({ tokens: withTokens }), withTokens);
		}
		case "create":
			return printSandbox(await admin.create(parseCreate(args)));
		case "get":
			return console.log(JSON.stringify(await admin.get(oneId(command, args)), null, 2));
		case "pause":
		case "resume":
		case "kill": {
			const sandbox = await admin[command](oneId(command, args));
			return console.log(`${sandbox.id}: ${sandbox.state}`);
		}
		case "delete": {
			const id = oneId(command, args);
			await admin.remove(id);
			return console.log(`${id}: deleted`);
		}
		case "route":
			return printRoute(oneId(command, args));
		case "calls":
			return printCalls(await admin.calls());
		case "keepalive-calls":
			return printKeepAliveCalls(await admin.keepAliveCalls());
		case "keepalive": {
			const [id, setting, ...extra] = args;
			if (id === undefined || (setting !== "on" && setting !== "off") || extra.length > 0) {
				throw new UsageError("keepalive takes <id> on|off");
			}
			const sandbox = await admin.update(id, { trafficKeepalive: setting === "on" });
			return console.log(`${sandbox.id}: traffic keepalive ${sandbox.trafficKeepalive ? "on" : "off"}`);
		}
		case "token-fault": {
			if (args.length === 0) return console.log(JSON.stringify((await tokenFault("GET")) ?? null));
			if (args.length === 1 && args[0] === "clear") {
				await tokenFault("DELETE");
				return console.log("token endpoint fault cleared");
			}
			let fault: unknown;
			try {
				fault = JSON.parse(args.join(" "));
			} catch {
				throw new UsageError(`token-fault expects JSON such as '{"httpStatus":500}' or "clear"`);
			}
			return console.log(`token endpoint fault set: ${JSON.stringify(await tokenFault("PUT", fault))}`);
		}
		case "fault": {
			if (args.length === 0) return console.log(JSON.stringify(await admin.fault()));
			if (args.length === 1 && args[0] === "clear") {
				await admin.clearFault();
				return console.log("fault cleared");
			}
			let fault: unknown;
			try {
				fault = JSON.parse(args.join(" "));
			} catch {
				throw new UsageError(`fault expects JSON such as '{"code":"Unavailable"}' or "clear"`);
			}
			await admin.setFault(fault as Parameters<typeof admin.setFault>[0]);
			return console.log(`fault set: ${JSON.stringify(await admin.fault())}`);
		}
		case undefined:
		case "help":
		case "-h":
		case "--help":
			console.log(USAGE);
			if (command === undefined) process.exitCode = 2;
			return;
		default:
			throw new UsageError(`unknown command "${command}"`);
	}
}

run(process.argv.slice(2)).catch((error: unknown) => {
	if (error instanceof UsageError) {
		console.error(`error: ${error.message}\n\n${USAGE}`);
		process.exitCode = 2;
	} else if (error instanceof AdminUnreachableError) {
		console.error(`error: cannot reach the control plane at ${error.baseUrl}; is \`npm start\` running?`);
		process.exitCode = 1;
	} else if (error instanceof AdminApiError) {
		console.error(`error: ${error.message} (HTTP ${error.status})`);
		process.exitCode = 1;
	} else {
		console.error("error:", error);
		process.exitCode = 1;
	}
});
