import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { createFakeUpstream } from "./test/unit/fake-upstream.ts";

// The "properties" project's control plane. No such host exists: every fetch
// the Worker makes there, or to a node, is answered by the fake upstream.
const fakeControlPlaneUrl = "http://control-plane.test:8790";
const propertySecrets = { API_SECRET: "prop-api-secret-7c1e9a", CATALOG_SECRET: "prop-catalog-secret-4b8d2f" };
const fakeUpstream = createFakeUpstream({ controlPlaneUrl: fakeControlPlaneUrl, secrets: propertySecrets });

export default defineConfig({
	test: {
		projects: [
			{
				// Unit tests run inside workerd, against the real Worker and
				// Durable Object classes.
				plugins: [
					cloudflareTest({
						wrangler: { configPath: "./wrangler.toml" },
						miniflare: {
							// These override .dev.vars, so the tests are the same on a fresh clone, which has none.
							bindings: {
								API_SECRET: "unit-test-secret",
								CATALOG_SECRET: "unit-test-catalog-secret",
								OAUTH_CLIENT_SECRET: "unit-test-oauth-client-secret",
								// Nothing listens on port 9: a resume here fails fast, by design.
								CONTROL_PLANE_URL: "http://127.0.0.1:9",
							},
						},
					}),
				],
				test: {
					name: "unit",
					include: ["test/unit/**/*.test.ts"],
				},
			},
			{
				// Unit and property tests that must see every fetch the Worker
				// makes: the Worker and its Durable Objects run in workerd, and
				// their outbound fetches come back to Node, to a fake control
				// plane and fake nodes (test/unit/fake-upstream.ts) that record
				// them and that tests script through the UPSTREAM binding.
				// Its files are test/unit/*.spec.ts, so that the "unit"
				// project, which has no such fake, does not run them.
				plugins: [
					cloudflareTest({
						wrangler: { configPath: "./wrangler.toml" },
						miniflare: {
							bindings: {
								...propertySecrets,
								OAUTH_CLIENT_SECRET: "prop-oauth-client-secret-2a9c",
								CONTROL_PLANE_URL: fakeControlPlaneUrl,
								ENVIRONMENT: "development",
								// Longest-match and several domains, as production may have.
								SANDBOX_DOMAIN: "localhost,sbx.example.com,eu.sbx.example.com",
								// Retries of a port that a woken sandbox has not opened yet:
								// still made, but few and quick, as the fake's closed ports never open.
								PORT_RETRY_ATTEMPTS: "2",
								PORT_RETRY_DELAY_MS: "1",
								// Shorter memories of failures than production's (30 s, 30 s),
								// so that a sandbox of the property tests' pool that failed is
								// asked about again within the run, not answered from memory.
								NOT_FOUND_CACHE_MS: "5000",
								RESUME_BACKOFF_MAX_MS: "4000",
							},
							// Budgets far above what a property run spends, so that
							// requests reach the control plane rather than a 429.
							ratelimits: {
								RESUME_LIMIT_PER_CLIENT: { namespace_id: "1001", simple: { limit: 1_000_000, period: 60 } },
								RESUME_LIMIT_PER_CALLER: { namespace_id: "1002", simple: { limit: 1_000_000, period: 60 } },
							},
							outboundService: (request) => fakeUpstream.outbound(request),
							serviceBindings: { UPSTREAM: { node: (request, response) => fakeUpstream.control(request, response) } },
						},
					}),
				],
				test: {
					name: "properties",
					include: ["test/unit/**/*.spec.ts"],
					// The fake upstream's records are shared; one file at a time keeps each test's its own.
					fileParallelism: false,
					testTimeout: 120_000,
				},
			},
			{
				// End-to-end tests run in Node: the Worker in workerd on a real
				// socket, against the development control plane, node and
				// sandboxes.
				test: {
					name: "e2e",
					include: ["test/e2e/**/*.test.ts"],
					environment: "node",
					testTimeout: 60_000,
					hookTimeout: 60_000,
				},
			},
		],
	},
});
