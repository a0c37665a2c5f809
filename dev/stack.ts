// The whole local backend in one process: control plane, node, the demo
// sandboxes the node routes to, and in oauth2 mode the token endpoint. Tests
// start it with ports 0 and logging off.

import { createCatalogWriter } from "./catalog-writer.ts";
import { SANDBOX_LIFECYCLE_SCOPE } from "./client-proxy-auth.ts";
import { type ControlPlane, DEFAULT_CONTROL_PLANE_PORT, startControlPlane } from "./control-plane.ts";
import { createDemoRuntime } from "./demo-sandbox.ts";
import { type Log, silent } from "./model.ts";
import { DEFAULT_NODE_PORT, type DevNode, startNode } from "./node.ts";
import type { NodeRouting } from "./node-routing.ts";
import { createRegistry } from "./registry.ts";
import { DEFAULT_REST_API_KEY } from "./rest-api.ts";
import type { TokenPolicy } from "./resume-service.ts";
import { type OAuthClient, startTokenEndpoint, type TokenEndpoint } from "./token-endpoint.ts";

/** The client a stack in oauth2 mode registers unless told otherwise (its orgId is the stack's authOrgId). */
export const DEFAULT_OAUTH_CLIENT_ID = "sandbox-edge-proxy-dev";
export const DEFAULT_OAUTH_CLIENT_SECRET = "dev-oauth-client-secret-4d7b2e";

export type StackAuth =
	| { mode: "api_secret" }
	| {
			mode: "oauth2";
			/** The cluster's auth org ID, which tokens' org_id must equal. */
			authOrgId: string;
			tokenEndpoint?: {
				/** Default: one client, DEFAULT_OAUTH_CLIENT_ID / _SECRET, in authOrgId, with sandboxes:lifecycle. */
				clients?: OAuthClient[];
				/** Default 3600. */
				tokenTtlSeconds?: number;
			};
	  };

export interface StackOptions {
	/** x-e2b-client-proxy-auth's value in api_secret mode; unused in oauth2 mode. */
	apiSecret: string;
	/** How the control plane authenticates the edge; default { mode: "api_secret" }. */
	auth?: StackAuth;
	/** The token endpoint's port in oauth2 mode; default 0 (ephemeral). */
	tokenEndpointPort?: number;
	/** The team of sandboxes created without one; a UUID, default DEV_TEAM_ID. */
	teamId?: string;
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
	/** How long ResumeSandbox waits out a pause; default 60 s, as E2B's API. */
	transitionWaitMs?: number;
	/** How the node reads a request's sandbox; default "headers-or-host" (E2B since May 2026), or "host" (before). */
	nodeRouting?: NodeRouting;
	/** Whether the node also marks "not here" with a header E2B's nodes never send; default false. */
	nodeNotFoundHeader?: boolean;
	/** Whether the node strips that header from sandboxes' responses; default true (E2B's nodes do not). */
	nodeStripsNotHereHeader?: boolean;
	/** The edge's catalog API to write to; without it, the catalog is fed by resumes alone. */
	catalog?: CatalogConnection;
	/** The X-API-Key of E2B's REST API on the control plane; default DEFAULT_REST_API_KEY; false turns the API off. */
	restApiKey?: string | false;
	/** The base domain of sandbox traffic that the REST API names in its answers, e.g. "localhost:8787"; default none. */
	restSandboxDomain?: string;
	/** Receives lines prefixed "[control-plane] " or "[node] "; default silent. */
	log?: Log;
}

export interface CatalogConnection {
	/** The catalog API's origin, e.g. http://edge.localhost:8787. */
	edgeUrl: string;
	/** CATALOG_SECRET. */
	secret: string;
}

export interface Stack {
	/** e.g. http://127.0.0.1:8790, the value for CONTROL_PLANE_URL, and for E2B_API_URL (E2B's REST API). */
	controlPlaneUrl: string;
	/** The REST API's X-API-Key (E2B_API_KEY), or undefined when the API is off. */
	restApiKey: string | undefined;
	nodePort: number;
	/** e.g. http://{ip}:5007 with the node's port, the value for NODE_ORIGIN_TEMPLATE. */
	nodeOriginTemplate: string;
	controlPlane: ControlPlane;
	node: DevNode;
	/** The OAuth2 token endpoint and issuer, in oauth2 mode; undefined in api_secret mode. */
	tokenEndpoint: TokenEndpoint | undefined;
	/**
	 * Points the control plane's catalog writes at an edge (started after the
	 * stack, since it needs the stack's addresses), or turns them off.
	 */
	connectCatalog(connection: CatalogConnection | undefined): void;
	close(): Promise<void>;
}

export async function startStack(options: StackOptions): Promise<Stack> {
	const log = options.log ?? silent;
	const prefixed =
		(prefix: string): Log =>
		(line) =>
			log(`[${prefix}] ${line}`);

	const auth = options.auth ?? { mode: "api_secret" };
	const tokenEndpoint =
		auth.mode === "oauth2"
			? await startTokenEndpoint({
					clients: auth.tokenEndpoint?.clients ?? [
						{
							clientId: DEFAULT_OAUTH_CLIENT_ID,
							clientSecret: DEFAULT_OAUTH_CLIENT_SECRET,
							orgId: auth.authOrgId,
							scopes: [SANDBOX_LIFECYCLE_SCOPE],
						},
					],
					port: options.tokenEndpointPort ?? 0,
					...(auth.tokenEndpoint?.tokenTtlSeconds === undefined
						? {}
						: { tokenTtlSeconds: auth.tokenEndpoint.tokenTtlSeconds }),
					log: prefixed("token-endpoint"),
				})
			: undefined;
	const registry = createRegistry({
		runtime: createDemoRuntime({ log: prefixed("control-plane") }),
		orchestratorIp: options.orchestratorIp ?? "127.0.0.1",
		resumeDelayMs: options.resumeDelayMs ?? 1000,
		pauseDelayMs: options.pauseDelayMs ?? 300,
		...(options.teamId === undefined ? {} : { teamId: options.teamId }),
		log: prefixed("control-plane"),
	});
	const connectCatalog = (connection: CatalogConnection | undefined) =>
		registry.attachCatalog(
			connection === undefined ? undefined : createCatalogWriter({ ...connection, log: prefixed("control-plane") }),
		);
	connectCatalog(options.catalog);
	let node: DevNode;
	try {
		node = await startNode({
			directory: registry,
			port: options.nodePort ?? DEFAULT_NODE_PORT,
			routing: options.nodeRouting ?? "headers-or-host",
			notFoundHeader: options.nodeNotFoundHeader ?? false,
			stripNotHereHeader: options.nodeStripsNotHereHeader ?? true,
			log: prefixed("node"),
		});
	} catch (error) {
		await registry.close();
		await tokenEndpoint?.close();
		throw error;
	}
	let controlPlane: ControlPlane;
	try {
		controlPlane = await startControlPlane({
			apiSecret: options.apiSecret,
			auth:
				tokenEndpoint === undefined || auth.mode !== "oauth2"
					? { mode: "api_secret" }
					: { mode: "oauth2", issuerUrl: tokenEndpoint.url, authOrgId: auth.authOrgId },
			registry,
			port: options.controlPlanePort ?? DEFAULT_CONTROL_PLANE_PORT,
			tokenPolicy: options.tokenPolicy ?? "e2b",
			...(options.transitionWaitMs === undefined ? {} : { transitionWaitMs: options.transitionWaitMs }),
			...(options.restApiKey === false ? {} : { restApiKey: options.restApiKey ?? DEFAULT_REST_API_KEY }),
			...(options.restSandboxDomain === undefined ? {} : { restSandboxDomain: options.restSandboxDomain }),
			log: prefixed("control-plane"),
		});
	} catch (error) {
		await node.close();
		await registry.close();
		await tokenEndpoint?.close();
		throw error;
	}

	let closing: Promise<void> | undefined;
	return {
		controlPlaneUrl: controlPlane.url,
		restApiKey: options.restApiKey === false ? undefined : (options.restApiKey ?? DEFAULT_REST_API_KEY),
		nodePort: node.port,
		nodeOriginTemplate: `http://{ip}:${node.port}`,
		controlPlane,
		node,
		tokenEndpoint,
		connectCatalog,
		close() {
			closing ??= (async () => {
				await Promise.all([controlPlane.close(), node.close()]);
				await registry.close();
				await tokenEndpoint?.close();
			})();
			return closing;
		},
	};
}
