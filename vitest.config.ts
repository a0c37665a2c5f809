import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

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
