import type { Config } from "../config.ts";
import { logEvent } from "../log.ts";
import type { SandboxTarget } from "../routing.ts";
import { backoffCeiling } from "../rules/backoff.ts";
import type { NodeAnswer } from "./sandbox-not-here.ts";

// Retries wait PORT_RETRY_DELAY_MS, doubling, but never more than this.
const maxPortRetryDelayMs = 1000;

type PortRetrySettings = Pick<Config, "portRetryWindowMs" | "portRetryAttempts" | "portRetryDelayMs">;

/**
 * Sends the request, and sends it again while the node answers that nothing
 * listens on the port, for a short window after this edge woke the sandbox
 * (`resumedAt`, which the sandbox's object sets on a route its resume gave;
 * only such a route can meet a port still opening, so the caller sends any
 * other straight away). The node gives that answer when it could not
 * connect to the app, so the app saw nothing; the body must be one that can
 * go again. Outside the window the answer goes to the client.
 */
export async function sendWhilePortOpens(
	config: PortRetrySettings,
	target: SandboxTarget,
	replayable: boolean,
	resumedAt: number,
	sendOnce: () => Promise<NodeAnswer>,
): Promise<NodeAnswer> {
	let answer = await sendOnce();
	for (let attempt = 0; attempt < config.portRetryAttempts; attempt++) {
		if (answer.notHere || !answer.portClosed || !replayable) return answer;
		if (Date.now() - resumedAt >= config.portRetryWindowMs) return answer;
		await answer.response.body?.cancel();
		const delayMs = backoffCeiling(attempt + 1, { baseMs: config.portRetryDelayMs, capMs: maxPortRetryDelayMs });
		await new Promise((resolve) => setTimeout(resolve, delayMs));
		logEvent("port_retry", { sandboxId: target.sandboxId, port: target.port, attempt: attempt + 1 });
		answer = await sendOnce();
	}
	return answer;
}
