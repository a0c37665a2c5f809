import { beforeAll, describe, expect, it } from "vitest";
import { smoke } from "../../bench/profiles.ts";
import { cases, runSuite, type SuiteResult } from "../../bench/suite.ts";

// The benchmark suite (`npm run bench`) in its seconds-long profile: every
// case runs, against its baseline, and its exact counts hold (one RPC per
// wake, every echo back, every byte through, every catalog write applied).
// No timing is checked: speed is measured by `npm run bench`, never asserted.

let result: SuiteResult;

beforeAll(async () => {
	result = await runSuite(smoke);
}, 240_000);

describe("benchmark suite, smoke profile", () => {
	it("runs every case and reports a figure for each", () => {
		expect(result.cases.length).toBe(cases.length);
		for (const c of result.cases) expect(c.rows.length, c.name).toBeGreaterThan(0);
	});

	it.each(cases.map((c, index) => [c.key, index] as const))("%s: its exact counts hold", (_key, index) => {
		const outcome = result.cases[index];
		expect(outcome).toBeDefined();
		expect(outcome?.checks.length).toBeGreaterThan(0);
		for (const check of outcome?.checks ?? []) expect(check.actual, check.what).toBe(check.expected);
	});
});
