/**
 * The Worker's configuration, read from wrangler vars and secrets once per
 * `env` object and validated before any request is routed. Each setting is
 * read by its entry in settings.ts; what spans settings is here: the
 * control plane's credentials by CONTROL_PLANE_AUTH mode, and CATALOG_SECRET,
 * which must differ from them. A bad setting names itself in the error; a
 * secret's value never appears in one.
 */
import {
	parseControlPlaneUrl,
	parseDomains,
	parseNodeOriginTemplate,
	parseNodeResolveOverride,
	parseTokenUrl,
} from "./addresses.ts";
import {
	choice,
	credential,
	flag,
	fraction,
	hasControlCharacter,
	integer,
	optionalChoice,
	optionalString,
	type RawSettings,
	requiredCredential,
	stringOrDefault,
} from "./read.ts";
import { settings } from "./settings.ts";
import { type Config, ConfigError, type ControlPlaneAuth, type Environment } from "./types.ts";

/** The defaults of settings.ts, by the names the rest of the Worker knows them. */
export const defaults = {
	controlPlaneProtocol: settings.CONTROL_PLANE_PROTOCOL.default,
	nodeOriginTemplate: settings.NODE_ORIGIN_TEMPLATE.default,
	resumeTimeoutMs: settings.RESUME_TIMEOUT_MS.default,
	routeTtlMs: settings.ROUTE_TTL_MS.default,
	routeCacheTtlMs: settings.ROUTE_CACHE_TTL_MS.default,
	routeCacheMaxEntries: settings.ROUTE_CACHE_MAX_ENTRIES.default,
	locationCacheTtlMs: settings.LOCATION_CACHE_TTL_MS.default,
	notFoundCacheMs: settings.NOT_FOUND_CACHE_MS.default,
	refusalCacheMs: settings.REFUSAL_CACHE_MS.default,
	resumeBackoffMaxMs: settings.RESUME_BACKOFF_MAX_MS.default,
	resumeMaxWaiters: settings.RESUME_MAX_WAITERS.default,
	negativeCacheMaxEntries: settings.NEGATIVE_CACHE_MAX_ENTRIES.default,
	portRetryWindowMs: settings.PORT_RETRY_WINDOW_MS.default,
	portRetryAttempts: settings.PORT_RETRY_ATTEMPTS.default,
	portRetryDelayMs: settings.PORT_RETRY_DELAY_MS.default,
	bodyIdleTimeoutMs: settings.BODY_IDLE_TIMEOUT_MS.default,
	serverTiming: settings.SERVER_TIMING.default,
	requestLogSampleRate: settings.REQUEST_LOG_SAMPLE_RATE.default,
	waitingPageAfterMs: settings.WAITING_PAGE_AFTER_MS.default,
	trafficKeepaliveIntervalMs: settings.TRAFFIC_KEEPALIVE_INTERVAL_MS.default,
	oauthScope: settings.OAUTH_SCOPE.default,
	oauthTokenTimeoutMs: settings.OAUTH_TOKEN_TIMEOUT_MS.default,
	environment: settings.ENVIRONMENT.default,
} as const;

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
	const environment: Environment = choice(raw, "ENVIRONMENT");
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
		controlPlaneProtocol: choice(raw, "CONTROL_PLANE_PROTOCOL"),
		controlPlaneAuth,
		catalogSecret,
		catalogSecretError,
		nodeOriginTemplate: parseNodeOriginTemplate(raw),
		nodeResolveOverride: parseNodeResolveOverride(raw),
		trustNotHereHeader: flag(raw, "TRUST_NOT_HERE_HEADER"),
		resumeTimeoutMs: integer(raw, "RESUME_TIMEOUT_MS"),
		routeTtlMs: integer(raw, "ROUTE_TTL_MS"),
		routeCacheTtlMs: integer(raw, "ROUTE_CACHE_TTL_MS"),
		routeCacheMaxEntries: integer(raw, "ROUTE_CACHE_MAX_ENTRIES"),
		locationCacheTtlMs: integer(raw, "LOCATION_CACHE_TTL_MS"),
		catalogLocationHint: optionalChoice(raw, "CATALOG_LOCATION_HINT"),
		notFoundCacheMs: integer(raw, "NOT_FOUND_CACHE_MS"),
		refusalCacheMs: integer(raw, "REFUSAL_CACHE_MS"),
		resumeBackoffMaxMs: integer(raw, "RESUME_BACKOFF_MAX_MS"),
		resumeMaxWaiters: integer(raw, "RESUME_MAX_WAITERS"),
		negativeCacheMaxEntries: integer(raw, "NEGATIVE_CACHE_MAX_ENTRIES"),
		portRetryWindowMs: integer(raw, "PORT_RETRY_WINDOW_MS"),
		portRetryAttempts: integer(raw, "PORT_RETRY_ATTEMPTS"),
		portRetryDelayMs: integer(raw, "PORT_RETRY_DELAY_MS"),
		bodyIdleTimeoutMs: integer(raw, "BODY_IDLE_TIMEOUT_MS"),
		trafficKeepaliveIntervalMs: integer(raw, "TRAFFIC_KEEPALIVE_INTERVAL_MS"),
		serverTiming: choice(raw, "SERVER_TIMING"),
		requestLogSampleRate: fraction(raw, "REQUEST_LOG_SAMPLE_RATE"),
		waitingPageAfterMs: integer(raw, "WAITING_PAGE_AFTER_MS"),
		environment,
	};
}

/** The credentials of the CONTROL_PLANE_AUTH mode; the other mode's settings are not read. */
function parseControlPlaneAuth(raw: RawSettings, environment: Environment): ControlPlaneAuth {
	const mode = choice(raw, "CONTROL_PLANE_AUTH");
	if (mode === "api_secret") return { mode, apiSecret: requiredCredential(raw, "API_SECRET") };
	const audience = optionalString(raw, "OAUTH_AUDIENCE");
	if (audience !== undefined && hasControlCharacter(audience)) {
		throw new ConfigError("OAUTH_AUDIENCE", "contains control characters");
	}
	return {
		mode,
		tokenUrl: parseTokenUrl(raw, environment),
		clientId: requiredCredential(raw, "OAUTH_CLIENT_ID"),
		clientSecret: requiredCredential(raw, "OAUTH_CLIENT_SECRET"),
		scope: parseScope(raw),
		audience,
		tokenTimeoutMs: integer(raw, "OAUTH_TOKEN_TIMEOUT_MS"),
	};
}

// RFC 6749 §3.3: scope tokens are printable ASCII without space, quote or backslash.
const scopePattern = /^[\x21\x23-\x5b\x5d-\x7e]+( [\x21\x23-\x5b\x5d-\x7e]+)*$/;

function parseScope(raw: RawSettings): string {
	const value = stringOrDefault(raw, "OAUTH_SCOPE").split(/\s+/).join(" ");
	if (!scopePattern.test(value)) throw new ConfigError("OAUTH_SCOPE", "must be scope tokens separated by spaces");
	return value;
}

// Whoever holds it can point any sandbox's traffic at any address.
const minCatalogSecretLength = 16;

function parseCatalogSecret(raw: RawSettings, auth: ControlPlaneAuth): string | undefined {
	const value = credential(raw, "CATALOG_SECRET");
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
