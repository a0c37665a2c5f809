import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium } from "playwright-core";

// Debian's chromium, driven by playwright-core. CHROMIUM_PATH overrides
// /usr/bin/chromium; SCREENSHOT_DIR is where screenshots go.

const executablePath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const screenshots =
	process.env.SCREENSHOT_DIR ?? join(new URL("../..", import.meta.url).pathname, "bench/results");

/** Launches headless chromium as the machine's probe runs it, with `extraArgs` after the common ones. */
export async function launchChromium(extraArgs: readonly string[] = []): Promise<Browser> {
	if (!existsSync(executablePath)) {
		throw new Error(
			`no browser at ${executablePath}: install Debian's chromium (apt-get install -y chromium; .ci/run does) or set CHROMIUM_PATH`,
		);
	}
	mkdirSync(screenshots, { recursive: true });
	return chromium.launch({
		executablePath,
		headless: true,
		// No sandbox as root, and nothing that reaches for the network.
		args: [
			"--no-sandbox",
			"--disable-gpu",
			"--disable-quic",
			"--no-first-run",
			"--disable-background-networking",
			"--disable-component-update",
			"--disable-sync",
			...extraArgs,
		],
	});
}
