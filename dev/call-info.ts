// What the control plane's pre-adapter stage learned of a call (its protocol
// and the fault that matched it), handed to the RPC handlers.

import { Code, ConnectError, createContextKey } from "@connectrpc/connect";
import type { Fault, RpcProtocol } from "./model.ts";

export interface CallInfo {
	protocol: RpcProtocol;
	fault?: Fault | undefined;
}

export const callInfoKey = createContextKey<CallInfo | undefined>(undefined, { description: "dev call info" });

/** A fault with a code answers with it, before any check; "ok-empty-ip" is the caller's to answer. */
export function throwFaultCode(fault: Fault | undefined): void {
	if (fault?.code === undefined || fault.code === "ok-empty-ip") return;
	throw new ConnectError(fault.message ?? `injected ${fault.code} fault`, Code[fault.code]);
}
