// A dev node (dev/node.ts) whose sandboxes run a test's own apps: every
// sandbox ID it is told of maps the same sandbox ports to the apps' local
// ports. Public sandboxes, no MaskRequestHost: the app gets the Host the
// node received, as E2B's node gives it.

import { type DevNode, startNode } from "../../../dev/node.ts";
import type { SandboxDirectory } from "../../../dev/registry.ts";

export interface AppNode {
	readonly node: DevNode;
	/** Makes `sandboxId` a sandbox running here, with the node's apps on its ports. */
	addSandbox(sandboxId: string): void;
	close(): Promise<void>;
}

/** `ports`: sandbox port → local port of the app that listens for it. */
export async function startAppNode(ports: ReadonlyMap<number, number>): Promise<AppNode> {
	const sandboxes = new Set<string>();
	const directory: SandboxDirectory = {
		lookup: (sandboxId) => (sandboxes.has(sandboxId) ? ports : undefined),
		trafficAccessToken: () => undefined,
		maskRequestHost: () => undefined,
	};
	const node = await startNode({ directory, port: 0 });
	return {
		node,
		addSandbox: (sandboxId) => void sandboxes.add(sandboxId),
		close: () => node.close(),
	};
}
