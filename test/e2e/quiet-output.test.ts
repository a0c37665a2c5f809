import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../..", import.meta.url));
const vitestBin = fileURLToPath(new URL("../../node_modules/vitest/vitest.mjs", import.meta.url));

/**
 * Runs one unit test file in a Vitest of its own, as `npm test` runs it, and
 * gives everything it printed. object-reset.test.ts fails on purpose in the
 * two ways workerd is loudest about: its resume goes to the dead control
 * plane at 127.0.0.1:9 ("Connection refused", "Network connection lost"), and
 * it resets the sandbox's object mid-resume ("outputGateBroken").
 */
async function runUnitFile(file: string, env: Record<string, string> = {}): Promise<string> {
	const { WORKERD_VERBOSE: _verbose, ...inherited } = process.env;
	const { stdout, stderr } = await promisify(execFile)(
		process.execPath,
		[vitestBin, "run", "--project", "unit", file],
		{
			cwd: root,
			env: { ...inherited, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", FORCE_COLOR: "0", ...env },
			maxBuffer: 16 * 1024 * 1024,
		},
	);
	return `${stdout}\n${stderr}`;
}

const workerdNoise = [
	"Connection refused",
	"Network connection lost",
	"outputGateBroken",
	"uncaught exception",
	"workerd-linux-64/bin/workerd@",
];
const wranglerSecretNotes = ["Using secrets defined in", "Missing required secrets"];

describe("npm test's output", () => {
	it("has none of workerd's diagnostics for the failures the unit tests cause on purpose, nor wrangler's notes on secrets", async () => {
		const output = await runUnitFile("test/unit/object-reset.test.ts");
		expect(output).toMatch(/Tests\s+1 passed/);
		for (const noise of [...workerdNoise, ...wranglerSecretNotes]) expect(output).not.toContain(noise);
	}, 180_000);

	it("still has workerd's diagnostics with WORKERD_VERBOSE=1, for debugging workerd itself", async () => {
		const output = await runUnitFile("test/unit/object-reset.test.ts", { WORKERD_VERBOSE: "1" });
		expect(output).toMatch(/Tests\s+1 passed/);
		expect(output).toContain("outputGateBroken");
	}, 180_000);
});
