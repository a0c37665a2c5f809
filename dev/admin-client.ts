// Typed fetch client for the control plane's /admin API. Uses only fetch, so
// it also runs in workerd-based tests.

import type { CreateSandboxInput, Fault, KeepAliveCall, RecordedCall, SandboxChanges, SandboxView } from "./model.ts";

export class AdminApiError extends Error {
	readonly status: number;
	constructor(status: number, message: string) {
		super(message);
		this.name = "AdminApiError";
		this.status = status;
	}
}

/** The control plane could not be reached at all. */
export class AdminUnreachableError extends Error {
	readonly baseUrl: string;
	constructor(baseUrl: string, cause: unknown) {
		super(`cannot reach the control plane at ${baseUrl}`, { cause });
		this.name = "AdminUnreachableError";
		this.baseUrl = baseUrl;
	}
}

export interface AdminClient {
	/** Access tokens are left out unless `tokens` is true; `get` always has them. */
	list(options?: { tokens?: boolean }): Promise<SandboxView[]>;
	get(id: string): Promise<SandboxView>;
	create(input?: CreateSandboxInput): Promise<SandboxView>;
	/** PATCH: changes what may change without a new catalog entry (trafficKeepalive). */
	update(id: string, changes: SandboxChanges): Promise<SandboxView>;
	/** Resolves once "paused"; with `{ wait: false }`, at once with "pausing". */
	pause(id: string, options?: { wait?: boolean }): Promise<SandboxView>;
	resume(id: string): Promise<SandboxView>;
	kill(id: string): Promise<SandboxView>;
	remove(id: string): Promise<void>;
	/** ResumeSandbox calls, secrets and tokens masked. */
	calls(): Promise<RecordedCall[]>;
	resetCalls(): Promise<void>;
	/** KeepAliveSandbox calls, secrets and tokens masked. */
	keepAliveCalls(): Promise<KeepAliveCall[]>;
	resetKeepAliveCalls(): Promise<void>;
	fault(): Promise<Fault | null>;
	setFault(fault: Fault): Promise<void>;
	clearFault(): Promise<void>;
}

export function createAdminClient(baseUrl: string, fetchImpl: typeof fetch = fetch): AdminClient {
	const root = baseUrl.replace(/\/+$/, "");

	async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
		let res: Response;
		try {
			res = await fetchImpl(`${root}/admin${path}`, {
				method,
				// The admin API turns away any state change without it, body or not.
				headers: method === "GET" || method === "HEAD" ? {} : { "content-type": "application/json" },
				body: body === undefined ? null : JSON.stringify(body),
			});
		} catch (error) {
			throw new AdminUnreachableError(root, error);
		}
		const text = await res.text();
		if (!res.ok) {
			let message = text || res.statusText;
			try {
				const parsed = JSON.parse(text) as { message?: unknown };
				if (typeof parsed.message === "string") message = parsed.message;
			} catch {
				// Not JSON: keep the raw text.
			}
			throw new AdminApiError(res.status, message);
		}
		return (text === "" ? undefined : JSON.parse(text)) as T;
	}

	const sandbox = (id: string) => `/sandboxes/${encodeURIComponent(id)}`;

	return {
		list: async (options = {}) =>
			(await call<{ sandboxes: SandboxView[] }>("GET", `/sandboxes${options.tokens === true ? "?tokens=1" : ""}`))
				.sandboxes,
		get: (id) => call("GET", sandbox(id)),
		create: (input = {}) => call("POST", "/sandboxes", input),
		update: (id, changes) => call("PATCH", sandbox(id), changes),
		pause: (id, options = {}) => call("POST", `${sandbox(id)}/pause${options.wait === false ? "?wait=false" : ""}`),
		resume: (id) => call("POST", `${sandbox(id)}/resume`),
		kill: (id) => call("POST", `${sandbox(id)}/kill`),
		remove: (id) => call("DELETE", sandbox(id)),
		calls: async () => (await call<{ calls: RecordedCall[] }>("GET", "/calls")).calls,
		resetCalls: () => call("DELETE", "/calls"),
		keepAliveCalls: async () => (await call<{ calls: KeepAliveCall[] }>("GET", "/keepalive-calls")).calls,
		resetKeepAliveCalls: () => call("DELETE", "/keepalive-calls"),
		fault: async () => (await call<{ fault: Fault | null }>("GET", "/fault")).fault,
		setFault: async (fault) => {
			await call("PUT", "/fault", fault);
		},
		clearFault: () => call("DELETE", "/fault"),
	};
}
