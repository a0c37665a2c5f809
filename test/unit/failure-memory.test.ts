import { describe, expect, it, vi } from "vitest";
import { FailureMemory, type FailureStore, type SandboxWideFailures } from "../../src/catalog/failure-memory.ts";

const settings = { notFoundCacheMs: 30_000, refusalCacheMs: 5_000, resumeBackoffMaxMs: 30_000 };

function memoryStore(): FailureStore & { value: SandboxWideFailures | undefined } {
	const store = {
		value: undefined as SandboxWideFailures | undefined,
		load: () => store.value,
		save: (failures: SandboxWideFailures | undefined) => {
			store.value = failures === undefined ? undefined : structuredClone(failures);
		},
	};
	return store;
}

describe("FailureMemory", () => {
	it("remembers a not-found for every caller for NOT_FOUND_CACHE_MS, and stores it across evictions", () => {
		const store = memoryStore();
		const memory = new FailureMemory(settings, store);
		memory.record("alice", { code: "sandbox_not_found" }, 1_000);
		expect(memory.recall("bob", 1_000 + 29_999)).toEqual({
			error: { code: "sandbox_not_found" },
			until: 31_000,
			sandboxWide: true,
		});
		expect(memory.recall("bob", 31_000)).toBeUndefined();
		// A new instance, as after an eviction, reads it back.
		expect(new FailureMemory(settings, store).recall("carol", 2_000)?.error.code).toBe("sandbox_not_found");
	});

	it("remembers a refusal only for the credentials refused, for REFUSAL_CACHE_MS", () => {
		const memory = new FailureMemory(settings, memoryStore());
		memory.record("stranger", { code: "resume_forbidden" }, 0);
		expect(memory.recall("stranger", 4_999)).toMatchObject({ error: { code: "resume_forbidden" }, sandboxWide: false });
		expect(memory.recall("owner", 1)).toBeUndefined();
		expect(memory.recall("stranger", 5_000)).toBeUndefined();
	});

	it("keeps at most 256 refused credentials, the oldest dropped first", () => {
		const memory = new FailureMemory(settings, memoryStore());
		for (let i = 0; i < 300; i++) memory.record(`token-${i}`, { code: "resume_forbidden" }, 0);
		expect(memory.recall("token-0", 1)).toBeUndefined();
		expect(memory.recall("token-43", 1)).toBeUndefined();
		expect(memory.recall("token-44", 1)).toBeDefined();
		expect(memory.recall("token-299", 1)).toBeDefined();
	});

	it("backs off a failing control plane by doubling, jittered between half and all of each step, up to the maximum", () => {
		const memory = new FailureMemory({ ...settings, resumeBackoffMaxMs: 8_000 }, memoryStore());
		const random = vi.spyOn(Math, "random");
		try {
			let now = 0;
			const delays: number[] = [];
			for (const jitter of [0, 1, 0, 1, 0.999, 0]) {
				random.mockReturnValue(jitter);
				memory.record("any", { code: "control_plane_unavailable" }, now);
				const until = memory.recall("any", now)?.until ?? now;
				delays.push(until - now);
				now = until;
			}
			// Steps of 1, 2, 4, 8, 8, 8 s: half of a step with no jitter, all of it with the most.
			expect(delays.map((delay) => Math.round(delay))).toEqual([500, 2000, 2000, 8000, 7996, 4000]);
		} finally {
			random.mockRestore();
		}
	});

	it("says when the next try will be, and answers a timeout's waiters with a 503 rather than a 504", () => {
		const memory = new FailureMemory(settings, memoryStore());
		const first = memory.record("any", { code: "resume_timeout" }, 0);
		// The caller who waited gets its 504, with the backoff as its Retry-After.
		expect(first.code).toBe("resume_timeout");
		expect(first.retryAfterSeconds).toBe(1);
		const later = memory.recall("other", 100);
		expect(later?.error.code).toBe("control_plane_unavailable");
		expect(later?.error.retryAfterSeconds).toBe(1);
		expect(later?.sandboxWide).toBe(true);
	});

	it("passes on the control plane's own rate-limit message while backing off from it", () => {
		const memory = new FailureMemory(settings, memoryStore());
		memory.record("any", { code: "resume_rate_limited", message: "slow down" }, 0);
		expect(memory.recall("any", 1)?.error).toMatchObject({ code: "resume_rate_limited", message: "slow down" });
	});

	it("starts a new series when a failure comes long after the last backoff ended", () => {
		const memory = new FailureMemory({ ...settings, resumeBackoffMaxMs: 4_000 }, memoryStore());
		const random = vi.spyOn(Math, "random").mockReturnValue(1);
		try {
			memory.record("any", { code: "control_plane_unavailable" }, 0);
			memory.record("any", { code: "control_plane_unavailable" }, 1_000);
			expect(memory.recall("any", 1_000)?.until).toBe(3_000);
			memory.record("any", { code: "control_plane_unavailable" }, 60_000);
			expect(memory.recall("any", 60_000)?.until).toBe(61_000);
		} finally {
			random.mockRestore();
		}
	});

	it("does not back off when RESUME_BACKOFF_MAX_MS is 0, nor remember anything when the windows are 0", () => {
		const memory = new FailureMemory({ notFoundCacheMs: 0, refusalCacheMs: 0, resumeBackoffMaxMs: 0 }, memoryStore());
		memory.record("a", { code: "control_plane_unavailable" }, 0);
		memory.record("a", { code: "sandbox_not_found" }, 0);
		memory.record("a", { code: "resume_forbidden" }, 0);
		expect(memory.recall("a", 0)).toBeUndefined();
	});

	it("does not remember a transitioning sandbox: the control plane already waited", () => {
		const memory = new FailureMemory(settings, memoryStore());
		memory.record("a", { code: "sandbox_transitioning" }, 0);
		expect(memory.recall("a", 1)).toBeUndefined();
	});

	it("forgets everything, stored too, when cleared", () => {
		const store = memoryStore();
		const memory = new FailureMemory(settings, store);
		memory.record("a", { code: "sandbox_not_found" }, 0);
		memory.record("a", { code: "resume_forbidden" }, 0);
		expect(store.value).toBeDefined();
		memory.clear();
		expect(memory.recall("a", 1)).toBeUndefined();
		expect(store.value).toBeUndefined();
		expect(memory.sandboxWideUntil).toBe(0);
	});
});
