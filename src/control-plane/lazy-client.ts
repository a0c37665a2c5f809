import type { Config } from "../config.ts";
import type { ControlPlaneClient } from "./sandbox-service.ts";

/**
 * The control-plane client, loaded the first time a cold path calls it. Its
 * modules (Connect, protobuf and the generated service) are most of the
 * bundle's top-level work, which every new isolate would otherwise pay
 * before its first request, hot or not. A dynamic import() of a bundled file
 * is one esbuild keeps in the bundle and evaluates on first call
 * (BENCHMARKS.md, "Issue 18").
 */
export function lazyControlPlaneClient(env: Env, config: Config): ControlPlaneClient {
	let loaded: Promise<ControlPlaneClient> | undefined;
	const client = (): Promise<ControlPlaneClient> => {
		loaded ??= import("./connected-client.ts")
			.then((module) => module.connectedClient(env, config))
			.catch((error: unknown) => {
				// A failed load or construction is tried again by the next call, not remembered.
				loaded = undefined;
				throw error;
			});
		return loaded;
	};
	return {
		resume: async (sandboxId, credentials) => (await client()).resume(sandboxId, credentials),
		keepAlive: async (sandboxId, teamId, credentials) => (await client()).keepAlive(sandboxId, teamId, credentials),
	};
}
