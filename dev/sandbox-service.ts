// proxy.SandboxService as the development control plane serves it: both RPCs
// in one Connect router, each call's outcome logged on one line.

import { Code, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { SandboxService } from "../src/gen/proxy/proxy_pb.ts";
import { callInfoKey } from "./call-info.ts";
import type { ClientProxyAuth } from "./client-proxy-auth.ts";
import { createKeepAliveHandler } from "./keepalive-service.ts";
import type { Log, RpcName } from "./model.ts";
import type { SandboxRegistry } from "./registry.ts";
import { createResumeHandler, type TokenPolicy } from "./resume-service.ts";

export interface SandboxServiceOptions {
	auth: ClientProxyAuth;
	registry: SandboxRegistry;
	tokenPolicy: TokenPolicy;
	transitionWaitMs: number;
	log: Log;
}

export function sandboxServiceRoutes(options: SandboxServiceOptions): (router: ConnectRouter) => void {
	const { log } = options;
	const resume = createResumeHandler(options);
	const keepAlive = createKeepAliveHandler(options);

	/** Runs a call, logging its failure, and its steps as the handler reports them. */
	async function logged<T>(
		rpc: RpcName,
		sandboxId: string,
		ctx: HandlerContext,
		run: (say: (line: string) => void) => Promise<T>,
	): Promise<T> {
		const protocol = ctx.values.get(callInfoKey)?.protocol ?? "unknown";
		const prefix = `${rpc} ${sandboxId || "<empty>"} (${protocol})`;
		let said = false;
		const say = (line: string) => {
			said = true;
			log(`${prefix} ${line}`);
		};
		try {
			return await run(say);
		} catch (error) {
			const err = ConnectError.from(error);
			const faulted = ctx.values.get(callInfoKey)?.fault?.code !== undefined ? " [fault]" : "";
			// A call that already logged its start reports its outcome as a follow-up.
			log(`${prefix} ${said ? "-> " : ""}${Code[err.code]}: ${err.rawMessage}${faulted}`);
			throw err;
		}
	}

	return (router) => {
		router.service(SandboxService, {
			resumeSandbox: async (request, ctx) => ({
				orchestratorIp: await logged("ResumeSandbox", request.sandboxId, ctx, (say) =>
					resume(request.sandboxId, ctx, say),
				),
			}),
			keepAliveSandbox: async (request, ctx) => {
				await logged("KeepAliveSandbox", request.sandboxId, ctx, (say) => keepAlive(request, ctx, say));
				return {};
			},
		});
	};
}
