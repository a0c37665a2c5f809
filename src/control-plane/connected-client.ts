import type { Config } from "../config.ts";
import { edgeAuth } from "./edge-auth.ts";
import { type ControlPlaneClient, createControlPlaneClient } from "./sandbox-service.ts";

/** The client with the edge's credential: the one entry of the modules that lazy-client.ts loads on first use. */
export function connectedClient(env: Env, config: Config): ControlPlaneClient {
	return createControlPlaneClient(config, edgeAuth(env, config));
}
