import { describe, expect, it } from "vitest";
import { Deadline } from "../../src/deadline.ts";

describe("Deadline", () => {
	it("settles `expired` when the time is up, aborting its signal first", async () => {
		const deadline = new Deadline(20);
		const signal = deadline.signal;
		const order: string[] = [];
		signal.addEventListener("abort", () => order.push("aborted"));
		const expired = deadline.expired.then(() => order.push("expired"));
		expect(deadline.passed).toBe(false);
		await expired;
		expect(deadline.passed).toBe(true);
		expect(signal.aborted).toBe(true);
		expect(order).toEqual(["aborted", "expired"]);
		expect((signal.reason as Error).name).toBe("AbortError");
	});

	it("gives an aborted signal when asked for one after the time is up", async () => {
		const deadline = new Deadline(1);
		await deadline.expired;
		expect(deadline.signal.aborted).toBe(true);
	});

	it("loses a race to work that ends first, and then never expires once cleared", async () => {
		const deadline = new Deadline(30);
		const result = await Promise.race([Promise.resolve("work"), deadline.expired]);
		expect(result).toBe("work");
		deadline.clear();
		const later = await Promise.race([
			deadline.expired.then(() => "expired"),
			new Promise((resolve) => setTimeout(() => resolve("still waiting"), 80)),
		]);
		expect(later).toBe("still waiting");
		expect(deadline.passed).toBe(false);
		expect(deadline.signal.aborted).toBe(false);
	});

	it("wins a race with work that outlasts it", async () => {
		const deadline = new Deadline(10);
		const result = await Promise.race([new Promise(() => {}), deadline.expired]);
		expect(result).toBeUndefined();
	});
});
