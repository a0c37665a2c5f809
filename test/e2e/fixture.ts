import { unstable_startWorker } from "wrangler";
import { type AdminClient, createAdminClient } from "../../dev/admin-client.ts";
import {
	DEFAULT_OAUTH_CLIENT_ID,
	DEFAULT_OAUTH_CLIENT_SECRET,
	type Stack,
	type StackAuth,
	startStack,
} from "../../dev/stack.ts";

export const apiSecret = "e2e-secret-7f3a9c";
export const catalogSecret = "e2e-catalog-secret-5b21d0";

const root = new URL("../..", import.meta.url).pathname;

/** A Worker in workerd on a real loopback socket, built from wrangler.toml. */
export interface RunningWorker {
	url: URL;
	/** Everything the Worker and its Durable Objects logged, as text. */
	logText(): string;
	close(): Promise<void>;
}

/**
 * Starts the Worker the way `wrangler dev` does. Not wrangler's test harness:
 * that sends every outbound fetch through Node's fetch, which follows
 * redirects and cannot carry WebSockets, so it would hide exactly the
 * behaviour these tests are for.
 */
export async function startWorker(
	vars: Record<string, string>,
	secret = apiSecret,
	limits: ResumeLimits = {},
	secrets: Record<string, string> = {},
	outbound: WorkerOutbound = {},
): Promise<RunningWorker> {
	const logs: string[] = [];
	const bindings: Record<string, object> = {
		API_SECRET: { type: "secret_text", value: secret },
		CATALOG_SECRET: { type: "secret_text", value: catalogSecret },
	};
	for (const [name, value] of Object.entries(secrets)) bindings[name] = { type: "secret_text", value };
	for (const [name, value] of Object.entries({ SANDBOX_DOMAIN: "localhost", ...vars })) {
		bindings[name] = { type: "plain_text", value };
	}
	// Over wrangler.toml's, which a test may need smaller (to reach them) or
	// larger (so that many wakes from one loopback client are not limited).
	if (limits.perClient !== undefined) bindings.RESUME_LIMIT_PER_CLIENT = rateLimit("1001", limits.perClient);
	if (limits.perCaller !== undefined) bindings.RESUME_LIMIT_PER_CALLER = rateLimit("1002", limits.perCaller);
	// Every e2e request comes from one loopback address, and whole files'
	// worth of fresh sandboxes would meet the lookup budget: lifted unless a
	// test is about it.
	bindings.LOOKUP_LIMIT_PER_CLIENT = rateLimit("1003", limits.lookupsPerClient ?? 1_000_000);
	if (outbound.nodes !== undefined) bindings.NODES = { type: "fetcher", fetcher: outbound.nodes };
	const worker = await unstable_startWorker({
		config: `${root}wrangler.toml`,
		bindings: bindings as NonNullable<Parameters<typeof unstable_startWorker>[0]["bindings"]>,
		dev: {
			server: { hostname: "127.0.0.1", port: 0 },
			logLevel: "none",
			watch: false,
			persist: false,
			inspector: false,
			structuredLogsHandler: (log: { message: string }) => {
				logs.push(log.message);
			},
			// Not in wrangler's types, but passed to Miniflare as it is.
			...(outbound.fetch === undefined ? {} : { outboundService: outbound.fetch }),
		} as NonNullable<Parameters<typeof unstable_startWorker>[0]["dev"]>,
	});
	await worker.ready;
	return {
		url: await worker.url,
		logText: () => logs.join("\n"),
		close: () => worker.dispose(),
	};
}

/**
 * Where the Worker's subrequests go instead of straight to the network: its
 * global fetch (`fetch`), and a NODES binding (`nodes`, as a Workers VPC
 * Network binding would be). test/e2e/production-edge.ts gives both.
 */
export interface WorkerOutbound {
	fetch?: (request: Request) => Promise<Response>;
	nodes?: (request: Request) => Promise<Response>;
}

/** Resumes allowed per 10 s, per client address and per sandbox and caller. */
export interface ResumeLimits {
	perClient?: number;
	perCaller?: number;
	/** Lookups past every cache per client; default lifted (wrangler.toml's is 600). */
	lookupsPerClient?: number;
}

function rateLimit(namespaceId: string, limit: number): object {
	return { type: "ratelimit", namespace_id: namespaceId, simple: { limit, period: 10 } };
}

/** The development control plane, node and sandboxes, plus a Worker pointed at them. */
export interface E2eStack {
	stack: Stack;
	admin: AdminClient;
	worker: RunningWorker;
	/** Vars that point a Worker at this stack, for tests that start another one. */
	vars: Record<string, string>;
	close(): Promise<void>;
}

export interface E2eStackOptions {
	resumeDelayMs?: number;
	orchestratorIp?: string;
	workerVars?: Record<string, string>;
	/** Whether the control plane writes the Worker's catalog, as E2B's does; default true. */
	catalogWrites?: boolean;
	/** How long ResumeSandbox waits out a pause; default 500 ms here (E2B: 60 s). */
	transitionWaitMs?: number;
	/** Whether the node strips X-E2b-Sandbox-Not-Found from sandboxes' responses; default true (E2B's do not). */
	nodeStripsNotHereHeader?: boolean;
	/** How the node reads a request's sandbox; default "headers-or-host" (E2B since May 2026), or "host" (before). */
	nodeRouting?: "headers-or-host" | "host";
	/** The Worker's resume budgets; default wrangler.toml's. */
	limits?: ResumeLimits;
	/** How the control plane authenticates the edge; with oauth2 the Worker is set up to match. */
	auth?: StackAuth;
}

export async function startE2eStack(options: E2eStackOptions = {}): Promise<E2eStack> {
	const stack = await startStack({
		apiSecret,
		controlPlanePort: 0,
		nodePort: 0,
		resumeDelayMs: options.resumeDelayMs ?? 200,
		pauseDelayMs: 50,
		transitionWaitMs: options.transitionWaitMs ?? 500,
		...(options.nodeStripsNotHereHeader === undefined
			? {}
			: { nodeStripsNotHereHeader: options.nodeStripsNotHereHeader }),
		...(options.orchestratorIp === undefined ? {} : { orchestratorIp: options.orchestratorIp }),
		...(options.nodeRouting === undefined ? {} : { nodeRouting: options.nodeRouting }),
		...(options.auth === undefined ? {} : { auth: options.auth }),
	});
	const tokenUrl = stack.tokenEndpoint?.tokenUrl;
	const vars = {
		CONTROL_PLANE_URL: stack.controlPlaneUrl,
		NODE_ORIGIN_TEMPLATE: `http://{ip}:${stack.nodePort}`,
		RESUME_TIMEOUT_MS: "5000",
		...(tokenUrl === undefined
			? {}
			: { CONTROL_PLANE_AUTH: "oauth2", OAUTH_TOKEN_URL: tokenUrl, OAUTH_CLIENT_ID: DEFAULT_OAUTH_CLIENT_ID }),
		...options.workerVars,
	};
	const secrets: Record<string, string> =
		tokenUrl === undefined ? {} : { OAUTH_CLIENT_SECRET: DEFAULT_OAUTH_CLIENT_SECRET };
	const worker = await startWorker(vars, apiSecret, options.limits, secrets);
	if (options.catalogWrites !== false) stack.connectCatalog({ edgeUrl: edgeUrl(worker), secret: catalogSecret });
	return {
		stack,
		admin: createAdminClient(stack.controlPlaneUrl),
		worker,
		vars,
		close: async () => {
			await worker.close();
			await stack.close();
		},
	};
}

/** The Worker's catalog API, on its host edge.localhost. */
export function edgeUrl(worker: RunningWorker): string {
	return `http://edge.localhost:${worker.url.port}`;
}

export function sandboxHost(sandboxId: string, port = 3000): string {
	return `${port}-${sandboxId}.localhost`;
}

let counter = 0;
/** A fresh, valid sandbox ID, so that tests never share catalog state. */
export function freshId(prefix = "sbx"): string {
	counter += 1;
	return `${prefix}${Date.now().toString(36)}${counter}`;
}
