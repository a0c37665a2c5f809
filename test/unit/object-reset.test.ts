import { runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { afterEach, expect, it, vi } from "vitest";

afterEach(() => {
	vi.restoreAllMocks();
});

const timedOut = Symbol("timed out");

it("answers the requests waiting on a resume with a clean 503 when the object is reset mid-resume, and none hangs", {
	timeout: 30_000,
}, async () => {
	// A control plane that never answers: the resume is in flight when the object is reset.
	let rpcs = 0;
	vi.spyOn(globalThis, "fetch").mockImplementation(() => {
		rpcs += 1;
		return new Promise<Response>(() => {});
	});
	const id = `reset${Date.now().toString(36)}`;
	const requests = Array.from({ length: 5 }, () =>
		exports.default.fetch(
			new Request("http://localhost/", {
				headers: { "e2b-sandbox-id": id, "e2b-sandbox-port": "3000", accept: "application/json" },
			}),
		),
	);
	await vi.waitFor(() => expect(rpcs).toBe(1), { timeout: 10_000 });

	// As a deploy, or an overloaded object, resets it.
	const stub = env.SANDBOX_ROUTE.getByName(id);
	await expect(runInDurableObject(stub, (_instance, state) => state.abort("reset for the test"))).rejects.toThrow();

	// They come at once; a hung one would never come. The margin is for a loaded machine.
	const answers = await Promise.race([
		Promise.all(requests),
		new Promise<typeof timedOut>((resolve) => setTimeout(() => resolve(timedOut), 15_000)),
	]);
	if (answers === timedOut) throw new Error("a request waiting on the reset object hung");
	for (const answer of answers) {
		expect(answer.status).toBe(503);
		expect(answer.headers.get("retry-after")).toBe("1");
		expect(await answer.json()).toMatchObject({ sandboxId: id, reason: "catalog_unavailable" });
	}
	expect(rpcs).toBe(1);
});
