import { describe, expect, it } from "vitest";
import type { CatalogEntry } from "../../src/catalog/route.ts";
import {
	isServed,
	nextState,
	type RouteEvent,
	RouteState,
	type RouteStateName,
	routeEvents,
	transitions,
} from "../../src/catalog/route-state.ts";

// Every transition of a sandbox's route, as a table: each state × each event.
// A cell that says the state itself is an event the state ignores.
const expected: Record<RouteStateName, Record<RouteEvent, RouteStateName>> = {
	none: {
		push: "pushed",
		delete: "none",
		"not-here": "none",
		"not-here-vouched": "none",
		"resume-ok": "learned",
		"resume-ok-after-push": "pushed",
		"resume-failed": "none",
		"resume-barred": "none",
		expire: "none",
	},
	pushed: {
		push: "pushed",
		delete: "none",
		"not-here": "doubted",
		"not-here-vouched": "disputed",
		"resume-ok": "pushed",
		"resume-ok-after-push": "pushed",
		"resume-failed": "pushed",
		"resume-barred": "pushed",
		expire: "none",
	},
	learned: {
		push: "pushed",
		delete: "none",
		"not-here": "none",
		"not-here-vouched": "disputed",
		"resume-ok": "learned",
		"resume-ok-after-push": "learned",
		"resume-failed": "learned",
		"resume-barred": "learned",
		expire: "none",
	},
	doubted: {
		push: "pushed",
		delete: "none",
		"not-here": "doubted",
		"not-here-vouched": "disputed",
		"resume-ok": "learned",
		"resume-ok-after-push": "pushed",
		"resume-failed": "disputed",
		"resume-barred": "pushed",
		expire: "none",
	},
	disputed: {
		push: "pushed",
		delete: "none",
		"not-here": "disputed",
		"not-here-vouched": "disputed",
		"resume-ok": "disputed",
		"resume-ok-after-push": "disputed",
		"resume-failed": "disputed",
		"resume-barred": "disputed",
		expire: "none",
	},
};

const states = Object.keys(expected) as RouteStateName[];
const cells = states.flatMap((state) => routeEvents.map((event) => [state, event, expected[state][event]] as const));

describe("the route's transitions", () => {
	it.each(cells)("%s --%s--> %s", (state, event, to) => {
		expect(nextState(state, event)).toBe(to);
	});

	it("lists every state and event, and the module's table has no transition the test table lacks", () => {
		expect(Object.keys(transitions).sort()).toEqual([...states].sort());
		for (const state of states) {
			for (const [event, to] of Object.entries(transitions[state])) {
				expect(expected[state][event as RouteEvent], `${state} --${event}-->`).toBe(to);
			}
		}
	});

	it.each([
		["none", false],
		["pushed", true],
		["learned", true],
		["doubted", false],
		["disputed", true],
	] as const)("serves a route that is %s: %s", (state, served) => {
		expect(isServed(state)).toBe(served);
	});
});

describe("RouteState, driven by events as the object reports them", () => {
	const disputeMs = 30_000;
	function withEntry(source: "push" | "resume") {
		let entry: CatalogEntry | null = {
			nodeIp: "10.0.0.5",
			learnedAt: 1_000,
			expiresAt: 1_000_000,
			source,
			details: {},
		};
		const state = new RouteState((now) => (entry !== null && entry.expiresAt > now ? entry : null));
		return { state, entry: () => entry as CatalogEntry, clear: () => (entry = null) };
	}

	it("doubts a pushed route its node disowns, and a failed resume then disputes it (its word stands)", () => {
		const { state, entry } = withEntry("push");
		expect(state.at(2_000)).toBe("pushed");
		expect(state.notHere(entry(), "not-here", 2_000, disputeMs)).toBe("keep");
		expect(state.at(2_000)).toBe("doubted");
		expect(state.served(2_000)).toBeNull();
		expect(state.resumeFailed(3_000, disputeMs)).toBe("disputed");
		expect(state.at(3_000)).toBe("disputed");
		expect(state.served(3_000)).toBe(entry());
		// Its node's denials are not believed while the dispute holds...
		expect(state.notHere(entry(), "not-here", 4_000, disputeMs)).toBe("keep");
		expect(state.at(4_000)).toBe("disputed");
		// ...and once it lapses, the route is pushed again, and doubted anew.
		expect(state.at(3_000 + disputeMs)).toBe("pushed");
	});

	it("forgets a learned route its node disowns", () => {
		const { state, entry } = withEntry("resume");
		expect(state.notHere(entry(), "not-here", 2_000, disputeMs)).toBe("forget");
	});

	it("disputes a route its node disowns right after a lookup placed the sandbox there", () => {
		const { state, entry } = withEntry("resume");
		expect(state.notHere(entry(), "not-here-after-resume", 2_000, disputeMs)).toBe("keep");
		expect(state.at(2_000)).toBe("disputed");
	});

	it("disputes an unreachable node only within NOT_FOUND_CACHE_MS of this edge's resume", () => {
		const fresh = withEntry("resume");
		fresh.state.resumed(fresh.entry(), 1_000);
		expect(fresh.state.notHere(fresh.entry(), "unreachable", 1_000 + disputeMs - 1, disputeMs)).toBe("keep");
		expect(fresh.state.at(1_000 + disputeMs - 1)).toBe("disputed");

		const old = withEntry("resume");
		old.state.resumed(old.entry(), 1_000);
		expect(old.state.notHere(old.entry(), "unreachable", 1_000 + disputeMs, disputeMs)).toBe("forget");
	});

	it("ignores a node's word about another route than the stored one", () => {
		const { state, entry } = withEntry("push");
		expect(state.notHere({ ...entry(), learnedAt: 999 }, "not-here", 2_000, disputeMs)).toBe("not-this-route");
		expect(state.notHere({ ...entry(), nodeIp: "10.0.0.6" }, "not-here", 2_000, disputeMs)).toBe("not-this-route");
		expect(state.at(2_000)).toBe("pushed");
	});

	it("serves a doubted push again when no resume can be asked (resume-barred)", () => {
		const { state, entry } = withEntry("push");
		state.notHere(entry(), "not-here", 2_000, disputeMs);
		expect(state.resumeBarred(2_000)).toBe(entry());
		expect(state.at(2_000)).toBe("pushed");
	});

	it("is none once the route expires", () => {
		const { state } = withEntry("push");
		expect(state.at(1_000_000)).toBe("none");
	});

	it("says when this edge's resume placed a route, for the port retries", () => {
		const { state, entry } = withEntry("resume");
		expect(state.vouchedAt(entry())).toBeUndefined();
		state.resumed(entry(), 1_500);
		expect(state.vouchedAt(entry())).toBe(1_500);
	});
});
