// Shapes shared by the dev control plane, the dev node, the admin API and its
// client. Type-only, so the admin client can import it without pulling in
// node:http.

export type SandboxState = "running" | "paused" | "pausing" | "killed";

export const SANDBOX_STATES: readonly SandboxState[] = ["running", "paused", "pausing", "killed"];

/** Sandbox ports the demo app knows how to serve. */
export const DEMO_PORTS: readonly number[] = [3000, 8080, 49983];

/** envd's port, which a sandbox serves as soon as it starts; the others are the app's. */
export const ENVD_PORT = 49983;

export const MAX_PORT_OPEN_DELAY_MS = 600_000;

/** The stack's team unless a sandbox is created with its own: E2B's team IDs are UUIDs. */
export const DEV_TEAM_ID = "0e2b0de7-7ea1-4c0d-8e5f-5a4db0c0de01";

/** The two RPCs of proxy.SandboxService that the edge calls. */
export type RpcName = "ResumeSandbox" | "KeepAliveSandbox";

export const RPC_NAMES: readonly RpcName[] = ["ResumeSandbox", "KeepAliveSandbox"];

/** What a sandbox does when its end time passes: E2B's lifecycle.onTimeout (its autoPause flag). */
export type OnTimeout = "pause" | "kill";

/** A sandbox as the admin API and the CLI see it. */
export interface SandboxView {
	id: string;
	state: SandboxState;
	autoResume: boolean;
	public: boolean;
	/** Present only when `public` is false. */
	trafficAccessToken?: string;
	/** Present only for a "secure" sandbox. */
	envdAccessToken?: string;
	/** Whether it has an envd access token; says so even where the token is left out. */
	secure: boolean;
	/** Sandbox ports the demo app serves while running. */
	ports: number[];
	/** True while a resume is in flight (state stays "paused" until it lands). */
	resuming: boolean;
	/** Whether it has been paused before: E2B resumes only a sandbox with a snapshot. */
	hasSnapshot: boolean;
	/** The current run's execution ID, which its catalog entry carries; only while running. */
	executionId?: string;
	/** Sandbox port -> local 127.0.0.1 port, only while running, and only for ports that listen. */
	localPorts?: Record<string, number>;
	/** Present when the app's ports open this long after each start or resume. */
	portOpenDelayMs?: number;
	/** The team's UUID, which its catalog entry carries and KeepAliveSandbox names. */
	teamId: string;
	/** E2B's traffic keepalive policy: whether KeepAliveSandbox may push back its auto-pause. */
	trafficKeepalive: boolean;
	/** Its timeout: it pauses by itself this long after each start or resume unless kept alive. */
	timeoutMs?: number;
	/** Epoch ms when it pauses (or, with onTimeout "kill", is killed) by itself; only while running with a timeout. */
	endTime?: number;
	/** What its end time does: "pause" (the default) or "kill". */
	onTimeout: OnTimeout;
	/** Epoch ms when its current run started, or its last one once stopped; absent if it never ran. */
	startedAt?: number;
	/** Epoch ms when its last pause began; only while pausing or paused. */
	pausedAt?: number;
	/** The template it was created from, as E2B's API names it (REST API creates). */
	templateId?: string;
	/** E2B's sandbox metadata: string keys and values given at create. */
	metadata?: Record<string, string>;
	/** E2B's allow_internet_access as given at create; recorded, not enforced. */
	allowInternetAccess?: boolean;
	/** E2B's network.maskRequestHost as given at create; see CreateSandboxInput. */
	maskRequestHost?: string;
	createdAt: number;
}

export interface CreateSandboxInput {
	id?: string;
	autoResume?: boolean;
	public?: boolean;
	secure?: boolean;
	/** A sandbox created "pausing" stays there until paused or killed, which lets tests hold the 409 row. */
	state?: SandboxState;
	/** Subset of DEMO_PORTS to serve; the rest behave as closed ports. */
	ports?: number[];
	/**
	 * The app's ports (all but envd's) start listening this long after each
	 * start or resume, as a real app may after E2B resumes its sandbox; the node
	 * answers "port is not open" for them meanwhile. The start or resume itself
	 * is not delayed. Default 0, at most MAX_PORT_OPEN_DELAY_MS.
	 */
	portOpenDelayMs?: number;
	/** A UUID, in any form Go's uuid.Parse takes; default the stack's team (DEV_TEAM_ID). */
	teamId?: string;
	/** Default false. */
	trafficKeepalive?: boolean;
	/**
	 * Absent: it never pauses by itself. Otherwise it pauses (as an E2B sandbox
	 * with auto-pause does) this long after each start or resume, or after the
	 * last KeepAliveSandbox pushed that back. At most its longest life (1 h).
	 */
	timeoutMs?: number;
	/** What its end time does; default "pause", as the stack's sandboxes always did. */
	onTimeout?: OnTimeout;
	templateId?: string;
	metadata?: Record<string, string>;
	allowInternetAccess?: boolean;
	/**
	 * E2B's network.maskRequestHost: the node sends the app (every port but
	 * envd's) this as Host, `${PORT}` replaced by the sandbox port, and the
	 * Host it received as X-Forwarded-Host. Checked as E2B's API checks it.
	 */
	maskRequestHost?: string;
}

/** What may change on an existing sandbox without a new catalog entry (PATCH /admin/sandboxes/:id). */
export interface SandboxChanges {
	trafficKeepalive?: boolean;
}

export type RpcProtocol = "grpc-web" | "connect" | "unknown";

/** One ResumeSandbox request as the control plane received it, faulted or not. */
export interface RecordedCall {
	sandboxId: string;
	protocol: RpcProtocol;
	/** Lowercased names; repeated headers joined with ", ". */
	headers: Record<string, string>;
	/** Epoch ms, with a fraction, when the request had been read. */
	at: number;
	/**
	 * Epoch ms, on the same clock, when the answer was fully written or the
	 * connection closed; absent while in flight. See maxConcurrentCalls.
	 */
	finishedAt?: number;
}

export const FAULT_CODES = [
	"ok-empty-ip",
	"Canceled",
	"Unknown",
	"InvalidArgument",
	"DeadlineExceeded",
	"NotFound",
	"AlreadyExists",
	"PermissionDenied",
	"ResourceExhausted",
	"FailedPrecondition",
	"Aborted",
	"OutOfRange",
	"Unimplemented",
	"Internal",
	"Unavailable",
	"DataLoss",
	"Unauthenticated",
] as const;

export type FaultCode = (typeof FAULT_CODES)[number];

/**
 * What the control plane does to matching calls instead of (or before) its
 * normal behaviour. Precedence: delayMs first, then hang, then httpStatus,
 * then garbage, then code.
 */
export interface Fault {
	/** The RPC it applies to; default "ResumeSandbox". */
	rpc?: RpcName;
	/** "ok-empty-ip" only for ResumeSandbox. */
	code?: FaultCode;
	message?: string;
	delayMs?: number;
	/** Raw HTTP answer with this status and a non-RPC body, as a load balancer would give. */
	httpStatus?: number;
	/** 200 with the protocol's content-type and a body that is not a valid message. */
	garbage?: boolean | GarbageKind;
	/** Never answer. */
	hang?: boolean;
	/** Only calls for this sandbox; absent means every call. */
	sandboxId?: string;
	/** Apply to this many matching calls, then clear itself; absent means until cleared. */
	times?: number;
}

/** One KeepAliveSandbox request as the control plane received it, faulted or not. */
export interface KeepAliveCall extends RecordedCall {
	/** The request's team_id, as sent ("" when the body was unreadable). */
	teamId: string;
}

/** One request the dev node received, for asserting what reached a node. */
export interface RecordedNodeRequest {
	method: string;
	url: string;
	/** Lowercased names; repeated headers joined with ", ". */
	headers: Record<string, string>;
	upgrade: boolean;
	at: number;
}

/**
 * How a garbage answer is broken: `true` or "message" is a well-framed but
 * undecodable message; "unframed" is junk with no gRPC-web frame; "truncated"
 * is a frame header promising more bytes than follow.
 */
export type GarbageKind = "message" | "unframed" | "truncated";

export type Log = (line: string) => void;

export const silent: Log = () => {};
