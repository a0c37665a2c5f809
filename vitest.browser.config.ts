import { defineConfig } from "vitest/config";

// `npm run test:browser`: the waiting page in a real browser (Debian's
// chromium, driven by playwright-core), against the local stack. Apart from
// `npm test` because it needs chromium on the machine; `.ci/run` installs it
// and runs both.
export default defineConfig({
	test: {
		name: "browser",
		include: ["test/browser/**/*.test.ts"],
		environment: "node",
		testTimeout: 60_000,
		hookTimeout: 60_000,
	},
});
