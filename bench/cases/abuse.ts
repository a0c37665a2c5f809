// Abuse: requests for sandbox IDs the control plane does not know, through
// the proxy with wrangler.toml's resume budgets. For each variant: the
// ResumeSandbox calls the control plane received, and the calls the catalog
// objects received (counted in the objects themselves; see workers.ts),
// per request. Random IDs are each asked for once, so no cache in front of
// the object can hold them: each costs an object call. Repeated IDs show
// what the isolate's negative cache keeps off the object.
import { randomBytes } from "node:crypto";
import type { CaseResult, Check, Context } from "../harness/context.ts";
import { sandboxHost } from "../harness/context.ts";
import { runLoad } from "../harness/load.ts";
import { infoRow, type Row } from "../harness/report.ts";

interface Variant {
	name: string;
	/** Every ID the variant has handed out (some built by the load generator may never be sent). */
	ids: Set<string>;
	/** The ID and client address of the next request the load generator builds. */
	next(): { id: string; client: string };
	kind: "random, one client" | "random, many clients" | "repeated, a client per ID" | "repeated, one client";
}

function randomId(context: Context): string {
	// Unique by the counter, random by the rest: no two requests share one.
	return context.freshId(`zz${randomBytes(6).toString("hex")}`);
}

function shuffle<T>(items: readonly T[]): T[] {
	const out = [...items];
	for (let i = out.length - 1; i > 0; i--) {
		const j = Math.floor(Math.random() * (i + 1));
		const swap = out[i] as T;
		out[i] = out[j] as T;
		out[j] = swap;
	}
	return out;
}

export async function abuse(context: Context): Promise<CaseResult> {
	const started = performance.now();
	const { randomRequests, botnetRequests, repeatedRequests, repeatedIds, connections } = context.profile.abuse;
	const oneClient = context.freshClientIp();
	const secondClient = context.freshClientIp();
	const randomIds = (count: number) => Array.from({ length: count }, () => randomId(context));

	// The load generator builds each request just before it sends it, and
	// asks for the next one here: a random ID is made then, so that no two
	// requests share one.
	const fresh = (name: string, kind: Variant["kind"], client: () => string): Variant => {
		const ids = new Set<string>();
		return {
			name,
			kind,
			ids,
			next: () => {
				const id = randomId(context);
				ids.add(id);
				return { id, client: client() };
			},
		};
	};
	const repeated = (name: string, kind: Variant["kind"], clientOf: (id: string) => string): Variant => {
		const ids = randomIds(repeatedIds);
		// Every ID once in each turn of ids.length requests, in a new random order each turn.
		let turn: string[] = [];
		return {
			name,
			kind,
			ids: new Set(ids),
			next: () => {
				if (turn.length === 0) turn = shuffle(ids);
				const id = turn.pop() ?? "";
				return { id, client: clientOf(id) };
			},
		};
	};
	const perId = new Map<string, string>();
	const variants: Variant[] = [
		fresh("random IDs, one client", "random, one client", () => oneClient),
		fresh("random IDs, a new client address per request", "random, many clients", () => context.freshClientIp()),
		repeated(`${repeatedIds} IDs repeated, a client address per ID`, "repeated, a client per ID", (id) => {
			let client = perId.get(id);
			if (client === undefined) {
				client = context.freshClientIp();
				perId.set(id, client);
			}
			return client;
		}),
		// Another client than the first variant's, whose budget that variant has spent.
		repeated(`${repeatedIds} IDs repeated, one client`, "repeated, one client", () => secondClient),
	];

	const rows: Row[] = [];
	const checks: Check[] = [];
	const data: Record<string, unknown> = {};
	for (const variant of variants) {
		const requests = {
			"random, one client": randomRequests,
			"random, many clients": botnetRequests,
			"repeated, a client per ID": repeatedRequests,
			"repeated, one client": repeatedRequests,
		}[variant.kind];
		// The control plane keeps its last 10,000 calls: each variant starts afresh.
		context.stack.controlPlane.resetCalls();
		const lookupsBefore = (await context.proxy.objectCalls()).lookup;
		const logsBefore = context.proxy.logs.length;
		const result = await runLoad({
			url: context.proxy.url,
			host: sandboxHost("placeholder"),
			path: "/",
			connections,
			load: { requests },
			headers: { accept: "application/json" },
			pid: context.proxy.pid,
			vary: () => {
				const { id, client } = variant.next();
				return { host: sandboxHost(id), headers: { "cf-connecting-ip": client } };
			},
		});
		const lookups = (await context.proxy.objectCalls()).lookup - lookupsBefore;
		// Requests the Worker turned away before any object (LOOKUP_LIMIT_PER_CLIENT), from its log lines.
		const lookupLimited = context.proxy.logs
			.slice(logsBefore)
			.filter((line) => line.includes('"reason":"lookup_rate_limited"')).length;
		const rpcs = context.stack.controlPlane.calls().filter((call) => variant.ids.has(call.sandboxId)).length;
		const name = `abuse: ${requests} requests, ${variant.name}`;
		const answered = Object.values(result.statuses).reduce((a, b) => a + b, 0);
		rows.push(
			infoRow(name, "ResumeSandbox calls per request", (rpcs / requests).toFixed(3), `${rpcs} of ${requests}`),
			infoRow(name, "catalog object calls per request", (lookups / requests).toFixed(3), `${lookups} of ${requests}`),
			infoRow(
				name,
				"kept off the object by the caches in front of it",
				`${((1 - lookups / requests) * 100).toFixed(1)} %`,
			),
			infoRow(name, "turned away before any object (lookup budget)", String(lookupLimited)),
			infoRow(name, "statuses", JSON.stringify(result.statuses)),
			infoRow(name, "requests per second", (requests / result.seconds).toFixed(0)),
		);
		checks.push({ what: `${name}: answered`, expected: requests, actual: answered });
		if (variant.kind === "random, one client") {
			// Each ID is asked for once: a call (502, not found), a resume budget's
			// refusal (429), or the lookup budget's refusal (429) before any object.
			checks.push(
				{ what: `${name}: 502s equal ResumeSandbox calls`, expected: rpcs, actual: result.statuses["502"] ?? 0 },
				{
					what: `${name}: catalog object calls (one per ID within the lookup budget)`,
					expected: requests,
					actual: lookups + lookupLimited,
				},
			);
		}
		if (variant.kind === "random, many clients") {
			checks.push(
				{ what: `${name}: ResumeSandbox calls`, expected: requests, actual: rpcs },
				{ what: `${name}: catalog object calls`, expected: requests, actual: lookups },
				{ what: `${name}: 502s`, expected: requests, actual: result.statuses["502"] ?? 0 },
			);
		}
		if (variant.kind === "repeated, a client per ID") {
			checks.push(
				{ what: `${name}: ResumeSandbox calls (one per ID)`, expected: repeatedIds, actual: rpcs },
				{ what: `${name}: 502s`, expected: requests, actual: result.statuses["502"] ?? 0 },
			);
		}
		data[variant.name] = {
			requests,
			connections,
			rpcs,
			objectCalls: lookups,
			lookupLimited,
			statuses: result.statuses,
			seconds: result.seconds,
			errors: result.errors,
		};
	}
	const notes = [
		"abuse: ResumeSandbox calls are counted at the development control plane. Catalog object calls are counted by the objects themselves: the bench runs the proxy's bundle unchanged, its SandboxRoute class extended by a wrapper module (bench/harness/workers.ts) whose lookup, invalidate, write and describe count into one module-level counter (Miniflare runs the Worker and its objects in one isolate); the figures are lookup calls.",
		"abuse: random IDs are each asked for once, so no cache in front of the object (the isolate's, or a location's) can hold them: every request costs an object call, and only the per-client budget (30 resumes per 10 s) stands between them and the control plane. Repeated IDs are remembered as not found in the object and, for ROUTE_CACHE_TTL_MS, in the isolate. A budget's refusal (429) is not remembered outside the object, so a client over its budget costs an object call per request even for IDs it repeats.",
	];
	return { name: "abuse", rows, checks, notes, data, seconds: (performance.now() - started) / 1000 };
}
