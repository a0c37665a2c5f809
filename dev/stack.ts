// The whole local backend in one process: control plane, node, and the demo
// sandboxes the node routes to. Tests start it with ports 0 and logging off.

import { type ControlPlane, DEFAULT_CONTROL_PLANE_PORT, startControlPlane } from "./control-plane.ts";
import { createDemoRuntime } from "./demo-sandbox.ts";
import { type Log, silent } from "./model.ts";
import { DEFAULT_NODE_PORT, type DevNode, startNode } from "./node.ts";
import { createRegistry } from "./registry.ts";
import type { TokenPolicy } from "./resume-service.ts";

export interface StackOptions {
	apiSecret: string;
	/** Default 8790; 0 = ephemeral. */
	controlPlanePort?: number;
	/** Default 5007; 0 = ephemeral. */
	nodePort?: number;
	/** Default 1000. */
	resumeDelayMs?: number;
	/** Default 300. */
	pauseDelayMs?: number;
	/** What ResumeSandbox returns; default "127.0.0.1". */
	orchestratorIp?: string;
	/** Default "e2b", as E2B's API checks tokens. */
	tokenPolicy?: TokenPolicy;
	/** Receives lines prefixed "[control-plane] " or "[node] "; default silent. */
	log?: Log;
}

export interface Stack {
	/** e.g. http://127.0.0.1:8790, the value for CONTROL_PLANE_URL. */
	controlPlaneUrl: string;
	nodePort: number;
	/** e.g. http://{ip}:5007 with the node's port, the value for NODE_ORIGIN_TEMPLATE. */
	nodeOriginTemplate: string;
	controlPlane: ControlPlane;
	node: DevNode;
	close(): Promise<void>;
}

export async function startStack(options: StackOptions): Promise<Stack> {
	const log = options.log ?? silent;
	const prefixed =
		(prefix: string): Log =>
		(line) =>
			log(`[${prefix}] ${line}`);

	const registry = createRegistry({
		runtime: createDemoRuntime(),
		orchestratorIp: options.orchestratorIp ?? "127.0.0.1",
		resumeDelayMs: options.resumeDelayMs ?? 1000,
		pauseDelayMs: options.pauseDelayMs ?? 300,
		log: prefixed("control-plane"),
	});
	const node = await startNode({
		directory: registry,
		port: options.nodePort ?? DEFAULT_NODE_PORT,
		log: prefixed("node"),
	});
	let controlPlane: ControlPlane;
	try {
		controlPlane = await startControlPlane({
			apiSecret: options.apiSecret,
			registry,
			port: options.controlPlanePort ?? DEFAULT_CONTROL_PLANE_PORT,
			tokenPolicy: options.tokenPolicy ?? "e2b",
			log: prefixed("control-plane"),
		});
	} catch (error) {
		await node.close();
		await registry.close();
		throw error;
	}

	let closing: Promise<void> | undefined;
	return {
		controlPlaneUrl: controlPlane.url,
		nodePort: node.port,
		nodeOriginTemplate: `http://{ip}:${node.port}`,
		controlPlane,
		node,
		close() {
			closing ??= (async () => {
				await Promise.all([controlPlane.close(), node.close()]);
				await registry.close();
			})();
			return closing;
		},
	};
}
