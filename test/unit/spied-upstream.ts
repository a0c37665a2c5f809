/**
 * For the "unit" project, which has no outbound fake: the control plane and
 * nodes faked by replacing `fetch` in the test's isolate, where the Worker
 * and its Durable Objects run too. Every ResumeSandbox call and every request
 * to a faked node is recorded, so that tests can count them; any other fetch
 * goes out as usual.
 */
import { vi } from "vitest";
import { decodeSandboxId, protocolOf, resumeResponse } from "./resume-wire.ts";
import { type ResumeAnswer, resumePath } from "./upstream-model.ts";

export interface SeenRequest {
	method: string;
	url: string;
	headers: Headers;
	body: string;
}

export interface SeenResume {
	sandboxId: string;
	headers: Headers;
}

export interface SpiedUpstream {
	resumes: SeenResume[];
	/** Requests to each faked node, by IP. */
	nodes: Map<string, SeenRequest[]>;
}

export interface SpiedUpstreamOptions {
	/** The control plane's answer to each ResumeSandbox call; without it, calls go out as usual. */
	resume?: (call: SeenResume) => ResumeAnswer;
	/** How long each ResumeSandbox call waits before it is answered. */
	resumeDelayMs?: number;
	/** The faked nodes, by IP: what each answers. */
	nodes?: Record<string, (request: SeenRequest) => Response>;
}

/** Replaces `fetch` until `vi.restoreAllMocks()`. */
export function spyUpstream(options: SpiedUpstreamOptions): SpiedUpstream {
	const seen: SpiedUpstream = { resumes: [], nodes: new Map() };
	const realFetch = globalThis.fetch;
	vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
		const request = new Request(input, init);
		const url = new URL(request.url);
		if (url.pathname.endsWith(resumePath) && options.resume !== undefined) {
			const protocol = protocolOf(request.headers.get("content-type"));
			const call: SeenResume = {
				sandboxId: decodeSandboxId(new Uint8Array(await request.arrayBuffer()), protocol),
				headers: new Headers(request.headers),
			};
			seen.resumes.push(call);
			const answer = options.resume(call);
			if (options.resumeDelayMs !== undefined) {
				await new Promise((resolve) => setTimeout(resolve, options.resumeDelayMs));
			}
			return resumeResponse(answer, protocol === "connect" ? "connect" : "grpc-web");
		}
		const hostname = url.hostname.replace(/^\[|\]$/g, "");
		const node = options.nodes?.[hostname];
		if (node !== undefined) {
			// Read inside the Worker's request, which owns the body stream.
			const delivered: SeenRequest = {
				method: request.method,
				url: request.url,
				headers: new Headers(request.headers),
				body: await request.text(),
			};
			const deliveries = seen.nodes.get(hostname) ?? [];
			deliveries.push(delivered);
			seen.nodes.set(hostname, deliveries);
			return node(delivered);
		}
		return realFetch(input, init);
	});
	return seen;
}

/** E2B's node answer for a sandbox it does not hold: its JSON, naming the sandbox it was asked for. */
export function notHere(request: SeenRequest): Response {
	const sandboxId = request.headers.get("e2b-sandbox-id") ?? "";
	return Response.json({ sandboxId, message: "The sandbox was not found", code: 502 }, { status: 502 });
}
