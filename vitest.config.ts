import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { createFakeUpstream } from "./test/unit/fake-upstream.ts";

// The "properties" project's control plane. No such host exists: every fetch
// the Worker makes there, or to a node, is answered by the fake upstream.
const fakeControlPlaneUrl = "http://control-plane.test:8790";
const propertySecrets = { API_SECRET: "prop-api-secret-7c1e9a", CATALOG_SECRET: "prop-catalog-secret-4b8d2f" };
const fakeUpstream = createFakeUpstream({ controlPlaneUrl: fakeControlPlaneUrl, secrets: propertySecrets });

// workerd's own diagnostics, off in the two workerd projects. With them on
// (the plugin's default), workerd prints a line or three for every failure
// the tests cause on purpose: "Connection refused" and "Network connection
// lost" for each fetch to the dead control plane at 127.0.0.1:9 (even when
// the Worker handles the error), "outputGateBroken; reset for the test" for
// each object a test resets, "read end of pipe was aborted" for each body a
// test abandons, and a non-ASCII warning for each Unicode header the
// property tests send to be refused. None of it is a failure: Vitest itself
// reports failed assertions and every uncaught error and unhandled rejection
// in the isolate, and the Worker's own console output is still printed.
// WORKERD_VERBOSE=1 turns them back on when you debug workerd itself.
const workerdVerbose = process.env.WORKERD_VERBOSE === "1";

// wrangler reads wrangler.toml again for every test file of those projects
// and says each time where it found the secrets ("Using secrets defined in
// .dev.vars"), or, on a clean clone, warns that they are missing. The
// projects' bindings below replace those secrets, so the notes say nothing
// about the tests. Only these two notes are dropped, only in this process.
dropWranglerSecretNotes();

function dropWranglerSecretNotes(): void {
	const isSecretNote = (args: unknown[]) =>
		typeof args[0] === "string" &&
		(args[0].startsWith("Using secrets defined in ") || args[0].includes("Missing required secrets: "));
	for (const method of ["log", "warn"] as const) {
		const original = console[method].bind(console);
		console[method] = (...args: unknown[]) => {
			if (!isSecretNote(args)) original(...args);
		};
	}
}

// The Worker's own log lines (one JSON line per request and per event, see
// README, "Telemetry") are what an operator reads, not a test: hundreds of
// them would bury the report. Tests that check them read them from the
// Worker (test/e2e's logText()); WORKER_LOGS=1 prints them here too.
const showWorkerLogs = process.env.WORKER_LOGS === "1";

export default defineConfig({
	test: {
		onConsoleLog: (log) => showWorkerLogs || !log.startsWith('{"event":'),
		projects: [
			{
				// Unit tests run inside workerd, against the real Worker and
				// Durable Object classes.
				plugins: [
					cloudflareTest({
						wrangler: { configPath: "./wrangler.toml" },
						verbose: workerdVerbose,
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
						verbose: workerdVerbose,
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
								// The fake nodes mark "not here" with the development header as well.
								TRUST_NOT_HERE_HEADER: "true",
							},
							// Budgets far above what a property run spends, so that
							// requests reach the control plane rather than a 429.
							ratelimits: {
								RESUME_LIMIT_PER_CLIENT: { namespace_id: "1001", simple: { limit: 1_000_000, period: 60 } },
								RESUME_LIMIT_PER_CALLER: { namespace_id: "1002", simple: { limit: 1_000_000, period: 60 } },
								LOOKUP_LIMIT_PER_CLIENT: { namespace_id: "1003", simple: { limit: 1_000_000, period: 60 } },
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
