// A registry sandbox in the shapes of E2B's API: Sandbox (create and connect),
// SandboxDetail (get) and ListedSandbox (list), as e2b-dev/infra's handlers
// fill them (sandbox_get.go, sandboxes_list.go, sandboxtypes.ToAPISandbox).

import type { SandboxView } from "../model.ts";

/** E2B's consts.ClientID: every sandbox still carries it for old SDKs. */
export const CLIENT_ID = "6532622b";
/** The template a sandbox the admin API created counts as: the SDK's default. */
export const DEFAULT_TEMPLATE_ID = "base";
/** What every dev sandbox claims to have; the demo servers use none of it. */
export const NOMINAL_CPU_COUNT = 2;
export const NOMINAL_MEMORY_MB = 512;
export const NOMINAL_DISK_SIZE_MB = 1024;

export interface ShapeContext {
	envdVersion: string;
	/** The base domain of sandbox traffic, when the answers should name one (E2B: a BYOC cluster's). */
	sandboxDomain: string | undefined;
	maxLengthMs: number;
}

/** E2B's state names: a pausing sandbox is already "paused" to its API's callers. */
export function apiState(sandbox: SandboxView): "running" | "paused" {
	return sandbox.state === "running" ? "running" : "paused";
}

function templateOf(sandbox: SandboxView): string {
	return sandbox.templateId ?? DEFAULT_TEMPLATE_ID;
}

/** When its current run started, or its last one; for one that never ran, when it was created. */
export function startedAtOf(sandbox: SandboxView): number {
	return sandbox.startedAt ?? sandbox.createdAt;
}

/**
 * Running: its end time, or without a timeout the end of its longest life
 * (when its catalog entry lapses). Paused: when it paused, as E2B answers a
 * snapshot's EndAt with the time its snapshot was built.
 */
function endAtOf(sandbox: SandboxView, context: ShapeContext): number {
	if (sandbox.state === "running") return sandbox.endTime ?? startedAtOf(sandbox) + context.maxLengthMs;
	return sandbox.pausedAt ?? startedAtOf(sandbox);
}

/** Sandbox: the answer to create and connect. */
export function sandboxAnswer(sandbox: SandboxView, context: ShapeContext): Record<string, unknown> {
	return {
		alias: templateOf(sandbox),
		clientID: CLIENT_ID,
		...(context.sandboxDomain === undefined ? {} : { domain: context.sandboxDomain }),
		...(sandbox.envdAccessToken === undefined ? {} : { envdAccessToken: sandbox.envdAccessToken }),
		envdVersion: context.envdVersion,
		sandboxID: sandbox.id,
		templateID: templateOf(sandbox),
		...(sandbox.trafficAccessToken === undefined ? {} : { trafficAccessToken: sandbox.trafficAccessToken }),
	};
}

/** SandboxDetail's network, as E2B's dbNetworkConfigToAPI gives it, for the fields served here. */
function networkOf(sandbox: SandboxView): Record<string, unknown> {
	if (sandbox.public && sandbox.maskRequestHost === undefined) return {};
	return {
		network: {
			...(sandbox.public ? {} : { allowPublicTraffic: false }),
			...(sandbox.maskRequestHost === undefined ? {} : { maskRequestHost: sandbox.maskRequestHost }),
		},
	};
}

/** SandboxDetail: the answer to get. */
export function sandboxDetail(sandbox: SandboxView, context: ShapeContext): Record<string, unknown> {
	const running = sandbox.state === "running";
	return {
		alias: templateOf(sandbox),
		...(sandbox.allowInternetAccess === undefined ? {} : { allowInternetAccess: sandbox.allowInternetAccess }),
		clientID: CLIENT_ID,
		cpuCount: NOMINAL_CPU_COUNT,
		diskSizeMB: NOMINAL_DISK_SIZE_MB,
		...(context.sandboxDomain === undefined || !running ? {} : { domain: context.sandboxDomain }),
		endAt: new Date(endAtOf(sandbox, context)).toISOString(),
		...(sandbox.envdAccessToken === undefined ? {} : { envdAccessToken: sandbox.envdAccessToken }),
		envdVersion: context.envdVersion,
		lifecycle: { autoResume: sandbox.autoResume, onTimeout: sandbox.onTimeout },
		memoryMB: NOMINAL_MEMORY_MB,
		...(sandbox.metadata === undefined ? {} : { metadata: sandbox.metadata }),
		...networkOf(sandbox),
		sandboxID: sandbox.id,
		startedAt: new Date(startedAtOf(sandbox)).toISOString(),
		state: apiState(sandbox),
		templateID: templateOf(sandbox),
		// E2B lists a running sandbox's volume mounts (none here) and leaves a snapshot's out.
		...(running ? { volumeMounts: [] } : {}),
	};
}

/** ListedSandbox: one entry of a list. */
export function listedSandbox(sandbox: SandboxView, context: ShapeContext): Record<string, unknown> {
	return {
		alias: templateOf(sandbox),
		clientID: CLIENT_ID,
		cpuCount: NOMINAL_CPU_COUNT,
		diskSizeMB: NOMINAL_DISK_SIZE_MB,
		endAt: new Date(endAtOf(sandbox, context)).toISOString(),
		envdVersion: context.envdVersion,
		memoryMB: NOMINAL_MEMORY_MB,
		...(sandbox.metadata === undefined ? {} : { metadata: sandbox.metadata }),
		sandboxID: sandbox.id,
		startedAt: new Date(startedAtOf(sandbox)).toISOString(),
		state: apiState(sandbox),
		templateID: templateOf(sandbox),
		...(sandbox.state === "running" ? { volumeMounts: [] } : {}),
	};
}
