import type { RouteVia } from "../catalog/route.ts";

/**
 * Where a request's route came from: this isolate's cache, the location's
 * cache, the sandbox's object (stored there), a resume's answer, or a route
 * the control plane pushed while the request waited.
 */
export type RouteSource = "isolate" | "location" | RouteVia;

/** Where a failure remembered for everyone was found, sparing the object or the control plane. */
export type NegativeHit = "isolate" | "location";

/**
 * What one proxied request went through, by phase: filled in as the request
 * goes, then turned into its log line, its Server-Timing header and its
 * metrics. Durations are in milliseconds on the runtime's clock, which in a
 * Worker advances only across I/O: they measure waiting, not computation.
 */
export class RequestTrace {
	readonly #request: Request;
	readonly #startedAt = Date.now();
	sandboxId: string | undefined;
	port: number | undefined;
	routeSource: RouteSource | undefined;
	/** Whether this request woke the sandbox, or waited for a wake another started. */
	wake: "resumed" | "joined" | undefined;
	negativeHit: NegativeHit | undefined;
	/** Time spent finding the route: caches, the object, any resume. */
	lookupMs: number | undefined;
	/** The ResumeSandbox call's own duration, when one gave the route. */
	resumeMs: number | undefined;
	/** How long this request waited in the object for a resume or a push. */
	waitMs: number | undefined;
	/** From sending to the node to its response's head. */
	nodeMs: number | undefined;
	status = 0;
	reason: string | undefined;
	/** Set when the edge answered with a page of its own instead of the app's: the waiting page. */
	page: "waiting" | undefined;

	constructor(request: Request) {
		this.#request = request;
	}

	/**
	 * Cloudflare's own ID for the request, so that our line meets its logs; a
	 * new one locally. Read only for a line that is written: most are not.
	 */
	get requestId(): string {
		return this.#request.headers.get("cf-ray") ?? crypto.randomUUID();
	}

	/**
	 * Whether the request had nothing to tell: its route came from the
	 * isolate's cache, it neither woke nor waited, and neither the edge nor
	 * the node failed it. Its log line is sampled (see request-log.ts).
	 */
	get routine(): boolean {
		return (
			this.routeSource === "isolate" &&
			this.reason === undefined &&
			this.wake === undefined &&
			this.negativeHit === undefined &&
			this.page === undefined &&
			this.status < 500
		);
	}

	get durationMs(): number {
		return Date.now() - this.#startedAt;
	}

	/** The Server-Timing value (W3C Server Timing): one metric per phase that happened. */
	serverTiming(): string {
		const metrics = [`edge;dur=${this.durationMs}`];
		if (this.routeSource !== undefined) {
			metrics.push(`route;desc="${this.routeSource}"${this.lookupMs === undefined ? "" : `;dur=${this.lookupMs}`}`);
		}
		if (this.resumeMs !== undefined) metrics.push(`resume;dur=${this.resumeMs}`);
		if (this.waitMs !== undefined) metrics.push(`wake-wait;dur=${this.waitMs}`);
		if (this.nodeMs !== undefined) metrics.push(`node;dur=${this.nodeMs}`);
		return metrics.join(", ");
	}

	/** Sandbox-Edge-Wake's value: what this request did about a wake, and how long it waited. */
	wakeHeader(): string | undefined {
		const wake = this.wake;
		return wake === undefined ? undefined : `${wake}; wait=${this.waitMs ?? this.lookupMs ?? 0}`;
	}

	/**
	 * The request's one log line's fields; never a header, a token or a body.
	 * `sampleRate`: the line was one of a sample of routine requests, kept at
	 * this rate; each such line stands for 1/sampleRate requests.
	 */
	logFields(sampleRate?: number): Record<string, string | number | undefined> {
		return {
			requestId: this.requestId,
			sandboxId: this.sandboxId,
			port: this.port,
			status: this.status,
			reason: this.reason,
			routeSource: this.routeSource,
			negativeHit: this.negativeHit,
			wake: this.wake,
			page: this.page,
			durationMs: this.durationMs,
			lookupMs: this.lookupMs,
			resumeMs: this.resumeMs,
			waitMs: this.waitMs,
			nodeMs: this.nodeMs,
			sampleRate,
		};
	}
}
