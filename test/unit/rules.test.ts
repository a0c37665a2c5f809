import { describe, expect, it } from "vitest";
import { backoffCeiling, backoffDelay } from "../../src/rules/backoff.ts";
import {
	isCatalogText,
	isRfc3339DateTime,
	maxRouteTtlSeconds,
	maxSandboxLengthHours,
} from "../../src/rules/catalog-limits.ts";
import { isE2bSandboxId, isSandboxId, maxSandboxIdLength, sandboxIdRule } from "../../src/rules/sandbox-hosts.ts";

// The rules the Worker, the Redis catalog bridge and the development stack share (src/rules).

describe("the sandbox ID", () => {
	it("is E2B's: lowercase ASCII letters and digits, nothing else", () => {
		for (const id of ["a", "0", "abc123", "i9r2ycjiy2534qsdy1oo"]) expect(isE2bSandboxId(id)).toBe(true);
		for (const id of ["", "ABC", "aBc", "a-b", "a_b", "a.b", "a b", " abc", "ä", "xn--bcher-kva", "abc\n"]) {
			expect(isE2bSandboxId(id), JSON.stringify(id)).toBe(false);
		}
	});

	it("is routed by the edge when it fits one DNS label, 63 characters", () => {
		expect(maxSandboxIdLength).toBe(63);
		expect(isSandboxId("a".repeat(63))).toBe(true);
		expect(isSandboxId("a".repeat(64))).toBe(false);
		// E2B itself takes any length; the development stack does as E2B does.
		expect(isE2bSandboxId("a".repeat(64))).toBe(true);
		expect(isSandboxId("")).toBe(false);
		expect(isSandboxId("a-b")).toBe(false);
		expect(sandboxIdRule).toBe("1 to 63 lowercase letters and digits");
	});
});

describe("the catalog's limits", () => {
	it("keeps a route at most 366 days, and a sandbox's length at most 100,000 hours", () => {
		expect(maxRouteTtlSeconds).toBe(31_622_400);
		expect(maxSandboxLengthHours).toBe(100_000);
	});

	it("takes 1 to 128 printable ASCII characters without spaces as an ID's text", () => {
		expect(isCatalogText("x")).toBe(true);
		expect(isCatalogText("x".repeat(128))).toBe(true);
		expect(isCatalogText("0e2b0de7-7ea1-4c0d-8e5f-5a4db0c0de01")).toBe(true);
		for (const text of ["", "x".repeat(129), "a b", "a\tb", "é", "a\x7f"]) expect(isCatalogText(text)).toBe(false);
	});

	it("takes an RFC 3339 date-time that names a real time", () => {
		for (const time of [
			"2026-05-01T10:00:00Z",
			"2026-05-01T10:00:00.123456789Z",
			"2026-05-01T10:00:00+02:00",
			"2026-05-01t10:00:00z",
		]) {
			expect(isRfc3339DateTime(time), time).toBe(true);
		}
		for (const time of [
			"2026-05-01",
			"2026-05-01 10:00:00Z",
			"2026-05-01T10:00:00",
			"2026-05-01T10:00Z",
			"2026-13-01T10:00:00Z",
			"2026-05-01T10:00:00.1234567891Z",
			"May 1, 2026",
		]) {
			expect(isRfc3339DateTime(time), time).toBe(false);
		}
	});
});

describe("the backoff", () => {
	const policy = { baseMs: 1_000, capMs: 8_000 };

	it("doubles from the base per attempt, up to the cap", () => {
		expect([1, 2, 3, 4, 5, 40, 1_000].map((attempt) => backoffCeiling(attempt, policy))).toEqual([
			1_000, 2_000, 4_000, 8_000, 8_000, 8_000, 8_000,
		]);
		// Attempt 0 (or less) is the first.
		expect(backoffCeiling(0, policy)).toBe(1_000);
	});

	it("waits between half and all of the ceiling, in whole ms, as the jitter says", () => {
		expect(backoffDelay(1, policy, () => 0)).toBe(500);
		expect(backoffDelay(1, policy, () => 0.5)).toBe(750);
		expect(backoffDelay(1, policy, () => 0.999_999)).toBe(1_000);
		expect(backoffDelay(9, policy, () => 0)).toBe(4_000);
		expect(backoffDelay(9, policy, () => 0.999_999)).toBe(8_000);
	});

	it("stays within its bounds whatever the attempt and the jitter", () => {
		for (let attempt = -1; attempt <= 64; attempt++) {
			for (const random of [0, 0.25, 0.5, 0.75, 0.999_999, Math.random()]) {
				const delay = backoffDelay(attempt, { baseMs: 250, capMs: 30_000 }, () => random);
				const ceiling = backoffCeiling(attempt, { baseMs: 250, capMs: 30_000 });
				expect(Number.isInteger(delay)).toBe(true);
				expect(delay).toBeGreaterThanOrEqual(ceiling / 2);
				expect(delay).toBeLessThanOrEqual(ceiling);
				expect(ceiling).toBeLessThanOrEqual(30_000);
			}
		}
	});
});
