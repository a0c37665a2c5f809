// The development stack behind a model of production (production-edge.ts):
// the Worker reaches the control plane and the node only as a deployed Worker
// would, through the zone example.test, with each of the runbook's ways to
// reach the nodes (docs/deploy.md, step 3) set up as the runbook says.

import { createAdminClient } from "../../dev/admin-client.ts";
import { startStack } from "../../dev/stack.ts";
import { apiSecret, catalogSecret, type E2eStack, type ResumeLimits, startWorker } from "./fixture.ts";
import { fetchVia, type Received, type SendOptions } from "./http-client.ts";
import { type DnsRecord, ProductionEdge, type ProductionEdgeOptions } from "./production-edge.ts";

export const zone = "example.test";
export const sandboxDomain = `sandbox.${zone}`;
/** The address the control plane reports for the node, as E2B's reports a node's private IP. */
export const nodeIp = "10.0.0.5";
const tunnelIdPrefix = "6ff42ae2-765d-4adf-8112-31c55c15";
const controlPlaneHost = "api.cp.example.net";
const controlPlaneIp = "198.51.100.1";

/**
 * How the Worker reaches the nodes:
 * - "A": DNS-only hostnames, `http://sandbox.n-{ip_dashed}.nodes.<zone>:5007`;
 * - "B": a tunnel per node with `httpHostHeader: localhost`, `https://n-{ip_dashed}.nodes.<zone>`;
 * - "C": Workers VPC, `http://{ip}:5007` through a NODES binding;
 * - "D": Host-preserving: NODE_RESOLVE_OVERRIDE `n-{ip_dashed}.nodes.<zone>`, a tunnel per node that passes Host;
 * - "local": the local default `http://{ip}:5007` with no binding, which only Miniflare allows;
 * - "proxied-port": a proxied node name with `:5007`, whose port Cloudflare ignores;
 * - "override-outside-zone": NODE_RESOLVE_OVERRIDE naming a host outside the zone, which Cloudflare ignores.
 */
export type NodeReach = "A" | "B" | "C" | "D" | "local" | "proxied-port" | "override-outside-zone";

export interface ProductionStackOptions {
	reach: NodeReach;
	/** How the node routes; default E2B's current nodes ("headers-or-host"); "host" is the seed era's. */
	nodeRouting?: "headers-or-host" | "host";
	workerVars?: Record<string, string>;
	limits?: ResumeLimits;
	/**
	 * More nodes, set up as the chosen option sets up every node: a test's
	 * own node (dev/node.ts with a directory of its own apps) at an address
	 * that routes pushed with that `orchestrator_ip` lead to.
	 */
	extraNodes?: { ip: string; port: number }[];
}

export interface ProductionStack extends E2eStack {
	edge: ProductionEdge;
	/** The host a client uses for a sandbox's port, e.g. 3000-abc.sandbox.example.test:41234. */
	sandboxHost(sandboxId: string, port?: number): string;
	/** A request to the Worker as a client of that host would send it. */
	request(host: string, path: string, options?: SendOptions): Promise<Received>;
}

export async function startProductionStack(options: ProductionStackOptions): Promise<ProductionStack> {
	const stack = await startStack({
		apiSecret,
		controlPlanePort: 0,
		nodePort: 0,
		resumeDelayMs: 200,
		pauseDelayMs: 50,
		transitionWaitMs: 500,
		orchestratorIp: nodeIp,
		...(options.nodeRouting === undefined ? {} : { nodeRouting: options.nodeRouting }),
	});
	const controlPlanePort = new URL(stack.controlPlaneUrl).port;
	const nodes = [{ ip: nodeIp, port: stack.nodePort }, ...(options.extraNodes ?? [])];
	const reach = merged(
		nodes.map((node, index) => reachSettings(options.reach, node.ip, `127.0.0.1:${node.port}`, index)),
	);
	const edge = new ProductionEdge({
		zone,
		records: [
			// The runbook's step 1: sandbox hosts have no origin but the Worker.
			{ name: `*.${sandboxDomain}`, type: "AAAA", content: "100::", proxied: true },
			{ name: `edge.${sandboxDomain}`, type: "AAAA", content: "100::", proxied: true },
			{ name: controlPlaneHost, type: "A", content: controlPlaneIp, proxied: false },
			...reach.records,
		],
		tunnels: reach.tunnels ?? {},
		listeners: { [`${controlPlaneIp}:${controlPlanePort}`]: `127.0.0.1:${controlPlanePort}`, ...reach.listeners },
	});
	const vars = {
		// localhost too, so that the control plane's catalog writer reaches edge.localhost.
		SANDBOX_DOMAIN: `${sandboxDomain},localhost`,
		CONTROL_PLANE_URL: `http://${controlPlaneHost}:${controlPlanePort}`,
		RESUME_TIMEOUT_MS: "5000",
		...reach.vars,
		...options.workerVars,
	};
	const worker = await startWorker(
		vars,
		apiSecret,
		options.limits,
		{},
		{
			fetch: edge.outbound,
			...(options.reach === "C" ? { nodes: edge.vpcNetwork } : {}),
		},
	);
	stack.connectCatalog({ edgeUrl: `http://edge.localhost:${worker.url.port}`, secret: catalogSecret });
	const sandboxHost = (sandboxId: string, port = 3000) => `${port}-${sandboxId}.${sandboxDomain}:${worker.url.port}`;
	return {
		stack,
		admin: createAdminClient(stack.controlPlaneUrl),
		worker,
		vars,
		edge,
		sandboxHost,
		request: (host, path, sendOptions) => fetchVia(worker.url, host, path, sendOptions),
		close: async () => {
			await worker.close();
			await stack.close();
		},
	};
}

interface ReachSettings {
	vars: Record<string, string>;
	records: DnsRecord[];
	tunnels?: ProductionEdgeOptions["tunnels"];
	listeners: Record<string, string>;
}

function merged(settings: ReachSettings[]): ReachSettings {
	return {
		vars: Object.assign({}, ...settings.map((s) => s.vars)),
		records: settings.flatMap((s) => s.records),
		tunnels: Object.assign({}, ...settings.map((s) => s.tunnels ?? {})),
		listeners: Object.assign({}, ...settings.map((s) => s.listeners)),
	};
}

/** One node's records, tunnel and listeners under an option; `index` tells nodes' public addresses and tunnels apart. */
function reachSettings(reach: NodeReach, nodeIp: string, node: string, index: number): ReachSettings {
	const dashed = nodeIp.replaceAll(".", "-");
	const nodePublicIp = `203.0.113.${5 + index}`;
	const tunnelId = `${tunnelIdPrefix}${String(index).padStart(4, "0")}`;
	const tunnelRecord: DnsRecord = {
		name: `n-${dashed}.nodes.${zone}`,
		type: "CNAME",
		content: `${tunnelId}.cfargotunnel.com`,
		proxied: true,
	};
	switch (reach) {
		case "A":
			return {
				vars: { NODE_ORIGIN_TEMPLATE: `http://sandbox.n-{ip_dashed}.nodes.${zone}:5007` },
				records: [{ name: `sandbox.n-${dashed}.nodes.${zone}`, type: "A", content: nodePublicIp, proxied: false }],
				listeners: { [`${nodePublicIp}:5007`]: node },
			};
		case "B":
			return {
				vars: { NODE_ORIGIN_TEMPLATE: `https://n-{ip_dashed}.nodes.${zone}` },
				records: [tunnelRecord],
				tunnels: { [tunnelId]: [{ service: `http://${node}`, httpHostHeader: "localhost" }] },
				listeners: {},
			};
		case "C":
		case "local":
			return {
				vars: { NODE_ORIGIN_TEMPLATE: "http://{ip}:5007" },
				records: [],
				listeners: { [`${nodeIp}:5007`]: node },
			};
		case "D":
			return {
				vars: { NODE_RESOLVE_OVERRIDE: `n-{ip_dashed}.nodes.${zone}` },
				records: [tunnelRecord],
				tunnels: { [tunnelId]: [{ service: `http://${node}` }] },
				listeners: {},
			};
		case "proxied-port":
			return {
				vars: { NODE_ORIGIN_TEMPLATE: `http://n-{ip_dashed}.nodes.${zone}:5007` },
				records: [{ name: `n-${dashed}.nodes.${zone}`, type: "A", content: nodePublicIp, proxied: true }],
				listeners: { [`${nodePublicIp}:5007`]: node },
			};
		case "override-outside-zone":
			return {
				vars: { NODE_RESOLVE_OVERRIDE: "n-{ip_dashed}.nodes.example.org" },
				records: [{ ...tunnelRecord, name: `n-${dashed}.nodes.example.org` }],
				tunnels: { [tunnelId]: [{ service: `http://${node}` }] },
				listeners: {},
			};
	}
}
