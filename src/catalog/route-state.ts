import type { CatalogEntry } from "./route.ts";

/**
 * The states a sandbox's stored route can be in, and the events that move
 * it: the one place that decides whether a route is served, doubted or
 * dropped. docs/architecture.md draws it.
 *
 * - none: no live route. A lookup resumes the sandbox.
 * - pushed: the control plane pushed it (catalog API). Served.
 * - learned: a ResumeSandbox answer gave it. Served.
 * - doubted: a pushed route whose node said the sandbox is not there (or
 *   could not be reached). Not served until a resume has been asked where
 *   the sandbox is: the push is the control plane's word, and a node's
 *   answer can be a passing fault or an app's forgery.
 * - disputed: a route whose node failed it although the control plane had
 *   just placed the sandbox there (or kept its pushed word). Served, and its
 *   node's denials are not believed until the dispute lapses: asking again
 *   would name the same node, one RPC per request.
 */
export type RouteStateName = "none" | "pushed" | "learned" | "doubted" | "disputed";

/**
 * - push: the control plane pushed a route (it replaces whatever is stored);
 * - delete: a delete for the stored route (its execution, or any delete
 *   for a learned route);
 * - not-here: the node disowned the route, or could not be reached;
 * - not-here-vouched: the same, for a route the control plane had just
 *   placed there: the node disowned the route a fresh lookup gave after its
 *   first denial, or could not be reached within NOT_FOUND_CACHE_MS of this
 *   edge's resume;
 * - resume-ok: a resume gave a node; resume-ok-after-push: a push landed
 *   while it ran, and wins;
 * - resume-failed: a resume could not place the sandbox;
 * - resume-barred: a failure for every caller is remembered (the control
 *   plane is down, or does not know the sandbox), so no resume can be asked;
 * - expire: the route's TTL ran out.
 */
export type RouteEvent =
	| "push"
	| "delete"
	| "not-here"
	| "not-here-vouched"
	| "resume-ok"
	| "resume-ok-after-push"
	| "resume-failed"
	| "resume-barred"
	| "expire";

export const routeEvents: readonly RouteEvent[] = [
	"push",
	"delete",
	"not-here",
	"not-here-vouched",
	"resume-ok",
	"resume-ok-after-push",
	"resume-failed",
	"resume-barred",
	"expire",
];

/** Every transition. An event a state does not list leaves it as it is. */
export const transitions: Readonly<Record<RouteStateName, Partial<Record<RouteEvent, RouteStateName>>>> = {
	none: { push: "pushed", "resume-ok": "learned", "resume-ok-after-push": "pushed" },
	pushed: { push: "pushed", delete: "none", "not-here": "doubted", "not-here-vouched": "disputed", expire: "none" },
	learned: { push: "pushed", delete: "none", "not-here": "none", "not-here-vouched": "disputed", expire: "none" },
	doubted: {
		push: "pushed",
		delete: "none",
		"not-here-vouched": "disputed",
		"resume-ok": "learned",
		"resume-ok-after-push": "pushed",
		"resume-failed": "disputed",
		// Its pushed word stands: nothing can contradict it now.
		"resume-barred": "pushed",
		expire: "none",
	},
	disputed: { push: "pushed", delete: "none", expire: "none" },
};

export function nextState(state: RouteStateName, event: RouteEvent): RouteStateName {
	return transitions[state][event] ?? state;
}

/** Whether a route in this state is handed to requests. */
export function isServed(state: RouteStateName): boolean {
	return state === "pushed" || state === "learned" || state === "disputed";
}

/**
 * What a request learned of its route's node: it disowned the route; it
 * disowned the route that a lookup had just given after its first denial
 * (so a fresh resume, or a push, placed the sandbox there); or it could not
 * be reached.
 */
export type NodeVerdict = "not-here" | "not-here-after-resume" | "unreachable";

/**
 * The state of one object's route: the stored entry (read through `entry`)
 * and what the object has seen of it. The object reports events; this says
 * where they lead and what the object must do with its storage.
 */
export class RouteState {
	readonly #entry: (now: number) => CatalogEntry | null;
	#doubted: CatalogEntry | undefined;
	#disputed: { learnedAt: number; until: number } | undefined;
	/** The route this object's last successful resume gave (or a push answered), and when. */
	#vouched: { learnedAt: number; at: number } | undefined;

	constructor(entry: (now: number) => CatalogEntry | null) {
		this.#entry = entry;
	}

	/** The state at `now`. */
	at(now: number): RouteStateName {
		const entry = this.#entry(now);
		if (entry === null) return "none";
		if (this.#disputed?.learnedAt === entry.learnedAt && this.#disputed.until > now) return "disputed";
		if (this.#doubted === entry) return "doubted";
		return entry.source === "push" ? "pushed" : "learned";
	}

	/** The live route if its state serves it. */
	served(now: number): CatalogEntry | null {
		const entry = this.#entry(now);
		return entry !== null && isServed(this.at(now)) ? entry : null;
	}

	/** When this edge's resume placed `entry`, if it did: its apps may still be starting. */
	vouchedAt(entry: CatalogEntry): number | undefined {
		return this.#vouched?.learnedAt === entry.learnedAt ? this.#vouched.at : undefined;
	}

	/**
	 * The node disowned `stale` (or could not be reached). Only the very
	 * route it was given counts: a route learned or pushed since is kept.
	 * Returns what the object must do: nothing, or forget its storage; or
	 * that the node's word was about another route.
	 */
	notHere(
		stale: { nodeIp: string; learnedAt: number },
		verdict: NodeVerdict,
		now: number,
		disputeMs: number,
	): "keep" | "forget" | "not-this-route" {
		const entry = this.#entry(now);
		if (entry === null || entry.learnedAt !== stale.learnedAt || entry.nodeIp !== stale.nodeIp) {
			return "not-this-route";
		}
		// A node the control plane has just placed the sandbox on is not
		// second-guessed at once when it cannot be reached: asking again would
		// give the same node, one RPC per request while it is down.
		const vouchedAt = this.vouchedAt(entry);
		const vouched =
			verdict === "not-here-after-resume" ||
			(verdict === "unreachable" && vouchedAt !== undefined && now - vouchedAt < disputeMs);
		const state = this.at(now);
		const next = nextState(state, vouched ? "not-here-vouched" : "not-here");
		// An event a state ignores changes nothing: a dispute is not prolonged by the denials it outlasts.
		if (next === state) return "keep";
		return this.#enter(next, entry, now, disputeMs);
	}

	/** The control plane pushed `entry`; `resuming`: a resume is under way, so its apps may still be starting. */
	pushed(entry: CatalogEntry, now: number, resuming: boolean): void {
		this.#doubted = undefined;
		if (resuming) this.#vouched = { learnedAt: entry.learnedAt, at: now };
	}

	/** The stored route was deleted, or expired. */
	forgotten(): void {
		this.#doubted = undefined;
	}

	/** No resume can be asked now (a failure for every caller is remembered): a doubted push is served again. */
	resumeBarred(now: number): CatalogEntry | null {
		const entry = this.#entry(now);
		const state = this.at(now);
		if (entry === null || state !== "doubted") return null;
		this.#enter(nextState(state, "resume-barred"), entry, now, 0);
		return entry;
	}

	/** A resume gave `entry` (learned, or a push that landed during it). */
	resumed(entry: CatalogEntry, now: number): void {
		this.#doubted = undefined;
		this.#vouched = { learnedAt: entry.learnedAt, at: now };
	}

	/**
	 * A resume could not place the sandbox. A doubted push's word then
	 * stands, disputed; anything else fails as the resume did.
	 */
	resumeFailed(now: number, disputeMs: number): "disputed" | "failed" {
		const entry = this.#entry(now);
		const state = this.at(now);
		this.#doubted = undefined;
		if (entry === null || state !== "doubted") return "failed";
		this.#enter(nextState(state, "resume-failed"), entry, now, disputeMs);
		return "disputed";
	}

	#enter(next: RouteStateName, entry: CatalogEntry, now: number, disputeMs: number): "keep" | "forget" {
		switch (next) {
			case "doubted":
				this.#doubted = entry;
				return "keep";
			case "disputed":
				this.#doubted = undefined;
				this.#disputed = { learnedAt: entry.learnedAt, until: now + disputeMs };
				return "keep";
			case "none":
				this.#doubted = undefined;
				return "forget";
			default:
				// Served as pushed or learned again.
				this.#doubted = undefined;
				return "keep";
		}
	}
}
