import { createTestHarness, type TestHarness } from "wrangler";
import { type AdminClient, createAdminClient } from "../../dev/admin-client.ts";
import { type Stack, startStack } from "../../dev/stack.ts";

export const apiSecret = "e2e-secret-7f3a9c";

const root = new URL("../..", import.meta.url).pathname;

/** A Worker in workerd on a real loopback socket, built from wrangler.toml. */
export interface RunningWorker {
	url: URL;
	harness: TestHarness;
	/** Everything the Worker and its Durable Objects logged, as text. */
	logText(): string;
	close(): Promise<void>;
}

export async function startWorker(vars: Record<string, string>, secret = apiSecret): Promise<RunningWorker> {
	const harness = createTestHarness({
		root,
		workers: [{ configPath: "./wrangler.toml", vars: { SANDBOX_DOMAIN: "localhost", ...vars }, secrets: { API_SECRET: secret } }],
	});
	const { url } = await harness.listen();
	return {
		url,
		harness,
		logText: () => JSON.stringify(harness.getLogs()),
		close: () => harness.close(),
	};
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

export async function startE2eStack(
	options: { resumeDelayMs?: number; workerVars?: Record<string, string> } = {},
): Promise<E2eStack> {
	const stack = await startStack({
		apiSecret,
		controlPlanePort: 0,
		nodePort: 0,
		resumeDelayMs: options.resumeDelayMs ?? 200,
		pauseDelayMs: 50,
	});
	const vars = {
		CONTROL_PLANE_URL: stack.controlPlaneUrl,
		NODE_ORIGIN_TEMPLATE: `http://{ip}:${stack.nodePort}`,
		RESUME_TIMEOUT_MS: "5000",
		...options.workerVars,
	};
	const worker = await startWorker(vars);
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

export function sandboxHost(sandboxId: string, port = 3000): string {
	return `${port}-${sandboxId}.localhost`;
}

let counter = 0;
/** A fresh, valid sandbox ID, so that tests never share catalog state. */
export function freshId(prefix = "sbx"): string {
	counter += 1;
	return `${prefix}${Date.now().toString(36)}${counter}`;
}
