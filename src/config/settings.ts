/**
 * Every setting of the Worker, declared once: where it is given, its type
 * (bounds, values), its default, and what the docs say of it. parse.ts reads
 * the settings by this table, and scripts/config-docs.ts writes
 * docs/configuration.md from it (`npm run docs:config`; `npm test` fails
 * while that file is stale). The order here is the docs' order.
 */
import { type Setting, see } from "./schema.ts";

export const settings = {
	SANDBOX_DOMAIN: {
		kind: "var",
		type: "hostnames",
		required: "always",
		doc: "comma-separated base domains served; `localhost` locally",
	},
	CONTROL_PLANE_URL: {
		kind: "var",
		type: "url",
		required: "always",
		doc: "base URL of `/proxy.SandboxService/ResumeSandbox`; `https://` unless `ENVIRONMENT` is `development`, since every call carries `API_SECRET` or a token",
	},
	CONTROL_PLANE_PROTOCOL: {
		kind: "var",
		type: "enum",
		values: ["grpc-web", "connect"],
		default: "grpc-web",
		doc: "how RPCs to the control plane are framed (binary protobuf either way)",
	},
	CONTROL_PLANE_AUTH: {
		kind: "var",
		type: "enum",
		values: ["api_secret", "oauth2"],
		default: "api_secret",
		doc: `how the edge authenticates to the control plane; ${see("Authenticating to the control plane", "operations.md#authenticating-to-the-control-plane")}`,
	},
	API_SECRET: {
		kind: "secret",
		type: "credential",
		required: "api_secret",
		doc: "sent as `x-e2b-client-proxy-auth`",
	},
	OAUTH_TOKEN_URL: {
		kind: "var",
		type: "url",
		required: "oauth2",
		doc: "the OAuth2 token endpoint; `https://` unless `ENVIRONMENT` is `development`",
	},
	OAUTH_CLIENT_ID: { kind: "var", type: "credential", required: "oauth2", doc: "the edge's client ID" },
	OAUTH_CLIENT_SECRET: {
		kind: "secret",
		type: "credential",
		required: "oauth2",
		doc: "the edge's client secret, sent to the token endpoint only (HTTP Basic)",
	},
	OAUTH_SCOPE: {
		kind: "var",
		type: "string",
		// E2B's API checks this scope on the edge's token (ScopeSandboxLifecycle).
		default: "sandboxes:lifecycle",
		doc: "scopes asked for, space-separated; E2B's API requires `sandboxes:lifecycle`",
	},
	OAUTH_AUDIENCE: {
		kind: "var",
		type: "string",
		doc: "sent as `audience` when set, for token endpoints that want one",
	},
	OAUTH_TOKEN_TIMEOUT_MS: {
		kind: "var",
		type: "integer",
		min: 100,
		max: 120_000,
		default: 10_000,
		doc: "deadline for one token request",
	},
	TRAFFIC_KEEPALIVE_INTERVAL_MS: {
		kind: "var",
		type: "integer",
		min: 1_000,
		max: 86_400_000,
		// E2B's own edge (sandbox-catalog's TrafficKeepaliveInterval).
		default: 60_000,
		doc: `the least time between two \`KeepAliveSandbox\` calls for one sandbox, across the whole edge (E2B's edge: one minute); ${see("Traffic keepalive", "operations.md#traffic-keepalive")}`,
	},
	SERVER_TIMING: {
		kind: "var",
		type: "enum",
		values: ["all", "cold", "off"],
		// Adding a header means rebuilding the node's response, which costs the
		// hot path about a tenth of its CPU (BENCHMARKS.md): only the responses
		// worth timing (wakes, lookups, errors) carry it unless asked.
		default: "cold",
		doc: `which responses carry \`Server-Timing\`: \`cold\` (wakes, lookups past the isolate's cache, errors), \`all\`, or \`off\`; ${see("Telemetry", "operations.md#telemetry")}`,
	},
	REQUEST_LOG_SAMPLE_RATE: {
		kind: "var",
		type: "fraction",
		// One line per request is one Workers Logs event per request: at the
		// edge's rates a bill, for lines that say only "served from the cache"
		// (BENCHMARKS.md, "Issue 18"). Every other request's line is kept.
		default: 0.01,
		doc: `share of routine requests (served from the isolate's cache, no wake, no error) that get a \`request\` log line, which then says \`sampleRate\`; every other request always gets one; ${see("Telemetry", "operations.md#telemetry")}`,
	},
	WAITING_PAGE_AFTER_MS: {
		kind: "var",
		type: "integer",
		min: 0,
		max: 600_000,
		// A resume that has not answered within a second will take a few more
		// (1-3 s, over 10 s for large sandboxes): long enough that a blank tab
		// looks broken, short enough that a fast wake never shows the page.
		default: 1_000,
		doc: `how long a browser navigation waits for a wake before it gets the waiting page; \`0\` turns the page off; ${see("The waiting page", "operations.md#the-waiting-page")}`,
	},
	CATALOG_SECRET: {
		kind: "secret",
		type: "credential",
		unset: "(unset: API off)",
		doc: "the catalog API's bearer token; at least 16 characters of `A-Za-z0-9-._~+/` (then `=` padding), and never equal to `API_SECRET` or `OAUTH_CLIENT_SECRET`: our edge sends one, the control plane the other. A bad one turns away only the catalog API (and `/healthz`) with `503 proxy_misconfigured`; sandbox traffic goes on",
	},
	NODE_RESOLVE_OVERRIDE: {
		kind: "var",
		type: "hostname template",
		doc: `Host-preserving forwarding: the node's hostname in the Worker's zone, such as \`n-{ip_dashed}.nodes.example.com\`; each request then goes to the client's own URL with this name as \`cf.resolveOverride\`, so the app sees the client's \`Host\`. Production ships it; ${see("Deploy, step 3, option D", "deploy.md#d-host-preserving-forwarding-recommended")}. A \`NODES\` binding is then unused. Locally it needs the tests' model of Cloudflare's edge: with \`ENVIRONMENT=development\`, a request that comes back to the Worker is refused with \`508 forwarding_loop\``,
	},
	TRUST_NOT_HERE_HEADER: {
		kind: "var",
		type: "flag",
		default: false,
		doc: "`true` makes a node's `502` with `X-E2b-Sandbox-Not-Found` mean \"sandbox not here\". E2B's nodes never send it and pass an app's headers through, so leave it off against them",
	},
	NODE_ORIGIN_TEMPLATE: {
		kind: "var",
		type: "origin template",
		default: "http://{ip}:5007",
		doc: "node origin when `NODE_RESOLVE_OVERRIDE` is unset ([options A to C](deploy.md#3-reaching-the-nodes), and locally); `{ip}` or `{ip_dashed}` (dots and colons as dashes)",
	},
	RESUME_TIMEOUT_MS: {
		kind: "var",
		type: "integer",
		min: 100,
		max: 600_000,
		// See the text: one resume can honestly take 60 s plus a restore, and
		// Cloudflare does not time a Worker out while it waits.
		default: 90_000,
		doc: "deadline for one resume. E2B's `ResumeSandbox`, asked about a sandbox that is still pausing, waits up to 60 s for the pause to end and then resumes it, which takes 1–3 s, and over 10 s for a large sandbox. A deadline under 60 s plus that would give up on resumes about to succeed (and wake the sandbox for nobody); 90 s covers them, and browsers and common clients wait longer",
	},
	ROUTE_TTL_MS: {
		kind: "var",
		type: "integer",
		min: 1_000,
		max: 86_400_000,
		// Routes stay valid while the sandbox runs; this only bounds how long a
		// route nobody uses is kept.
		default: 300_000,
		doc: "how long the catalog keeps a route; stale routes are also detected from the node's answer",
	},
	ROUTE_CACHE_TTL_MS: {
		kind: "var",
		type: "integer",
		min: 0,
		max: 3_600_000,
		// Short, so that a route dropped in the catalog stops being used quickly
		// by other isolates, while hot traffic still skips the Durable Object.
		default: 5_000,
		doc: "how long an isolate caches a route; `0` disables the cache",
	},
	ROUTE_CACHE_MAX_ENTRIES: {
		kind: "var",
		type: "integer",
		min: 0,
		max: 1_000_000,
		default: 10_000,
		doc: "bound on the isolate cache",
	},
	LOCATION_CACHE_TTL_MS: {
		kind: "var",
		type: "integer",
		min: 0,
		max: 3_600_000,
		// Half of ROUTE_CACHE_TTL_MS: an isolate keeps what it reads from the
		// location for the other half, so that a replaced route stops being used
		// within ROUTE_CACHE_TTL_MS of the object's answer, as everywhere else.
		default: 2_500,
		doc: "how long a location's cache keeps a route (or a failure for everyone); an isolate keeps what it reads there for `ROUTE_CACHE_TTL_MS` minus this. Under `1000` the tier is off",
	},
	CATALOG_LOCATION_HINT: {
		kind: "var",
		type: "enum",
		// Cloudflare's location hints: parseConfig would not compile with one DurableObjectLocationHint lacks.
		values: ["wnam", "enam", "sam", "weur", "eeur", "apac", "apac-ne", "apac-se", "oc", "afr", "me"],
		doc: `where new catalog objects are created; unset, each lives where its first caller was; ${see("Placement and capacity", "deploy.md#placement-and-capacity")}`,
	},
	NOT_FOUND_CACHE_MS: {
		kind: "var",
		type: "integer",
		min: 0,
		max: 3_600_000,
		// E2B's own edge caches NotFound for 30 s. A sandbox created since is
		// pushed by the control plane, and a push clears it at once.
		default: 30_000,
		doc: "how long a sandbox's object remembers a not-found; `0` turns it off",
	},
	REFUSAL_CACHE_MS: {
		kind: "var",
		type: "integer",
		min: 0,
		max: 600_000,
		// Short: a refusal is the caller's, and a caller who fixes its token
		// should not wait long; long enough that a client retrying in a loop
		// with a bad token makes one call per window.
		default: 5_000,
		doc: "how long it remembers a refusal, for the credentials refused; `0` turns it off",
	},
	RESUME_BACKOFF_MAX_MS: {
		kind: "var",
		type: "integer",
		min: 0,
		max: 600_000,
		// Doubling from a second, with jitter, so that a control plane coming
		// back is not met by every object at once.
		default: 30_000,
		doc: "the longest backoff from a failing control plane; `0` turns backoff off",
	},
	RESUME_MAX_WAITERS: {
		kind: "var",
		type: "integer",
		min: 1,
		max: 100_000,
		// A browser opening an app makes tens of requests at once; a thousand
		// waiters is far past that, and bounds the object's memory.
		default: 1_000,
		doc: "requests that may wait on one sandbox's resume",
	},
	NEGATIVE_CACHE_MAX_ENTRIES: {
		kind: "var",
		type: "integer",
		min: 0,
		max: 1_000_000,
		default: 10_000,
		doc: "bound on the isolate's cache of failures; `0` turns it off",
	},
	PORT_RETRY_WINDOW_MS: {
		kind: "var",
		type: "integer",
		min: 0,
		max: 600_000,
		// A resumed sandbox's apps are back within a second or two; the window
		// ends the retries well before a port that is really closed would be
		// worth waiting for.
		default: 20_000,
		doc: `how long after this edge woke a sandbox its port-closed answers are retried; \`0\` turns retries off; ${see("A freshly resumed port", "operations.md#a-freshly-resumed-port")}`,
	},
	PORT_RETRY_ATTEMPTS: {
		kind: "var",
		type: "integer",
		min: 0,
		max: 20,
		default: 5,
		doc: "retries of one request in that window",
	},
	PORT_RETRY_DELAY_MS: {
		kind: "var",
		type: "integer",
		min: 1,
		max: 10_000,
		default: 100,
		doc: "the first retry's delay; each later one doubles, up to 1 s",
	},
	BODY_IDLE_TIMEOUT_MS: {
		kind: "var",
		type: "integer",
		min: 1_000,
		max: 600_000,
		// Long enough for a client on a poor link; short enough that a stalled
		// upload does not hold a connection to the node for minutes.
		default: 30_000,
		doc: "how long a request body may send nothing (a small one: arrive whole)",
	},
	ENVIRONMENT: {
		kind: "var",
		type: "enum",
		values: ["production", "development"],
		default: "production",
		doc: "`development` allows header routing on `localhost` and IP literals, and `http://` in `CONTROL_PLANE_URL` and `OAUTH_TOKEN_URL`",
	},
} as const satisfies Record<string, Setting>;

/** A setting the parser reads. */
export type SettingName = keyof typeof settings;
