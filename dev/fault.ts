// Fault injection for ResumeSandbox and KeepAliveSandbox, so tests can reach
// every row of the Worker's error table against a real server rather than a
// mock.

import { randomBytes } from "node:crypto";
import type { ServerResponse } from "node:http";
import { FAULT_CODES, type Fault, type FaultCode, RPC_NAMES, type RpcName, type RpcProtocol } from "./model.ts";

export class FaultError extends Error {
	constructor(message: string) {
		super(message);
		this.name = "FaultError";
	}
}

const FAULT_KEYS = new Set([
	"rpc",
	"code",
	"message",
	"delayMs",
	"httpStatus",
	"garbage",
	"hang",
	"sandboxId",
	"times",
]);

function isFaultCode(value: unknown): value is FaultCode {
	return typeof value === "string" && (FAULT_CODES as readonly string[]).includes(value);
}

function nonNegativeInt(value: unknown, name: string): number {
	if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
		throw new FaultError(`${name} must be a non-negative integer`);
	}
	return value;
}

/** Validates untrusted JSON into a Fault, naming the offending field. */
export function parseFault(value: unknown): Fault {
	if (typeof value !== "object" || value === null || Array.isArray(value)) {
		throw new FaultError("fault must be a JSON object");
	}
	const input = value as Record<string, unknown>;
	for (const key of Object.keys(input)) {
		if (!FAULT_KEYS.has(key)) throw new FaultError(`unknown fault field "${key}"`);
	}
	const fault: Fault = {};
	if (input.rpc !== undefined) {
		if (!RPC_NAMES.includes(input.rpc as RpcName)) throw new FaultError(`rpc must be one of ${RPC_NAMES.join(", ")}`);
		fault.rpc = input.rpc as RpcName;
	}
	if (input.code !== undefined) {
		if (!isFaultCode(input.code)) throw new FaultError(`code must be one of ${FAULT_CODES.join(", ")}`);
		if (input.code === "ok-empty-ip" && fault.rpc === "KeepAliveSandbox") {
			throw new FaultError("ok-empty-ip is a ResumeSandbox answer; KeepAliveSandbox's has no fields");
		}
		fault.code = input.code;
	}
	if (input.message !== undefined) {
		if (typeof input.message !== "string") throw new FaultError("message must be a string");
		fault.message = input.message;
	}
	if (input.delayMs !== undefined) fault.delayMs = nonNegativeInt(input.delayMs, "delayMs");
	if (input.httpStatus !== undefined) {
		const status = nonNegativeInt(input.httpStatus, "httpStatus");
		if (status < 200 || status > 599) throw new FaultError("httpStatus must be from 200 to 599");
		fault.httpStatus = status;
	}
	if (input.hang !== undefined) {
		if (typeof input.hang !== "boolean") throw new FaultError("hang must be a boolean");
		fault.hang = input.hang;
	}
	if (input.garbage !== undefined) {
		const garbage = input.garbage;
		if (typeof garbage !== "boolean" && garbage !== "message" && garbage !== "unframed" && garbage !== "truncated") {
			throw new FaultError('garbage must be a boolean or one of "message", "unframed", "truncated"');
		}
		fault.garbage = garbage;
	}
	if (input.sandboxId !== undefined) {
		if (typeof input.sandboxId !== "string") throw new FaultError("sandboxId must be a string");
		fault.sandboxId = input.sandboxId;
	}
	if (input.times !== undefined) {
		fault.times = nonNegativeInt(input.times, "times");
		if (fault.times === 0) throw new FaultError("times must be at least 1");
	}
	return fault;
}

export interface FaultSlot {
	current(): Fault | undefined;
	set(fault: Fault): void;
	clear(): void;
	/** The fault for this call, if any, counting it against `times`. */
	take(rpc: RpcName, sandboxId: string): Fault | undefined;
}

export function createFaultSlot(): FaultSlot {
	let fault: Fault | undefined;
	let remaining = Number.POSITIVE_INFINITY;
	return {
		current: () => (fault === undefined ? undefined : { ...fault }),
		set(next) {
			fault = { ...next };
			remaining = next.times ?? Number.POSITIVE_INFINITY;
		},
		clear() {
			fault = undefined;
		},
		take(rpc, sandboxId) {
			if (fault === undefined) return undefined;
			if ((fault.rpc ?? "ResumeSandbox") !== rpc) return undefined;
			if (fault.sandboxId !== undefined && fault.sandboxId !== sandboxId) return undefined;
			const taken = fault;
			remaining -= 1;
			if (remaining <= 0) fault = undefined;
			return taken;
		},
	};
}

export function describeFault(fault: Fault): string {
	const parts: string[] = [];
	if (fault.delayMs !== undefined) parts.push(`delay ${fault.delayMs}ms`);
	if (fault.hang === true) parts.push("hang");
	else if (fault.httpStatus !== undefined) parts.push(`http ${fault.httpStatus}`);
	else if (isGarbage(fault)) parts.push(`garbage (${fault.garbage === true ? "message" : fault.garbage})`);
	else if (fault.code !== undefined) parts.push(fault.code);
	return parts.join(", ") || "no-op";
}

export function isGarbage(fault: Fault): boolean {
	return fault.garbage !== undefined && fault.garbage !== false;
}

/**
 * Answers below the RPC layer when the fault calls for it. Returns true when
 * the response is taken care of (including never, for a hang).
 */
export function answerRawFault(fault: Fault, protocol: RpcProtocol, res: ServerResponse): boolean {
	if (fault.hang === true) return true;
	if (fault.httpStatus !== undefined) {
		// Shaped like what a load balancer in front of the control plane sends.
		const body = `<html><body><h1>${fault.httpStatus}</h1><p>${fault.message ?? "injected HTTP fault"}</p></body></html>\n`;
		res.writeHead(fault.httpStatus, { "content-type": "text/html", "content-length": Buffer.byteLength(body) });
		res.end(body);
		return true;
	}
	if (isGarbage(fault)) {
		// A message that cannot be decoded: it opens with a protobuf tag of wire
		// type 7, which does not exist. By default it sits in a well-formed
		// gRPC-web frame, so both protocols fail at message decoding; the other
		// kinds break the framing instead.
		const junk = Buffer.concat([
			Buffer.from([0x0f]),
			Buffer.from(`not protobuf ${randomBytes(24).toString("base64")}`),
		]);
		let body = junk;
		if (protocol === "grpc-web" && fault.garbage !== "unframed") {
			const frame = Buffer.alloc(5);
			frame.writeUInt32BE(fault.garbage === "truncated" ? junk.byteLength * 10 : junk.byteLength, 1);
			body = Buffer.concat([frame, junk]);
		}
		const contentType = protocol === "grpc-web" ? "application/grpc-web+proto" : "application/proto";
		res.writeHead(200, { "content-type": contentType, "content-length": body.byteLength });
		res.end(body);
		return true;
	}
	return false;
}
