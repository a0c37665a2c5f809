/**
 * The Worker's configuration, read from wrangler vars and secrets once per
 * `env` object and validated before any request is routed. A bad setting
 * names itself in the error; the API secret's value never appears in one.
 */
export type ControlPlaneProtocol = "grpc-web" | "connect";
export type ServerTiming = "all" | "cold" | "off";
export type Environment = "production" | "development";

/**
 * How the edge proves itself to the control plane: the shared secret of the
 * original E2B edge (`x-e2b-client-proxy-auth`), or an OAuth2
 * client-credentials token (`authorization: Bearer`), as E2B's current API
 * verifies it (scope and organisation claims).
 */
export type ControlPlaneAuth =
	| { mode: "api_secret"; apiSecret: string }
	| {
			mode: "oauth2";
			tokenUrl: string;
			clientId: string;
			clientSecret: string;
			/** Space-separated scopes asked for. */
			scope: string;
			audience: string | undefined;
			/** How long a token request may take. */
			tokenTimeoutMs: number;
	  };

export interface Config {
	/** Base domains served, lowercase, without a leading dot. */
	sandboxDomains: readonly string[];
	controlPlaneUrl: string;
	controlPlaneProtocol: ControlPlaneProtocol;
	controlPlaneAuth: ControlPlaneAuth;
	/** The catalog API's bearer token; without it the API is off. */
	catalogSecret: string | undefined;
	/**
	 * What is wrong with CATALOG_SECRET, if anything. Kept apart so that a
	 * bad one turns only the catalog API away, not every sandbox's traffic.
	 */
	catalogSecretError: ConfigError | undefined;
	nodeOriginTemplate: string;
	/**
	 * Host-preserving forwarding: the node's hostname in the Worker's zone
	 * (`{ip}`/`{ip_dashed}` filled in), given as `cf.resolveOverride` while
	 * the request keeps the client's host. Undefined: NODE_ORIGIN_TEMPLATE.
	 */
	nodeResolveOverride: string | undefined;
	/** Whether a node's X-E2b-Sandbox-Not-Found header means "not here"; E2B's nodes never send it. */
	trustNotHereHeader: boolean;
	resumeTimeoutMs: number;
	routeTtlMs: number;
	routeCacheTtlMs: number;
	routeCacheMaxEntries: number;
	/** How long a location's cache keeps a route; below 1 s, the tier is off. */
	locationCacheTtlMs: number;
	/** Where new catalog objects are placed; undefined lets each live where its first caller was. */
	catalogLocationHint: DurableObjectLocationHint | undefined;
	/** How long a sandbox's object remembers that the control plane does not know it. */
	notFoundCacheMs: number;
	/** How long a sandbox's object remembers a refusal, for the credentials refused. */
	refusalCacheMs: number;
	/** The longest a sandbox's object waits before asking a failing control plane again. */
	resumeBackoffMaxMs: number;
	/** Bound on the requests waiting on one sandbox's resume. */
	resumeMaxWaiters: number;
	/** Bound on the isolate's cache of failures. */
	negativeCacheMaxEntries: number;
	/** How long after this edge woke a sandbox its port-closed answers are retried. */
	portRetryWindowMs: number;
	portRetryAttempts: number;
	/** The first retry's delay; each later one doubles, up to a second. */
	portRetryDelayMs: number;
	/** How long a request body may go without sending a byte before it is given up. */
	bodyIdleTimeoutMs: number;
	/** The least time between two KeepAliveSandbox calls for one sandbox, across the whole edge. */
	trafficKeepaliveIntervalMs: number;
	/**
	 * Which responses carry a Server-Timing header with the request's phases:
	 * all; those whose route was not in the isolate's cache ("cold": wakes,
	 * lookups, errors); or none.
	 */
	serverTiming: ServerTiming;
	/** How long a browser navigation waits for a wake before it gets the waiting page; 0: never. */
	waitingPageAfterMs: number;
	environment: Environment;
}

export const defaults = {
	controlPlaneProtocol: "grpc-web",
	nodeOriginTemplate: "http://{ip}:5007",
	// E2B's ResumeSandbox, asked about a sandbox that is still pausing, waits
	// up to 60 s for the pause to finish and then resumes it: restoring a
	// memory snapshot takes 1-3 s, and over 10 s for large sandboxes. So one
	// resume can honestly take 60 s plus that; a shorter deadline would give up
	// on resumes that are about to succeed (and wake the sandbox for nobody).
	// 90 s still answers before common clients give up: browsers wait
	// minutes, and Cloudflare does not time a Worker out while it waits.
	resumeTimeoutMs: 90_000,
	// Routes stay valid while the sandbox runs; a stale one is detected when
	// the node says the sandbox is not there, so this only bounds how long a
	// route nobody uses is kept.
	routeTtlMs: 300_000,
	// Short, so that a route dropped in the catalog stops being used quickly
	// by other isolates, while hot traffic still skips the Durable Object.
	routeCacheTtlMs: 5_000,
	routeCacheMaxEntries: 10_000,
	// Half of ROUTE_CACHE_TTL_MS: an isolate keeps what it reads from the
	// location for the other half, so that a replaced route stops being used
	// within ROUTE_CACHE_TTL_MS of the object's answer, as everywhere else.
	locationCacheTtlMs: 2_500,
	// E2B's own edge caches NotFound for 30 s. A sandbox created since is
	// pushed by the control plane, and a push clears it at once.
	notFoundCacheMs: 30_000,
	// Short: a refusal is the caller's, and a caller who fixes its token
	// should not wait long; long enough that a client retrying in a loop
	// with a bad token makes one call per window.
	refusalCacheMs: 5_000,
	// Doubling from a second, with jitter, so that a control plane coming
	// back is not met by every object at once.
	resumeBackoffMaxMs: 30_000,
	// A browser opening an app makes tens of requests at once; a thousand
	// waiters is far past that, and bounds the object's memory.
	resumeMaxWaiters: 1_000,
	negativeCacheMaxEntries: 10_000,
	// A resumed sandbox's apps are back within a second or two; the window
	// ends the retries well before a port that is really closed would be
	// worth waiting for.
	portRetryWindowMs: 20_000,
	portRetryAttempts: 5,
	portRetryDelayMs: 100,
	// Long enough for a client on a poor link; short enough that a stalled
	// upload does not hold a connection to the node for minutes.
	bodyIdleTimeoutMs: 30_000,
	// Adding a header means rebuilding the node's response, which costs the
	// hot path about a tenth of its CPU (BENCHMARKS.md): only the responses
	// worth timing (wakes, lookups, errors) carry it unless asked.
	serverTiming: "cold",
	// A resume that has not answered within a second will take a few more
	// (1-3 s, over 10 s for large sandboxes): long enough that a blank tab
	// looks broken, short enough that a fast wake never shows the page.
	waitingPageAfterMs: 1_000,
	// E2B's own edge (sandbox-catalog's TrafficKeepaliveInterval).
	trafficKeepaliveIntervalMs: 60_000,
	// E2B's API checks this scope on the edge's token (ScopeSandboxLifecycle).
	oauthScope: "sandboxes:lifecycle",
	oauthTokenTimeoutMs: 10_000,
	environment: "production",
} as const;

export class ConfigError extends Error {
	readonly setting: string;
	constructor(setting: string, problem: string) {
		super(`Invalid configuration: ${setting} ${problem}`);
		this.name = "ConfigError";
		this.setting = setting;
	}
}

/** The settings as they arrive from wrangler: every value may be absent or mistyped. */
export type RawSettings = Partial<Record<SettingName, unknown>>;
type SettingName =
	| "SANDBOX_DOMAIN"
	| "CONTROL_PLANE_URL"
	| "CONTROL_PLANE_PROTOCOL"
	| "CONTROL_PLANE_AUTH"
	| "API_SECRET"
	| "OAUTH_TOKEN_URL"
	| "OAUTH_CLIENT_ID"
	| "OAUTH_CLIENT_SECRET"
	| "OAUTH_SCOPE"
	| "OAUTH_AUDIENCE"
	| "OAUTH_TOKEN_TIMEOUT_MS"
	| "TRAFFIC_KEEPALIVE_INTERVAL_MS"
	| "SERVER_TIMING"
	| "WAITING_PAGE_AFTER_MS"
	| "CATALOG_SECRET"
	| "NODE_ORIGIN_TEMPLATE"
	| "NODE_RESOLVE_OVERRIDE"
	| "TRUST_NOT_HERE_HEADER"
	| "RESUME_TIMEOUT_MS"
	| "ROUTE_TTL_MS"
	| "ROUTE_CACHE_TTL_MS"
	| "ROUTE_CACHE_MAX_ENTRIES"
	| "LOCATION_CACHE_TTL_MS"
	| "CATALOG_LOCATION_HINT"
	| "NOT_FOUND_CACHE_MS"
	| "REFUSAL_CACHE_MS"
	| "RESUME_BACKOFF_MAX_MS"
	| "RESUME_MAX_WAITERS"
	| "NEGATIVE_CACHE_MAX_ENTRIES"
	| "PORT_RETRY_WINDOW_MS"
	| "PORT_RETRY_ATTEMPTS"
	| "PORT_RETRY_DELAY_MS"
	| "BODY_IDLE_TIMEOUT_MS"
	| "ENVIRONMENT";

const parsed = new WeakMap<object, Config>();

/** Parses once per `env` object; wrangler hands the same object to every request of an isolate. */
export function configFrom(env: object): Config {
	let config = parsed.get(env);
	if (!config) {
		config = parseConfig(env as RawSettings);
		parsed.set(env, config);
	}
	return config;
}

export function parseConfig(raw: RawSettings): Config {
	const environment = parseEnvironment(raw);
	const controlPlaneAuth = parseControlPlaneAuth(raw, environment);
	let catalogSecret: string | undefined;
	let catalogSecretError: ConfigError | undefined;
	try {
		catalogSecret = parseCatalogSecret(raw, controlPlaneAuth);
	} catch (error) {
		if (!(error instanceof ConfigError)) throw error;
		catalogSecretError = error;
	}
	return {
		sandboxDomains: parseDomains(raw),
		controlPlaneUrl: parseControlPlaneUrl(raw, environment),
		controlPlaneProtocol: parseProtocol(raw),
		controlPlaneAuth,
		catalogSecret,
		catalogSecretError,
		nodeOriginTemplate: parseNodeOriginTemplate(raw),
		nodeResolveOverride: parseNodeResolveOverride(raw),
		trustNotHereHeader: parseFlag(raw, "TRUST_NOT_HERE_HEADER", false),
		resumeTimeoutMs: parseInteger(raw, "RESUME_TIMEOUT_MS", defaults.resumeTimeoutMs, 100, 600_000),
		routeTtlMs: parseInteger(raw, "ROUTE_TTL_MS", defaults.routeTtlMs, 1_000, 86_400_000),
		routeCacheTtlMs: parseInteger(raw, "ROUTE_CACHE_TTL_MS", defaults.routeCacheTtlMs, 0, 3_600_000),
		routeCacheMaxEntries: parseInteger(raw, "ROUTE_CACHE_MAX_ENTRIES", defaults.routeCacheMaxEntries, 0, 1_000_000),
		locationCacheTtlMs: parseInteger(raw, "LOCATION_CACHE_TTL_MS", defaults.locationCacheTtlMs, 0, 3_600_000),
		catalogLocationHint: parseLocationHint(raw),
		notFoundCacheMs: parseInteger(raw, "NOT_FOUND_CACHE_MS", defaults.notFoundCacheMs, 0, 3_600_000),
		refusalCacheMs: parseInteger(raw, "REFUSAL_CACHE_MS", defaults.refusalCacheMs, 0, 600_000),
		resumeBackoffMaxMs: parseInteger(raw, "RESUME_BACKOFF_MAX_MS", defaults.resumeBackoffMaxMs, 0, 600_000),
		resumeMaxWaiters: parseInteger(raw, "RESUME_MAX_WAITERS", defaults.resumeMaxWaiters, 1, 100_000),
		negativeCacheMaxEntries: parseInteger(
			raw,
			"NEGATIVE_CACHE_MAX_ENTRIES",
			defaults.negativeCacheMaxEntries,
			0,
			1_000_000,
		),
		portRetryWindowMs: parseInteger(raw, "PORT_RETRY_WINDOW_MS", defaults.portRetryWindowMs, 0, 600_000),
		portRetryAttempts: parseInteger(raw, "PORT_RETRY_ATTEMPTS", defaults.portRetryAttempts, 0, 20),
		portRetryDelayMs: parseInteger(raw, "PORT_RETRY_DELAY_MS", defaults.portRetryDelayMs, 1, 10_000),
		bodyIdleTimeoutMs: parseInteger(raw, "BODY_IDLE_TIMEOUT_MS", defaults.bodyIdleTimeoutMs, 1_000, 600_000),
		trafficKeepaliveIntervalMs: parseInteger(
			raw,
			"TRAFFIC_KEEPALIVE_INTERVAL_MS",
			defaults.trafficKeepaliveIntervalMs,
			1_000,
			86_400_000,
		),
		serverTiming: parseServerTiming(raw),
		waitingPageAfterMs: parseInteger(raw, "WAITING_PAGE_AFTER_MS", defaults.waitingPageAfterMs, 0, 600_000),
		environment,
	};
}

function optionalString(raw: RawSettings, name: SettingName): string | undefined {
	const value = raw[name];
	if (value === undefined || value === null) return undefined;
	if (typeof value !== "string") throw new ConfigError(name, "must be a string");
	const trimmed = value.trim();
	return trimmed === "" ? undefined : trimmed;
}

function requiredString(raw: RawSettings, name: SettingName): string {
	const value = optionalString(raw, name);
	if (value === undefined) throw new ConfigError(name, "is missing");
	return value;
}

const hostnamePattern = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

function parseDomains(raw: RawSettings): string[] {
	const domains = requiredString(raw, "SANDBOX_DOMAIN")
		.split(",")
		.map((domain) =>
			domain
				.trim()
				.toLowerCase()
				.replace(/^\.+|\.+$/g, ""),
		)
		.filter((domain) => domain !== "");
	if (domains.length === 0) throw new ConfigError("SANDBOX_DOMAIN", "lists no domain");
	for (const domain of domains) {
		if (!hostnamePattern.test(domain)) {
			throw new ConfigError("SANDBOX_DOMAIN", `has an invalid domain "${domain}"`);
		}
	}
	// Longest first, so that a host under both "example.com" and
	// "eu.example.com" is matched against the more specific domain.
	return [...new Set(domains)].sort((a, b) => b.length - a.length);
}

function parseControlPlaneUrl(raw: RawSettings, environment: Environment): string {
	const value = requiredString(raw, "CONTROL_PLANE_URL");
	let url: URL;
	try {
		url = new URL(value);
	} catch {
		throw new ConfigError("CONTROL_PLANE_URL", "is not a valid URL");
	}
	if (url.protocol !== "http:" && url.protocol !== "https:") {
		throw new ConfigError("CONTROL_PLANE_URL", "must be an http:// or https:// URL");
	}
	// Every call carries API_SECRET or a token, which must not cross the network in clear.
	if (url.protocol === "http:" && environment !== "development") {
		throw new ConfigError("CONTROL_PLANE_URL", 'must be an https:// URL outside ENVIRONMENT "development"');
	}
	if (url.username || url.password) {
		throw new ConfigError("CONTROL_PLANE_URL", "must not carry credentials; use API_SECRET");
	}
	// The raw check catches a bare "?" or "#", which URL reports as empty.
	if (url.search || url.hash || /[?#]/.test(value)) {
		throw new ConfigError("CONTROL_PLANE_URL", "must not have a query or fragment");
	}
	return url.href.replace(/\/+$/, "");
}

function parseProtocol(raw: RawSettings): ControlPlaneProtocol {
	const value = optionalString(raw, "CONTROL_PLANE_PROTOCOL") ?? defaults.controlPlaneProtocol;
	if (value !== "grpc-web" && value !== "connect") {
		throw new ConfigError("CONTROL_PLANE_PROTOCOL", `must be "grpc-web" or "connect"`);
	}
	return value;
}

function parseControlPlaneAuth(raw: RawSettings, environment: Environment): ControlPlaneAuth {
	const mode = optionalString(raw, "CONTROL_PLANE_AUTH") ?? "api_secret";
	if (mode === "api_secret") return { mode, apiSecret: requiredSecret(raw, "API_SECRET") };
	if (mode !== "oauth2") throw new ConfigError("CONTROL_PLANE_AUTH", 'must be "api_secret" or "oauth2"');
	const audience = optionalString(raw, "OAUTH_AUDIENCE");
	if (audience !== undefined && hasControlCharacter(audience)) {
		throw new ConfigError("OAUTH_AUDIENCE", "contains control characters");
	}
	return {
		mode,
		tokenUrl: parseTokenUrl(raw, environment),
		clientId: requiredSecret(raw, "OAUTH_CLIENT_ID"),
		clientSecret: requiredSecret(raw, "OAUTH_CLIENT_SECRET"),
		scope: parseScope(raw),
		audience,
		tokenTimeoutMs: parseInteger(raw, "OAUTH_TOKEN_TIMEOUT_MS", defaults.oauthTokenTimeoutMs, 100, 120_000),
	};
}

function requiredSecret(raw: RawSettings, name: SecretName): string {
	const value = secretValue(raw, name);
	if (value === undefined) {
		const how = name === "OAUTH_CLIENT_ID" ? "set it in vars" : `set it with \`wrangler secret put ${name}\``;
		throw new ConfigError(name, `is missing; ${how}`);
	}
	return value;
}

function parseTokenUrl(raw: RawSettings, environment: Environment): string {
	const value = requiredString(raw, "OAUTH_TOKEN_URL");
	let url: URL;
	try {
		url = new URL(value);
	} catch {
		throw new ConfigError("OAUTH_TOKEN_URL", "is not a valid URL");
	}
	if (url.protocol !== "https:" && !(url.protocol === "http:" && environment === "development")) {
		throw new ConfigError("OAUTH_TOKEN_URL", 'must be an https:// URL (http:// only in ENVIRONMENT "development")');
	}
	if (url.username || url.password || url.hash) {
		throw new ConfigError("OAUTH_TOKEN_URL", "must not carry credentials or a fragment");
	}
	return url.href;
}

// RFC 6749 §3.3: scope tokens are printable ASCII without space, quote or backslash.
const scopePattern = /^[\x21\x23-\x5b\x5d-\x7e]+( [\x21\x23-\x5b\x5d-\x7e]+)*$/;

function parseScope(raw: RawSettings): string {
	const value = (optionalString(raw, "OAUTH_SCOPE") ?? defaults.oauthScope).split(/\s+/).join(" ");
	if (!scopePattern.test(value)) throw new ConfigError("OAUTH_SCOPE", "must be scope tokens separated by spaces");
	return value;
}

// Whoever holds it can point any sandbox's traffic at any address.
const minCatalogSecretLength = 16;

function parseCatalogSecret(raw: RawSettings, auth: ControlPlaneAuth): string | undefined {
	const value = secretValue(raw, "CATALOG_SECRET");
	if (value === undefined) return undefined;
	// Sent as a bearer token, which has this alphabet (RFC 6750).
	if (!/^[A-Za-z0-9\-._~+/]+=*$/.test(value)) {
		throw new ConfigError("CATALOG_SECRET", "may hold only letters, digits and -._~+/ (then any = padding)");
	}
	if (value.length < minCatalogSecretLength) {
		throw new ConfigError("CATALOG_SECRET", `must be at least ${minCatalogSecretLength} characters`);
	}
	// The two are held by different parties: our edge sends API_SECRET to the
	// control plane, and the control plane sends CATALOG_SECRET to us.
	if (auth.mode === "api_secret" && value === auth.apiSecret) {
		throw new ConfigError("CATALOG_SECRET", "must differ from API_SECRET");
	}
	if (auth.mode === "oauth2" && value === auth.clientSecret) {
		throw new ConfigError("CATALOG_SECRET", "must differ from OAUTH_CLIENT_SECRET");
	}
	return value;
}

type SecretName = "API_SECRET" | "CATALOG_SECRET" | "OAUTH_CLIENT_ID" | "OAUTH_CLIENT_SECRET";

/** A secret's value, or undefined when unset; checked without echoing any part of it. */
function secretValue(raw: RawSettings, name: SecretName): string | undefined {
	const value = raw[name];
	if (value === undefined || value === null || value === "") return undefined;
	if (typeof value !== "string") throw new ConfigError(name, "must be a string");
	// Header values cannot hold control characters or surrounding spaces.
	if (value !== value.trim() || hasControlCharacter(value)) {
		throw new ConfigError(name, "contains whitespace or control characters");
	}
	return value;
}

function hasControlCharacter(text: string): boolean {
	for (let i = 0; i < text.length; i++) {
		const code = text.charCodeAt(i);
		if (code < 0x20 || code === 0x7f) return true;
	}
	return false;
}

function parseNodeOriginTemplate(raw: RawSettings): string {
	const template = optionalString(raw, "NODE_ORIGIN_TEMPLATE") ?? defaults.nodeOriginTemplate;
	if (!template.includes("{ip}") && !template.includes("{ip_dashed}")) {
		throw new ConfigError("NODE_ORIGIN_TEMPLATE", "must contain {ip} or {ip_dashed}");
	}
	let url: URL;
	try {
		url = new URL(template.replaceAll("{ip}", "192.0.2.1").replaceAll("{ip_dashed}", "192-0-2-1"));
	} catch {
		throw new ConfigError("NODE_ORIGIN_TEMPLATE", "does not give a valid URL");
	}
	if (url.protocol !== "http:" && url.protocol !== "https:") {
		throw new ConfigError("NODE_ORIGIN_TEMPLATE", "must be an http:// or https:// origin");
	}
	if (url.pathname !== "/" || /[?#@]/.test(template) || url.username || url.password) {
		throw new ConfigError("NODE_ORIGIN_TEMPLATE", "must be an origin only: scheme, host and port");
	}
	return template.replace(/\/+$/, "");
}

function parseNodeResolveOverride(raw: RawSettings): string | undefined {
	const template = optionalString(raw, "NODE_RESOLVE_OVERRIDE")?.toLowerCase();
	if (template === undefined) return undefined;
	if (!template.includes("{ip_dashed}") && !template.includes("{ip}")) {
		throw new ConfigError("NODE_RESOLVE_OVERRIDE", "must contain {ip_dashed} or {ip}");
	}
	// Cloudflare resolves it as a DNS name of the zone: no scheme, port or path, and never an IP.
	const sample = template.replaceAll("{ip_dashed}", "10-0-0-5").replaceAll("{ip}", "10.0.0.5");
	if (!hostnamePattern.test(sample) || !sample.includes(".") || /^[0-9.]+$/.test(sample)) {
		throw new ConfigError(
			"NODE_RESOLVE_OVERRIDE",
			"must be a hostname in the Worker's zone, such as n-{ip_dashed}.nodes.example.com (no scheme, port or path)",
		);
	}
	return template;
}

function parseFlag(raw: RawSettings, name: SettingName, fallback: boolean): boolean {
	const value = optionalString(raw, name);
	if (value === undefined) return fallback;
	if (value === "true") return true;
	if (value === "false") return false;
	throw new ConfigError(name, 'must be "true" or "false"');
}

function parseInteger(raw: RawSettings, name: SettingName, fallback: number, min: number, max: number): number {
	const value = optionalString(raw, name);
	if (value === undefined) return fallback;
	if (!/^\d+$/.test(value)) throw new ConfigError(name, "must be a whole number");
	const number = Number(value);
	if (number < min || number > max) throw new ConfigError(name, `must be between ${min} and ${max}`);
	return number;
}

const locationHints: readonly DurableObjectLocationHint[] = [
	"wnam",
	"enam",
	"sam",
	"weur",
	"eeur",
	"apac",
	"apac-ne",
	"apac-se",
	"oc",
	"afr",
	"me",
];

function parseLocationHint(raw: RawSettings): DurableObjectLocationHint | undefined {
	const value = optionalString(raw, "CATALOG_LOCATION_HINT");
	if (value === undefined) return undefined;
	const hint = locationHints.find((candidate) => candidate === value);
	if (hint === undefined) throw new ConfigError("CATALOG_LOCATION_HINT", `must be one of ${locationHints.join(", ")}`);
	return hint;
}

function parseServerTiming(raw: RawSettings): ServerTiming {
	const value = optionalString(raw, "SERVER_TIMING") ?? defaults.serverTiming;
	if (value === "all" || value === "cold" || value === "off") return value;
	throw new ConfigError("SERVER_TIMING", 'must be "all", "cold" or "off"');
}

function parseEnvironment(raw: RawSettings): Environment {
	const value = optionalString(raw, "ENVIRONMENT") ?? defaults.environment;
	if (value !== "production" && value !== "development") {
		throw new ConfigError("ENVIRONMENT", `must be "production" or "development"`);
	}
	return value;
}
