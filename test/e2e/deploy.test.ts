import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { unstable_readConfig } from "wrangler";
import { buildProduction, describeBudget, gzipBudgetBytes } from "../../scripts/check-deploy.ts";

// The production environment as wrangler resolves it (what `wrangler deploy
// --env production` would use), and the bundle it would upload. The local
// Worker's name and the bindings both have are checked in edges.test.ts.

/** The parts of wrangler's resolved configuration checked here. */
interface DeployConfig {
	workers_dev?: boolean;
	compatibility_flags?: string[];
	routes?: (string | { pattern: string; zone_name?: string; zone_id?: string })[];
	vars: Record<string, unknown>;
	secrets?: { required?: string[] };
	durable_objects: { bindings: { name: string; class_name: string }[] };
	migrations: { tag: string; new_sqlite_classes?: string[] }[];
	observability?: {
		enabled?: boolean;
		logs?: { enabled?: boolean; head_sampling_rate?: number; invocation_logs?: boolean };
	};
	analytics_engine_datasets: { binding: string; dataset?: string }[];
}

const root = new URL("../..", import.meta.url).pathname;
function readConfig(env?: string): DeployConfig {
	const config: unknown = unstable_readConfig({
		config: `${root}wrangler.toml`,
		...(env === undefined ? {} : { env }),
	});
	return config as DeployConfig;
}
const local = readConfig();
const production = readConfig("production");
const vars = production.vars;
const sandboxDomains = String(vars.SANDBOX_DOMAIN ?? "")
	.split(",")
	.map((domain) => domain.trim())
	.filter((domain) => domain !== "");

/** A route as the Worker is deployed on it: its pattern, and the zone it needs. */
function routeOf(route: NonNullable<DeployConfig["routes"]>[number]): { pattern: string; zone: string | undefined } {
	if (typeof route === "string") return { pattern: route, zone: undefined };
	return { pattern: route.pattern, zone: route.zone_name ?? route.zone_id };
}

describe("deploys: the production environment", () => {
	it("is routed on the sandbox hosts and on the catalog API's host, each on a zone", () => {
		expect(sandboxDomains.length).toBeGreaterThan(0);
		const routes = (production.routes ?? []).map(routeOf);
		const patterns = routes.map((route) => route.pattern).sort();
		expect(patterns).toEqual(sandboxDomains.flatMap((domain) => [`*.${domain}/*`, `edge.${domain}/*`]).sort());
		for (const route of routes) {
			expect(route.zone, `${route.pattern} needs a zone_name or zone_id`).toBeTruthy();
			// The route's zone holds the host it matches.
			const host = route.pattern.replace(/^\*\./, "").replace(/\/\*$/, "");
			expect(host === route.zone || host.endsWith(`.${route.zone}`), `${route.pattern} on ${route.zone}`).toBe(true);
		}
		expect(production.workers_dev).toBe(false);
	});

	it("binds both Durable Object classes, each created by an inherited migration", () => {
		const bindings = production.durable_objects.bindings.map(({ name, class_name }) => ({ name, class_name }));
		expect(bindings).toEqual(
			expect.arrayContaining([
				{ name: "SANDBOX_ROUTE", class_name: "SandboxRoute" },
				{ name: "CONTROL_PLANE_TOKEN", class_name: "ControlPlaneToken" },
			]),
		);
		expect(bindings).toHaveLength(2);
		// An environment cannot override the migration list: it is the top level's.
		expect(production.migrations).toEqual(local.migrations);
		expect(production.migrations.map(({ tag, new_sqlite_classes }) => ({ tag, new_sqlite_classes }))).toEqual([
			{ tag: "v1", new_sqlite_classes: ["SandboxRoute"] },
			{ tag: "v2", new_sqlite_classes: ["ControlPlaneToken"] },
		]);
		const created = production.migrations.flatMap((migration) => migration.new_sqlite_classes ?? []);
		for (const { class_name } of bindings) expect(created).toContain(class_name);
	});

	it("requires exactly the secrets of its modes (auth mode, catalog API)", () => {
		const required = [...(production.secrets?.required ?? [])].sort();
		const auth = String(vars.CONTROL_PLANE_AUTH ?? "api_secret");
		expect(["api_secret", "oauth2"]).toContain(auth);
		if (auth === "oauth2") {
			expect(vars.OAUTH_TOKEN_URL, "oauth2 needs OAUTH_TOKEN_URL").toBeTruthy();
			expect(vars.OAUTH_CLIENT_ID, "oauth2 needs OAUTH_CLIENT_ID").toBeTruthy();
		}
		const authSecret = auth === "oauth2" ? "OAUTH_CLIENT_SECRET" : "API_SECRET";
		const expected = required.includes("CATALOG_SECRET") ? [authSecret, "CATALOG_SECRET"] : [authSecret];
		expect(required).toEqual(expected.sort());
		// No secret is also a plain-text var.
		for (const name of required) expect(vars).not.toHaveProperty(name);
	});

	it("ships the default mode: api_secret with the catalog API on", () => {
		expect(vars.CONTROL_PLANE_AUTH ?? "api_secret").toBe("api_secret");
		expect([...(production.secrets?.required ?? [])].sort()).toEqual(["API_SECRET", "CATALOG_SECRET"]);
	});

	it("has observability on and the METRICS Analytics Engine dataset", () => {
		expect(production.observability?.enabled).toBe(true);
		// Every line of ours kept (routine ones are sampled by the Worker), without Cloudflare's per-request invocation log.
		expect(production.observability?.logs).toEqual({ enabled: true, head_sampling_rate: 1, invocation_logs: false });
		expect(production.analytics_engine_datasets).toEqual([{ binding: "METRICS", dataset: "sandbox_edge_proxy" }]);
	});

	it("keeps same-zone subrequests away from this Worker's own route (no global_fetch_strictly_public)", () => {
		// With it, the Worker's fetch of the client's own URL would come back to the Worker.
		expect(production.compatibility_flags ?? []).not.toContain("global_fetch_strictly_public");
	});

	it("forwards with the client's Host (NODE_RESOLVE_OVERRIDE), to a node name in the routes' own zone", () => {
		// resolveOverride is ignored unless the URL's host and the override are in one zone.
		const override = String(vars.NODE_RESOLVE_OVERRIDE ?? "");
		expect(override).toContain("{ip_dashed}");
		const zones = new Set((production.routes ?? []).map((route) => routeOf(route).zone));
		expect(zones.size).toBe(1);
		const [zone] = [...zones];
		expect(override.endsWith(`.${zone}`)).toBe(true);
		for (const domain of String(vars.SANDBOX_DOMAIN).split(",")) expect(domain.trim().endsWith(`.${zone}`)).toBe(true);
	});

	// About 4 s: wrangler bundles the Worker as it would upload it.
	it(`builds with \`wrangler deploy --dry-run\` into a bundle within ${gzipBudgetBytes.toLocaleString("en-US")} B of gzip, the control-plane client loaded on first use`, () => {
		const outdir = mkdtempSync(join(tmpdir(), "deploy-test-"));
		try {
			const build = buildProduction(outdir);
			expect(build.wranglerSizeLine).toMatch(/^Total Upload: /);
			expect(build.output).toContain("env.METRICS");
			expect(build.gzipBytes, describeBudget(build.gzipBytes)).toBeLessThanOrEqual(gzipBudgetBytes);

			// Every new isolate runs what the entry imports statically: the
			// control-plane client (Connect, protobuf, the generated service)
			// is needed only by a cold path, which loads it with import().
			// Walked in esbuild's own graph, as wrangler bundled it.
			const meta = JSON.parse(readFileSync(build.metafilePath, "utf8")) as Metafile;
			const eager = staticallyReached(meta, "src/index.ts");
			const lazyOnly = [
				/node_modules\/@connectrpc\//,
				/node_modules\/@bufbuild\//,
				/^src\/gen\//,
				/^src\/control-plane\/sandbox-service\.ts$/,
			];
			expect([...eager].filter((input) => lazyOnly.some((pattern) => pattern.test(input)))).toEqual([]);
			// ...and they are in the bundle, reached through the dynamic import.
			const bundled = Object.keys(meta.inputs);
			expect(bundled).toContain("src/control-plane/connected-client.ts");
			expect(bundled.some((input) => input.includes("node_modules/@connectrpc/connect/"))).toBe(true);
		} finally {
			rmSync(outdir, { recursive: true, force: true });
		}
	});
});

/** The part of esbuild's metafile read here. */
interface Metafile {
	inputs: Record<string, { imports: { path: string; kind: string; external?: boolean }[] }>;
}

/** The inputs that evaluating `entry` evaluates: its static imports, transitively; not import() nor require(). */
function staticallyReached(meta: Metafile, entry: string): Set<string> {
	const reached = new Set<string>();
	const visit = (input: string) => {
		if (reached.has(input)) return;
		reached.add(input);
		for (const edge of meta.inputs[input]?.imports ?? []) {
			if (edge.kind === "import-statement" && edge.external !== true) visit(edge.path);
		}
	};
	visit(entry);
	return reached;
}

describe("deploys: the budget's verdict", () => {
	it("says the size, the budget and the margin", () => {
		expect(describeBudget(97_099)).toBe(
			"gzip 97,099 B (zlib default level), budget 100,000 B: within budget, 2,901 B to spare",
		);
		expect(describeBudget(100_000)).toContain("within budget, 0 B to spare");
		expect(describeBudget(100_001)).toBe("gzip 100,001 B (zlib default level), budget 100,000 B: OVER budget by 1 B");
	});
});
