import { describe, expect, it } from "vitest";
import { type Config, ConfigError, configFrom, defaults, parseConfig, type RawSettings } from "../../src/config.ts";
import { configErrorFor } from "./config-refusal.ts";

// Distinctive, so that any echo of it in an error message is caught.
const secret = "Zq7-SECRET-VALUE-4f1c";

const minimal: RawSettings = {
	SANDBOX_DOMAIN: "e2b.example.com",
	CONTROL_PLANE_URL: "https://api.example.com",
	API_SECRET: secret,
};

function with_(overrides: RawSettings): RawSettings {
	return { ...minimal, ...overrides };
}

function apiSecretOf(config: Config): string | undefined {
	return config.controlPlaneAuth.mode === "api_secret" ? config.controlPlaneAuth.apiSecret : undefined;
}

function expectRefused(raw: RawSettings, setting: string): ConfigError {
	const error = configErrorFor(raw);
	expect(error.setting).toBe(setting);
	expect(error.message).toContain(setting);
	return error;
}

describe("parseConfig defaults", () => {
	it("fills every optional setting with its documented default", () => {
		expect(parseConfig(minimal)).toEqual({
			sandboxDomains: ["e2b.example.com"],
			controlPlaneUrl: "https://api.example.com",
			controlPlaneProtocol: "grpc-web",
			controlPlaneAuth: { mode: "api_secret", apiSecret: secret },
			catalogSecret: undefined,
			catalogSecretError: undefined,
			nodeOriginTemplate: "http://{ip}:5007",
			nodeResolveOverride: undefined,
			trustNotHereHeader: false,
			resumeTimeoutMs: 90_000,
			routeTtlMs: 300_000,
			routeCacheTtlMs: 5_000,
			routeCacheMaxEntries: 10_000,
			locationCacheTtlMs: 2_500,
			catalogLocationHint: undefined,
			notFoundCacheMs: 30_000,
			refusalCacheMs: 5_000,
			resumeBackoffMaxMs: 30_000,
			resumeMaxWaiters: 1_000,
			negativeCacheMaxEntries: 10_000,
			portRetryWindowMs: 20_000,
			portRetryAttempts: 5,
			portRetryDelayMs: 100,
			bodyIdleTimeoutMs: 30_000,
			trafficKeepaliveIntervalMs: 60_000,
			serverTiming: "cold",
			requestLogSampleRate: 0.01,
			waitingPageAfterMs: 1_000,
			environment: "production",
		});
	});

	it("treats empty and blank optional settings as unset", () => {
		const config = parseConfig(
			with_({ CONTROL_PLANE_PROTOCOL: "", NODE_ORIGIN_TEMPLATE: "  ", RESUME_TIMEOUT_MS: " ", ENVIRONMENT: "" }),
		);
		expect(config.controlPlaneProtocol).toBe(defaults.controlPlaneProtocol);
		expect(config.nodeOriginTemplate).toBe(defaults.nodeOriginTemplate);
		expect(config.resumeTimeoutMs).toBe(defaults.resumeTimeoutMs);
		expect(config.environment).toBe(defaults.environment);
	});

	it("reads every setting when given", () => {
		expect(
			parseConfig({
				SANDBOX_DOMAIN: "a.example.com",
				CONTROL_PLANE_URL: "http://10.0.0.1:8080/api/",
				CONTROL_PLANE_PROTOCOL: "connect",
				API_SECRET: secret,
				CATALOG_SECRET: "catalog-Secret_0123456789",
				NODE_ORIGIN_TEMPLATE: "https://n-{ip_dashed}.nodes.example.com:8443/",
				NODE_RESOLVE_OVERRIDE: "N-{ip_dashed}.Nodes.example.com",
				TRUST_NOT_HERE_HEADER: "true",
				RESUME_TIMEOUT_MS: "1500",
				ROUTE_TTL_MS: "60000",
				ROUTE_CACHE_TTL_MS: "0",
				ROUTE_CACHE_MAX_ENTRIES: "25",
				LOCATION_CACHE_TTL_MS: "2000",
				CATALOG_LOCATION_HINT: "enam",
				NOT_FOUND_CACHE_MS: "1000",
				REFUSAL_CACHE_MS: "0",
				RESUME_BACKOFF_MAX_MS: "2000",
				RESUME_MAX_WAITERS: "7",
				NEGATIVE_CACHE_MAX_ENTRIES: "9",
				PORT_RETRY_WINDOW_MS: "3000",
				PORT_RETRY_ATTEMPTS: "2",
				PORT_RETRY_DELAY_MS: "50",
				BODY_IDLE_TIMEOUT_MS: "4000",
				REQUEST_LOG_SAMPLE_RATE: "0.25",
				ENVIRONMENT: "development",
			}),
		).toEqual({
			sandboxDomains: ["a.example.com"],
			controlPlaneUrl: "http://10.0.0.1:8080/api",
			controlPlaneProtocol: "connect",
			controlPlaneAuth: { mode: "api_secret", apiSecret: secret },
			catalogSecret: "catalog-Secret_0123456789",
			catalogSecretError: undefined,
			nodeOriginTemplate: "https://n-{ip_dashed}.nodes.example.com:8443",
			nodeResolveOverride: "n-{ip_dashed}.nodes.example.com",
			trustNotHereHeader: true,
			resumeTimeoutMs: 1500,
			routeTtlMs: 60_000,
			routeCacheTtlMs: 0,
			routeCacheMaxEntries: 25,
			locationCacheTtlMs: 2000,
			catalogLocationHint: "enam",
			notFoundCacheMs: 1000,
			refusalCacheMs: 0,
			resumeBackoffMaxMs: 2000,
			resumeMaxWaiters: 7,
			negativeCacheMaxEntries: 9,
			portRetryWindowMs: 3000,
			portRetryAttempts: 2,
			portRetryDelayMs: 50,
			bodyIdleTimeoutMs: 4000,
			trafficKeepaliveIntervalMs: 60_000,
			serverTiming: "cold",
			requestLogSampleRate: 0.25,
			waitingPageAfterMs: 1_000,
			environment: "development",
		});
	});
});

describe("REQUEST_LOG_SAMPLE_RATE", () => {
	it.each([
		["0", 0],
		["1", 1],
		["0.01", 0.01],
		[".5", 0.5],
		["1.0", 1],
	])("reads %j as %d", (value, rate) => {
		expect(parseConfig(with_({ REQUEST_LOG_SAMPLE_RATE: value })).requestLogSampleRate).toBe(rate);
	});

	it("defaults to one routine request in a hundred", () => {
		expect(parseConfig(with_({})).requestLogSampleRate).toBe(0.01);
	});

	// A percent, an exponent or a sign would be read as something else than meant.
	it.each(["1.5", "-0.1", "1e-2", "5%", "half", "0x1", "NaN"])("refuses %j", (value) => {
		expect(expectRefused(with_({ REQUEST_LOG_SAMPLE_RATE: value }), "REQUEST_LOG_SAMPLE_RATE").message).toContain(
			"decimal from 0 to 1",
		);
	});
});

describe("missing or mistyped settings name themselves", () => {
	it.each(["SANDBOX_DOMAIN", "CONTROL_PLANE_URL", "API_SECRET"] as const)("%s is required", (setting) => {
		const raw = { ...minimal };
		delete raw[setting];
		expectRefused(raw, setting);
		expectRefused(with_({ [setting]: "" }), setting);
	});

	it.each([
		"SANDBOX_DOMAIN",
		"CONTROL_PLANE_URL",
		"CONTROL_PLANE_PROTOCOL",
		"API_SECRET",
		"NODE_ORIGIN_TEMPLATE",
		"RESUME_TIMEOUT_MS",
		"ROUTE_TTL_MS",
		"ROUTE_CACHE_TTL_MS",
		"ROUTE_CACHE_MAX_ENTRIES",
		"LOCATION_CACHE_TTL_MS",
		"CATALOG_LOCATION_HINT",
		"NOT_FOUND_CACHE_MS",
		"REFUSAL_CACHE_MS",
		"RESUME_BACKOFF_MAX_MS",
		"RESUME_MAX_WAITERS",
		"NEGATIVE_CACHE_MAX_ENTRIES",
		"PORT_RETRY_WINDOW_MS",
		"PORT_RETRY_ATTEMPTS",
		"PORT_RETRY_DELAY_MS",
		"BODY_IDLE_TIMEOUT_MS",
		"ENVIRONMENT",
	] as const)("%s must be a string", (setting) => {
		expectRefused(with_({ [setting]: 42 }), setting);
		expectRefused(with_({ [setting]: { value: "x" } }), setting);
	});

	it.each([
		["CONTROL_PLANE_PROTOCOL", "grpc"],
		["CONTROL_PLANE_PROTOCOL", "GRPC-WEB"],
		["CATALOG_LOCATION_HINT", "us-east"],
		["CATALOG_LOCATION_HINT", "ENAM"],
		["ENVIRONMENT", "staging"],
		["ENVIRONMENT", "Production"],
	] as const)("%s refuses %j", (setting, value) => {
		expectRefused(with_({ [setting]: value }), setting);
	});
});

describe("API_SECRET", () => {
	it.each([
		["missing", undefined],
		["null", null],
		["empty", ""],
	])("is refused when %s", (_label, value) => {
		expectRefused(with_({ API_SECRET: value }), "API_SECRET");
	});

	it.each([
		["a number", 987654321, "987654321"],
		["an object", { token: secret }, secret],
		["an array", [secret], secret],
	])("is refused when %s, without echoing the value", (_label, value, text) => {
		const error = expectRefused(with_({ API_SECRET: value }), "API_SECRET");
		expect(error.message).not.toContain(text);
	});

	it.each([
		["a leading space", ` ${secret}`],
		["a trailing newline", `${secret}\n`],
		["a trailing space", `${secret} `],
		["a tab inside", `${secret.slice(0, 5)}\t${secret.slice(5)}`],
		["a NUL inside", `${secret}\0x`],
		["DEL inside", `${secret}\x7f`],
		["only whitespace", "   "],
	])("is refused with %s, without echoing the value", (_label, value) => {
		const error = expectRefused(with_({ API_SECRET: value }), "API_SECRET");
		expect(error.message).not.toContain(secret);
		expect(error.message).not.toContain(secret.slice(0, 8));
		expect(String(error.stack)).not.toContain(secret);
		expect(JSON.stringify(error)).not.toContain(secret);
	});

	it("is kept verbatim when valid, inner spaces included", () => {
		expect(apiSecretOf(parseConfig(with_({ API_SECRET: "a b=c/+" })))).toBe("a b=c/+");
	});

	it("never appears in the message of another setting's error", () => {
		const error = expectRefused(with_({ CONTROL_PLANE_URL: `https://u:${secret}@x.example.com` }), "CONTROL_PLANE_URL");
		expect(error.message).not.toContain(secret);
	});
});

describe("CATALOG_SECRET", () => {
	const catalogSecret = "Cat4log-SECRET-value-9d2e";

	/** The problem with CATALOG_SECRET, which turns only the catalog API away. */
	function catalogProblem(raw: RawSettings): ConfigError {
		const config = parseConfig(raw);
		expect(config.catalogSecret).toBeUndefined();
		const problem = config.catalogSecretError;
		expect(problem).toBeInstanceOf(ConfigError);
		expect(problem?.setting).toBe("CATALOG_SECRET");
		expect(problem?.message).toContain("CATALOG_SECRET");
		return problem as ConfigError;
	}

	it.each([
		["missing", undefined],
		["null", null],
		["empty", ""],
	])("leaves the catalog API off when %s", (_label, value) => {
		const config = parseConfig(with_({ CATALOG_SECRET: value }));
		expect(config.catalogSecret).toBeUndefined();
		expect(config.catalogSecretError).toBeUndefined();
	});

	it("is kept verbatim when valid", () => {
		expect(parseConfig(with_({ CATALOG_SECRET: catalogSecret })).catalogSecret).toBe(catalogSecret);
		expect(parseConfig(with_({ CATALOG_SECRET: "a".repeat(16) })).catalogSecret).toBe("a".repeat(16));
		expect(parseConfig(with_({ CATALOG_SECRET: "base64+/token/AAAA==" })).catalogSecret).toBe("base64+/token/AAAA==");
	});

	it.each([
		["shorter than 16 characters", "a".repeat(15)],
		["with an inner space", "catalog secret value 1"],
		["with surrounding spaces", ` ${catalogSecret} `],
		["with a control character", `${catalogSecret}\n`],
		["outside the bearer token alphabet", `${catalogSecret}"`],
		["with = before the end", "abc=defghijklmnopqrs"],
		["a number", 987654321012345],
	])("is refused %s, without echoing the value, and without refusing the rest", (_label, value) => {
		const problem = catalogProblem(with_({ CATALOG_SECRET: value }));
		expect(problem.message).not.toContain(String(value).trim());
		// The sandbox traffic's settings still parse.
		expect(apiSecretOf(parseConfig(with_({ CATALOG_SECRET: value })))).toBe(secret);
	});

	it("must differ from API_SECRET, and says so without echoing either", () => {
		const shared = "the-same-secret-for-both";
		const problem = catalogProblem(with_({ API_SECRET: shared, CATALOG_SECRET: shared }));
		expect(problem.message).toContain("must differ from API_SECRET");
		expect(problem.message).not.toContain(shared);
	});
});

describe("SANDBOX_DOMAIN", () => {
	it.each([
		["localhost", ["localhost"]],
		["e2b.example.com,eu.e2b.example.com", ["eu.e2b.example.com", "e2b.example.com"]],
		["  E2B.Example.COM ,  eu.e2b.example.com  ", ["eu.e2b.example.com", "e2b.example.com"]],
		[".e2b.example.com.", ["e2b.example.com"]],
		["a.example.com,,b.example.com,", ["a.example.com", "b.example.com"]],
		["x.example.com,X.EXAMPLE.COM", ["x.example.com"]],
	])("parses %j", (value, domains) => {
		expect(parseConfig(with_({ SANDBOX_DOMAIN: value })).sandboxDomains).toEqual(domains);
	});

	it("lists longer domains first so that the most specific one matches", () => {
		const domains = parseConfig(with_({ SANDBOX_DOMAIN: "example.com,a.b.example.com,b.example.com" })).sandboxDomains;
		expect(domains).toEqual(["a.b.example.com", "b.example.com", "example.com"]);
	});

	it.each([
		" , ,",
		",",
		"exa mple.com",
		"*.example.com",
		"example.com:8787",
		"https://example.com",
		"example.com/path",
		"-bad.example.com",
		"bad-.example.com",
		"under_score.example.com",
		"good.example.com,bad..example.com",
		`${"a".repeat(64)}.example.com`,
		"exämple.com",
	])("refuses %j", (value) => {
		expectRefused(with_({ SANDBOX_DOMAIN: value }), "SANDBOX_DOMAIN");
	});
});

describe("CONTROL_PLANE_URL", () => {
	it.each([
		["https://api.example.com", "https://api.example.com"],
		["https://api.example.com/", "https://api.example.com"],
		["  https://api.example.com/base//  ", "https://api.example.com/base"],
	])("accepts %j", (value, expected) => {
		expect(parseConfig(with_({ CONTROL_PLANE_URL: value })).controlPlaneUrl).toBe(expected);
	});

	// Every call carries API_SECRET: in clear, only on a development machine.
	it("takes http:// only in development", () => {
		const local = { CONTROL_PLANE_URL: "http://127.0.0.1:8790/base//" };
		expect(parseConfig(with_({ ...local, ENVIRONMENT: "development" })).controlPlaneUrl).toBe(
			"http://127.0.0.1:8790/base",
		);
		const error = expectRefused(with_(local), "CONTROL_PLANE_URL");
		expect(error.message).toContain("https://");
		expectRefused(with_({ ...local, ENVIRONMENT: "production" }), "CONTROL_PLANE_URL");
	});

	it.each([
		"not a url",
		"api.example.com",
		"ftp://api.example.com",
		"ws://api.example.com",
		"file:///etc/passwd",
		"javascript:alert(1)",
		"https://user:pass@api.example.com",
		"https://user@api.example.com",
		"https://api.example.com/?token=x",
		"https://api.example.com/#frag",
	])("refuses %j", (value) => {
		expectRefused(with_({ CONTROL_PLANE_URL: value }), "CONTROL_PLANE_URL");
	});

	// An empty query or fragment still ends the path: the RPC path appended to
	// "https://api.example.com/?" would land in the query string.
	it.each(["https://api.example.com?", "https://api.example.com/#"])("refuses the bare delimiter in %j", (value) => {
		expectRefused(with_({ CONTROL_PLANE_URL: value }), "CONTROL_PLANE_URL");
	});
});

describe("NODE_ORIGIN_TEMPLATE", () => {
	it.each([
		["http://{ip}:5007", "http://{ip}:5007"],
		["http://{ip}:5007/", "http://{ip}:5007"],
		["https://n-{ip_dashed}.nodes.example.com", "https://n-{ip_dashed}.nodes.example.com"],
		["http://n-{ip_dashed}.nodes.example.com:5007", "http://n-{ip_dashed}.nodes.example.com:5007"],
	])("accepts %j", (value, expected) => {
		expect(parseConfig(with_({ NODE_ORIGIN_TEMPLATE: value })).nodeOriginTemplate).toBe(expected);
	});

	it.each([
		// no placeholder
		"http://node.example.com:5007",
		"http://{IP}:5007",
		"http://{ipdashed}.example.com",
		// not a URL, or not http(s)
		"{ip}:5007",
		"ftp://{ip}:21",
		"http://{ip}:99999",
		// not an origin only
		"http://{ip}:5007/prefix",
		"http://node.example.com/{ip}",
		"http://{ip}:5007/?x=1",
		"http://{ip}:5007/#x",
		"http://user:pw@{ip}:5007",
		"http://{ip}@evil.example.com",
	])("refuses %j", (value) => {
		expectRefused(with_({ NODE_ORIGIN_TEMPLATE: value }), "NODE_ORIGIN_TEMPLATE");
	});

	// "http://{ip}:5007?" + "/path" sends the path as the query string.
	it.each(["http://{ip}:5007?", "http://{ip}:5007/#"])("refuses the bare delimiter in %j", (value) => {
		expectRefused(with_({ NODE_ORIGIN_TEMPLATE: value }), "NODE_ORIGIN_TEMPLATE");
	});
});

describe("NODE_RESOLVE_OVERRIDE", () => {
	it("is off unless set: requests go to NODE_ORIGIN_TEMPLATE", () => {
		expect(parseConfig(minimal).nodeResolveOverride).toBeUndefined();
		expect(parseConfig(with_({ NODE_RESOLVE_OVERRIDE: " " })).nodeResolveOverride).toBeUndefined();
	});

	it.each([
		["n-{ip_dashed}.nodes.example.com", "n-{ip_dashed}.nodes.example.com"],
		["{ip_dashed}.nodes.example.com", "{ip_dashed}.nodes.example.com"],
		["{ip}.nodes.example.com", "{ip}.nodes.example.com"],
		["N-{IP_DASHED}.example.com".replace("{IP_DASHED}", "{ip_dashed}"), "n-{ip_dashed}.example.com"],
	])("accepts the hostname template %j", (value, expected) => {
		expect(parseConfig(with_({ NODE_RESOLVE_OVERRIDE: value })).nodeResolveOverride).toBe(expected);
	});

	it.each([
		// no placeholder
		"node.example.com",
		// an IP, which Cloudflare never resolves as a name of the zone
		"{ip}",
		// a URL, a port or a path: it is a DNS name only
		"https://n-{ip_dashed}.example.com",
		"n-{ip_dashed}.example.com:5007",
		"n-{ip_dashed}.example.com/x",
		// one label
		"n-{ip_dashed}",
		"n_{ip_dashed}.example.com",
	])("refuses %j, naming the setting", (value) => {
		expectRefused(with_({ NODE_RESOLVE_OVERRIDE: value }), "NODE_RESOLVE_OVERRIDE");
	});
});

describe("integer settings", () => {
	const ranges = [
		["RESUME_TIMEOUT_MS", 100, 600_000],
		["ROUTE_TTL_MS", 1_000, 86_400_000],
		["ROUTE_CACHE_TTL_MS", 0, 3_600_000],
		["ROUTE_CACHE_MAX_ENTRIES", 0, 1_000_000],
	] as const;
	const field = {
		RESUME_TIMEOUT_MS: "resumeTimeoutMs",
		ROUTE_TTL_MS: "routeTtlMs",
		ROUTE_CACHE_TTL_MS: "routeCacheTtlMs",
		ROUTE_CACHE_MAX_ENTRIES: "routeCacheMaxEntries",
	} as const;

	it.each(ranges)("%s accepts its bounds (%i to %i)", (setting, min, max) => {
		expect(parseConfig(with_({ [setting]: String(min) }))[field[setting]]).toBe(min);
		expect(parseConfig(with_({ [setting]: String(max) }))[field[setting]]).toBe(max);
		expect(parseConfig(with_({ [setting]: ` ${max} ` }))[field[setting]]).toBe(max);
	});

	it.each(ranges)("%s refuses values outside %i to %i", (setting, min, max) => {
		expectRefused(with_({ [setting]: String(max + 1) }), setting);
		if (min > 0) expectRefused(with_({ [setting]: String(min - 1) }), setting);
	});

	it.each(
		ranges.flatMap(([setting]) =>
			["12abc", "-5", "1.5", "1e3", "0x10", "+10", "Infinity", "NaN", "1 000", "１２"].map((value) => [setting, value]),
		),
	)("%s refuses %j", (setting, value) => {
		expectRefused(with_({ [setting]: value }), setting);
	});
});

describe("configFrom", () => {
	it("parses once per env object and reuses the result", () => {
		const env = { ...minimal };
		const first = configFrom(env);
		expect(apiSecretOf(first)).toBe(secret);
		// A later change to the same object is not seen: the result is cached.
		env.API_SECRET = "other";
		expect(configFrom(env)).toBe(first);
		// A new object is parsed anew.
		expect(apiSecretOf(configFrom({ ...env }))).toBe("other");
	});

	it("throws the ConfigError for a bad env, every time", () => {
		const env = with_({ RESUME_TIMEOUT_MS: "soon" });
		expect(() => configFrom(env)).toThrow(ConfigError);
		expect(() => configFrom(env)).toThrow(/RESUME_TIMEOUT_MS/);
	});
});

describe("CONTROL_PLANE_AUTH", () => {
	const oauth2: RawSettings = {
		CONTROL_PLANE_AUTH: "oauth2",
		OAUTH_TOKEN_URL: "https://auth.example.com/oauth2/token",
		OAUTH_CLIENT_ID: "edge-client",
		OAUTH_CLIENT_SECRET: "Client-SECRET-9b2e",
	};

	it("is the shared secret by default", () => {
		expect(parseConfig(minimal).controlPlaneAuth).toEqual({ mode: "api_secret", apiSecret: secret });
	});

	it("oauth2 needs no API_SECRET, and asks for E2B's scope unless told otherwise", () => {
		const { API_SECRET: _, ...withoutSecret } = minimal;
		expect(parseConfig({ ...withoutSecret, ...oauth2 }).controlPlaneAuth).toEqual({
			mode: "oauth2",
			tokenUrl: "https://auth.example.com/oauth2/token",
			clientId: "edge-client",
			clientSecret: "Client-SECRET-9b2e",
			scope: "sandboxes:lifecycle",
			audience: undefined,
			tokenTimeoutMs: 10_000,
		});
		const custom = parseConfig(
			with_({
				...oauth2,
				OAUTH_SCOPE: " a:b   c ",
				OAUTH_AUDIENCE: "https://api.example.com",
				OAUTH_TOKEN_TIMEOUT_MS: "2500",
			}),
		).controlPlaneAuth;
		expect(custom).toMatchObject({ scope: "a:b c", audience: "https://api.example.com", tokenTimeoutMs: 2500 });
	});

	it.each(["OAUTH_TOKEN_URL", "OAUTH_CLIENT_ID", "OAUTH_CLIENT_SECRET"] as const)("oauth2 requires %s", (setting) => {
		const raw = with_(oauth2);
		delete raw[setting];
		expectRefused(raw, setting);
	});

	it.each([
		["CONTROL_PLANE_AUTH", "jwt"],
		["OAUTH_TOKEN_URL", "http://auth.example.com/token"],
		["OAUTH_TOKEN_URL", "https://user:pw@auth.example.com/token"],
		["OAUTH_TOKEN_URL", "not a url"],
		["OAUTH_SCOPE", 'a "b"'],
		["OAUTH_TOKEN_TIMEOUT_MS", "50"],
		["TRAFFIC_KEEPALIVE_INTERVAL_MS", "999"],
		["SERVER_TIMING", "yes"],
	] as const)("refuses %s=%j", (setting, value) => {
		expectRefused(with_({ ...oauth2, [setting]: value }), setting);
	});

	it("allows an http token URL only in development", () => {
		const raw = with_({ ...oauth2, OAUTH_TOKEN_URL: "http://127.0.0.1:8791/oauth2/token", ENVIRONMENT: "development" });
		expect(parseConfig(raw).controlPlaneAuth).toMatchObject({ tokenUrl: "http://127.0.0.1:8791/oauth2/token" });
	});

	it("never echoes the client secret, and keeps the catalog's secret apart from it", () => {
		const error = configErrorFor(with_({ ...oauth2, OAUTH_CLIENT_SECRET: " Client-SECRET-9b2e" }));
		expect(error.message).not.toContain("Client-SECRET-9b2e");
		const shared = "Shared-secret-value-1234567";
		const config = parseConfig(with_({ ...oauth2, OAUTH_CLIENT_SECRET: shared, CATALOG_SECRET: shared }));
		expect(config.catalogSecretError?.message).toContain("must differ from OAUTH_CLIENT_SECRET");
		expect(config.catalogSecretError?.message).not.toContain(shared);
	});
});
