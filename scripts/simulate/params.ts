/**
 * The model's parameters. Each is a flag of `npm run simulate`
 * (`--locations 50` or `--locations=50`) and an environment variable
 * (`SIM_LOCATIONS=50`); a flag wins. The defaults are the values that
 * docs/capacity.md quotes, and its parameter table is rendered from this
 * list, so a default changed here and not there fails the test.
 */
export interface Params {
	seed: number;
	ttlMs: number;
	locationTtlMs: number;
	locations: number;
	isolates: number;
	rate: number;
	rttMinMs: number;
	rttMaxMs: number;
	cacheMs: number;
	objectCapacity: number;
	evictPct: number;
	warmupS: number;
	measureS: number;
	sandboxes: number;
	stormWindowMs: number;
	burst: number;
	burstMs: number;
	limitedIps: number;
	cpConcurrency: number;
	resumeMinMs: number;
	resumeMaxMs: number;
	pushLeadMs: number;
	cpRttMs: number;
	resumeTimeoutMs: number;
	maxWaiters: number;
	clientLimit: number;
	callerLimit: number;
	limitPeriodS: number;
}

interface Definition {
	key: keyof Params;
	flag: string;
	value: number;
	/** "code": what the Worker does today (config.ts, wrangler.toml); "assumed": ours to state. */
	from: "code" | "assumed" | "model";
	meaning: string;
}

export const definitions: readonly Definition[] = [
	{
		key: "ttlMs",
		flag: "ttl-ms",
		value: 5000,
		from: "code",
		meaning:
			"ROUTE_CACHE_TTL_MS: life of an isolate's copy of the object's answer, and the longest any copy serves a route after it",
	},
	{
		key: "locationTtlMs",
		flag: "location-ttl-ms",
		value: 2500,
		from: "code",
		meaning:
			"LOCATION_CACHE_TTL_MS: life of a route's copy in a location's cache (the tier); an isolate keeps what it reads there for ROUTE_CACHE_TTL_MS minus this",
	},
	{
		key: "maxWaiters",
		flag: "max-waiters",
		value: 1000,
		from: "code",
		meaning: "RESUME_MAX_WAITERS: requests that may wait on one sandbox's resume",
	},
	{
		key: "resumeTimeoutMs",
		flag: "resume-timeout-ms",
		value: 90000,
		from: "code",
		meaning: "RESUME_TIMEOUT_MS: the object's deadline for one ResumeSandbox call",
	},
	{
		key: "clientLimit",
		flag: "client-limit",
		value: 30,
		from: "code",
		meaning: "RESUME_LIMIT_PER_CLIENT: resumes per client address per period",
	},
	{
		key: "callerLimit",
		flag: "caller-limit",
		value: 5,
		from: "code",
		meaning: "RESUME_LIMIT_PER_CALLER: resumes per sandbox and credentials per period",
	},
	{
		key: "limitPeriodS",
		flag: "limit-period-s",
		value: 10,
		from: "code",
		meaning: "the budgets' period, and the Retry-After of a refused resume (s)",
	},
	{
		key: "objectCapacity",
		flag: "object-capacity",
		value: 1000,
		from: "assumed",
		meaning: "calls one Durable Object serves per second (Cloudflare's guidance); each takes 1/this s, one at a time",
	},
	{
		key: "locations",
		flag: "locations",
		value: 50,
		from: "assumed",
		meaning: "Cloudflare locations that serve traffic (N)",
	},
	{
		key: "isolates",
		flag: "isolates",
		value: 20,
		from: "assumed",
		meaning: "isolates of the Worker per location that serve a sandbox (K)",
	},
	{
		key: "rate",
		flag: "rate",
		value: 1000,
		from: "assumed",
		meaning: "requests per second of one hot sandbox, spread evenly over the locations and their isolates",
	},
	{
		key: "rttMinMs",
		flag: "rtt-min-ms",
		value: 10,
		from: "assumed",
		meaning: "round trip from the nearest location to the sandbox's object",
	},
	{
		key: "rttMaxMs",
		flag: "rtt-max-ms",
		value: 250,
		from: "assumed",
		meaning: "round trip from the farthest (Sydney to Virginia); the others are spread evenly between",
	},
	{
		key: "cacheMs",
		flag: "cache-ms",
		value: 3,
		from: "assumed",
		meaning: "a Cache API match, or a put becoming visible, in the location tier",
	},
	{
		key: "evictPct",
		flag: "evict-pct",
		value: 25,
		from: "assumed",
		meaning:
			"share of location-cache entries evicted early, at a random point of their life (the tier table's early-eviction row)",
	},
	{
		key: "cpRttMs",
		flag: "cp-rtt-ms",
		value: 10,
		from: "assumed",
		meaning: "round trip from an object to the control plane (objects live near it: its catalog writes created them)",
	},
	{
		key: "cpConcurrency",
		flag: "cp-concurrency",
		value: 1000,
		from: "assumed",
		meaning: "resumes the control plane runs at once; the rest queue, first come first served",
	},
	{
		key: "resumeMinMs",
		flag: "resume-min-ms",
		value: 1000,
		from: "assumed",
		meaning: "shortest resume at the control plane (E2B: 1 to 3 s to restore a snapshot)",
	},
	{
		key: "resumeMaxMs",
		flag: "resume-max-ms",
		value: 3000,
		from: "assumed",
		meaning: "longest; each resume is drawn evenly between, and a hot sandbox's wake takes the mean",
	},
	{
		key: "pushLeadMs",
		flag: "push-lead-ms",
		value: 0,
		from: "assumed",
		meaning:
			"how long before its ResumeSandbox answer the control plane pushes the route through the catalog API, which answers the waiters at once (at most the resume's time; 0: the answer comes first, the slowest wake)",
	},
	{
		key: "sandboxes",
		flag: "sandboxes",
		value: 10000,
		from: "assumed",
		meaning: "sandboxes woken by the storm, each from one location drawn at random",
	},
	{
		key: "stormWindowMs",
		flag: "storm-window-ms",
		value: 1000,
		from: "assumed",
		meaning: "the storm's sandboxes get their first request within this window",
	},
	{
		key: "burst",
		flag: "burst",
		value: 10,
		from: "assumed",
		meaning: "requests per woken sandbox (a browser opening an app), each to a random isolate",
	},
	{ key: "burstMs", flag: "burst-ms", value: 200, from: "assumed", meaning: "the span of one sandbox's burst" },
	{
		key: "limitedIps",
		flag: "limited-ips",
		value: 100,
		from: "assumed",
		meaning: "client addresses that send the whole storm in its budget-bound variant; otherwise one per sandbox",
	},
	{
		key: "warmupS",
		flag: "warmup-s",
		value: 10,
		from: "model",
		meaning: "simulated seconds before a steady-state measurement starts",
	},
	{ key: "measureS", flag: "measure-s", value: 30, from: "model", meaning: "simulated seconds measured" },
	{
		key: "seed",
		flag: "seed",
		value: 1,
		from: "model",
		meaning: "seed of the pseudo-random draws (arrivals, isolates, resume times)",
	},
];

export const defaultParams: Params = Object.fromEntries(definitions.map((d) => [d.key, d.value])) as unknown as Params;

/** Parameters from flags and `SIM_*` variables, over the defaults. Throws, naming the parameter, on a bad value. */
export function paramsFrom(argv: readonly string[], env: Record<string, string | undefined> = {}): Params {
	const params: Params = { ...defaultParams };
	for (const definition of definitions) {
		const raw = env[envName(definition.flag)];
		if (raw !== undefined) params[definition.key] = parseValue(envName(definition.flag), raw);
	}
	for (let i = 0; i < argv.length; i++) {
		const arg = argv[i] as string;
		if (!arg.startsWith("--")) throw new Error(`unexpected argument: ${arg}`);
		const [name, inline] = arg.slice(2).split("=", 2) as [string, string | undefined];
		const definition = definitions.find((d) => d.flag === name);
		if (definition === undefined) throw new Error(`unknown flag: --${name}`);
		const raw = inline ?? argv[++i];
		if (raw === undefined) throw new Error(`--${name} needs a value`);
		params[definition.key] = parseValue(`--${name}`, raw);
	}
	checkParams(params);
	return params;
}

export function envName(flag: string): string {
	return `SIM_${flag.replaceAll("-", "_").toUpperCase()}`;
}

/** A number as the doc or a flag writes it: thousands separators allowed. */
export function parseValue(name: string, raw: string): number {
	const value = Number(raw.replaceAll(",", "").trim());
	if (raw.trim() === "" || !Number.isFinite(value) || value < 0) {
		throw new Error(`${name}: not a non-negative number: ${raw}`);
	}
	return value;
}

function checkParams(params: Params): void {
	const positive: (keyof Params)[] = [
		"ttlMs",
		"locations",
		"isolates",
		"rate",
		"objectCapacity",
		"measureS",
		"sandboxes",
		"burst",
		"cpConcurrency",
		"resumeMaxMs",
		"resumeTimeoutMs",
		"limitedIps",
		"limitPeriodS",
	];
	for (const key of positive) {
		if (!(params[key] > 0)) throw new Error(`--${flagOf(key)} must be above 0`);
	}
	if (params.locationTtlMs < 1000)
		throw new Error("--location-ttl-ms must be at least 1000 (under it, the tier is off)");
	for (const key of ["locations", "isolates", "sandboxes", "burst", "cpConcurrency", "limitedIps"] as const) {
		if (!Number.isInteger(params[key])) throw new Error(`--${flagOf(key)} must be a whole number`);
	}
	if (params.rttMaxMs < params.rttMinMs) throw new Error("--rtt-max-ms must not be below --rtt-min-ms");
	if (params.resumeMaxMs < params.resumeMinMs) throw new Error("--resume-max-ms must not be below --resume-min-ms");
	if (params.evictPct > 100) throw new Error("--evict-pct must be at most 100");
}

function flagOf(key: keyof Params): string {
	return definitions.find((d) => d.key === key)?.flag ?? key;
}

/**
 * Round trips from each of `locations` locations to an object's home, spread
 * evenly from the nearest to the farthest: the midpoints of equal steps.
 */
export function roundTrips(params: Params, locations = params.locations): number[] {
	const { rttMinMs, rttMaxMs } = params;
	return Array.from({ length: locations }, (_, i) => rttMinMs + ((rttMaxMs - rttMinMs) * (i + 0.5)) / locations);
}
