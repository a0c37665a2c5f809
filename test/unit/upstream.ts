/**
 * The tests' side of the fake upstream (test/unit/fake-upstream.ts): scripts
 * the control plane's and nodes' answers, and reads what the Worker sent.
 * Only for the "properties" project (test/unit/*.spec.ts), whose
 * outboundService is that fake and which binds it as UPSTREAM.
 */
import { env } from "cloudflare:workers";
import type { NodeScript, OutboundRecord, RecordsPage, ResumeScript } from "./upstream-model.ts";

function binding(): Fetcher {
	const fetcher = (env as unknown as { UPSTREAM?: Fetcher }).UPSTREAM;
	if (fetcher === undefined) throw new Error("no UPSTREAM binding: run this file in the properties project");
	return fetcher;
}

async function post(path: string, body: unknown): Promise<void> {
	const response = await binding().fetch(`http://upstream${path}`, { method: "POST", body: JSON.stringify(body) });
	await response.arrayBuffer();
	if (response.status !== 204) throw new Error(`upstream ${path} answered ${response.status}`);
}

/** How the control plane answers ResumeSandbox for `script.sandboxId` from now on. */
export function scriptResume(script: ResumeScript): Promise<void> {
	return post("/resume-scripts", script);
}

/** How the node at `script.ip` answers from now on. */
export function scriptNode(script: NodeScript): Promise<void> {
	return post("/node-scripts", script);
}

/**
 * Records after `since` (a `next` from an earlier page), optionally only a
 * sandbox's or a node's, optionally compact (no bodies, few headers).
 */
export async function records(
	filter: { since?: number; sandboxId?: string; nodeIp?: string; compact?: boolean } = {},
): Promise<RecordsPage> {
	const query = new URLSearchParams();
	if (filter.compact === true) query.set("compact", "1");
	if (filter.since !== undefined) query.set("since", String(filter.since));
	if (filter.sandboxId !== undefined) query.set("sandboxId", filter.sandboxId);
	if (filter.nodeIp !== undefined) query.set("nodeIp", filter.nodeIp);
	const response = await binding().fetch(`http://upstream/records?${query}`);
	if (response.status !== 200) throw new Error(`upstream /records answered ${response.status}`);
	return (await response.json()) as RecordsPage;
}

/** The ResumeSandbox calls made for `sandboxId`, oldest first. */
export async function resumeCalls(sandboxId: string): Promise<OutboundRecord[]> {
	const page = await records({ sandboxId });
	return page.records.filter((record) => record.kind === "control-plane");
}

/** The requests the node at `nodeIp` was sent, oldest first. */
export async function nodeDeliveries(nodeIp: string): Promise<OutboundRecord[]> {
	const page = await records({ nodeIp });
	return page.records.filter((record) => record.kind === "node");
}

/** A record's header, by lowercase name. */
export function headerOf(record: OutboundRecord, name: string): string | undefined {
	return record.headers.find(([key]) => key === name)?.[1];
}

let counter = 0;
const salt = Math.random().toString(36).slice(2, 8);

/** A sandbox ID no other test in this run uses, so that nothing remembered of it gets in the way. */
export function freshSandboxId(label: string): string {
	counter += 1;
	return `${label}${salt}${counter}`
		.toLowerCase()
		.replace(/[^a-z0-9]/g, "")
		.slice(0, 63);
}
