/**
 * The wrangler bindings the Worker uses when they are there, documented with
 * the settings (docs/configuration.md) and never parsed: each module reads
 * its own from `env`. Their values (a budget's limit and period) are
 * wrangler.toml's, which scripts/config-docs.ts reads.
 */
import { type Binding, see } from "./schema.ts";

export const bindings = {
	METRICS: {
		kind: "analytics_engine_datasets",
		unset: "(unbound: no metrics)",
		doc: `Workers Analytics Engine dataset for wake and error metrics; ${see("Telemetry", "operations.md#telemetry")}`,
	},
	RESUME_LIMIT_PER_CLIENT: {
		kind: "ratelimits",
		unset: "(unbound: no budget)",
		doc: `resumes per client (its address; an IPv6 client's /64), checked before a \`ResumeSandbox\` call; ${see("Budgets", "operations.md#budgets")}`,
	},
	RESUME_LIMIT_PER_CALLER: {
		kind: "ratelimits",
		unset: "(unbound: no budget)",
		doc: `resumes per sandbox and caller's credentials: one caller cannot wake one sandbox in a loop; ${see("Budgets", "operations.md#budgets")}`,
	},
	LOOKUP_LIMIT_PER_CLIENT: {
		kind: "ratelimits",
		unset: "(unbound: no budget)",
		doc: `lookups past every cache per client, for sandboxes the isolate has not routed in the last 10 minutes, before a sandbox's object is addressed; ${see("Budgets", "operations.md#budgets")}`,
	},
	NODES: {
		kind: "vpc_networks",
		unset: "(unbound)",
		doc: `Workers VPC Network binding that reaches the nodes' private IPs: when bound, every request to a node goes through it, and otherwise through the global \`fetch()\`, which cannot reach a private IP (${see("Deploy, step 3, option C", "deploy.md#c-workers-vpc")}); unused with \`NODE_RESOLVE_OVERRIDE\``,
	},
} as const satisfies Record<string, Binding>;

export type BindingName = keyof typeof bindings;
