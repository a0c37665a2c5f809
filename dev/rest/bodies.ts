// The request bodies of the operations served, checked as E2B's request
// validator checks them against its OpenAPI schemas (types, required fields,
// minimums; unknown fields pass). The statuses are E2B's; the messages are
// shorter than kin-openapi's.

import { RestError, validationError } from "./errors.ts";

type Json = Record<string, unknown>;

function bodyError(message: string): RestError {
	return validationError(`request body has an error: ${message}`);
}

/** The body as a JSON object; an empty body is `undefined`. */
export function parseJsonObject(raw: Buffer): Json | undefined {
	if (raw.byteLength === 0) return undefined;
	let value: unknown;
	try {
		value = JSON.parse(raw.toString("utf8"));
	} catch (error) {
		throw bodyError(`failed to decode request body: ${error instanceof Error ? error.message : String(error)}`);
	}
	if (typeof value !== "object" || value === null || Array.isArray(value)) {
		throw bodyError("doesn't match schema: value must be an object");
	}
	return value as Json;
}

function requireBody(body: Json | undefined): Json {
	if (body === undefined) throw bodyError("value is required but missing");
	return body;
}

function optionalBoolean(body: Json, name: string): boolean | undefined {
	const value = body[name];
	if (value === undefined) return undefined;
	if (typeof value !== "boolean") throw bodyError(`doesn't match schema: Error at "/${name}": value must be a boolean`);
	return value;
}

function optionalString(body: Json, name: string, path: string): string | undefined {
	const value = body[name];
	if (value === undefined) return undefined;
	if (typeof value !== "string") throw bodyError(`doesn't match schema: Error at "/${path}": value must be a string`);
	return value;
}

/** An int32 at least `minimum`, as the spec's `format: int32, minimum: 0`. */
function optionalInteger(body: Json, name: string, minimum: number): number | undefined {
	const value = body[name];
	if (value === undefined) return undefined;
	if (typeof value !== "number" || !Number.isInteger(value) || value > 2_147_483_647) {
		throw bodyError(`doesn't match schema: Error at "/${name}": value must be an int32 integer`);
	}
	if (value < minimum) {
		throw bodyError(`doesn't match schema: Error at "/${name}": number must be at least ${minimum}`);
	}
	return value;
}

function optionalStringMap(body: Json, name: string): Record<string, string> | undefined {
	const value = body[name];
	if (value === undefined) return undefined;
	if (typeof value !== "object" || value === null || Array.isArray(value)) {
		throw bodyError(`doesn't match schema: Error at "/${name}": value must be an object`);
	}
	for (const [key, item] of Object.entries(value)) {
		if (typeof item !== "string") {
			throw bodyError(`doesn't match schema: Error at "/${name}/${key}": value must be a string`);
		}
	}
	return { ...(value as Record<string, string>) };
}

function optionalObject(body: Json, name: string): Json | undefined {
	const value = body[name];
	if (value === undefined) return undefined;
	if (typeof value !== "object" || value === null || Array.isArray(value)) {
		throw bodyError(`doesn't match schema: Error at "/${name}": value must be an object`);
	}
	return value as Json;
}

/** NewSandbox (POST /sandboxes) and NewSandboxV2 (POST /v2/sandboxes), reduced to what is served. */
export interface NewSandbox {
	templateId: string;
	/** Seconds; absent: the version's default. */
	timeout: number | undefined;
	autoPause: boolean | undefined;
	autoPauseMemory: boolean | undefined;
	autoResume: boolean | undefined;
	/** v1 only; v2 is always secure. */
	secure: boolean | undefined;
	allowInternetAccess: boolean | undefined;
	allowPublicTraffic: boolean | undefined;
	/** Checked by the handler, after the body's schema, as E2B's validateNetworkConfig. */
	maskRequestHost: string | undefined;
	metadata: Record<string, string> | undefined;
}

/** The network fields a dev sandbox cannot honour; refused rather than ignored. */
const UNSERVED_NETWORK_FIELDS = ["allowOut", "denyOut", "egressProxy", "rules", "httpsPorts"];

export function parseNewSandbox(raw: Json | undefined, version: "v1" | "v2"): NewSandbox {
	const body = requireBody(raw);
	const templateId = body.templateID;
	if (templateId === undefined) {
		throw bodyError('doesn\'t match schema: Error at "/templateID": property "templateID" is missing');
	}
	if (typeof templateId !== "string")
		throw bodyError('doesn\'t match schema: Error at "/templateID": value must be a string');
	const autoResumeConfig = optionalObject(body, "autoResume");
	let autoResume: boolean | undefined;
	if (autoResumeConfig !== undefined) {
		if (typeof autoResumeConfig.enabled !== "boolean") {
			throw bodyError('doesn\'t match schema: Error at "/autoResume/enabled": value must be a boolean');
		}
		autoResume = autoResumeConfig.enabled;
	}
	const network = optionalObject(body, "network");
	let allowPublicTraffic: boolean | undefined;
	let maskRequestHost: string | undefined;
	if (network !== undefined) {
		allowPublicTraffic = optionalBoolean(network, "allowPublicTraffic");
		maskRequestHost = optionalString(network, "maskRequestHost", "network/maskRequestHost");
		for (const field of UNSERVED_NETWORK_FIELDS) {
			if (network[field] !== undefined) {
				throw new RestError(400, `network.${field} is not supported by the development control plane`);
			}
		}
	}
	optionalStringMap(body, "envVars");
	const volumeMounts = body.volumeMounts;
	if (volumeMounts !== undefined && !(Array.isArray(volumeMounts) && volumeMounts.length === 0)) {
		// E2B's answer while volume mounts are off (ErrVolumeMountsDisabled).
		throw new RestError(400, "Volume mounts are not enabled.");
	}
	const iam = optionalObject(body, "iam");
	const tokens = iam === undefined ? undefined : optionalObject(iam, "tokens");
	if (tokens !== undefined && Object.keys(tokens).length > 0) {
		// E2B's answer while its SandboxIamTokensFlag is off.
		throw new RestError(400, "Sandbox IAM workload tokens are not available for your team.");
	}
	return {
		templateId,
		timeout: optionalInteger(body, "timeout", 0),
		autoPause: optionalBoolean(body, "autoPause"),
		autoPauseMemory: optionalBoolean(body, "autoPauseMemory"),
		autoResume,
		secure: version === "v1" ? optionalBoolean(body, "secure") : true,
		allowInternetAccess: optionalBoolean(body, "allow_internet_access"),
		allowPublicTraffic,
		maskRequestHost,
		metadata: optionalStringMap(body, "metadata"),
	};
}

/** ConnectSandbox (v1: timeout required) and ConnectSandboxV2 (the body and its timeout optional, default 300 s). */
export function parseConnect(
	raw: Json | undefined,
	version: "v1" | "v2",
): { timeout: number; memory: boolean | undefined } {
	const body = version === "v1" ? requireBody(raw) : (raw ?? {});
	const timeout = optionalInteger(body, "timeout", 0);
	if (timeout === undefined && version === "v1") {
		throw bodyError('doesn\'t match schema: Error at "/timeout": property "timeout" is missing');
	}
	return { timeout: timeout ?? 300, memory: optionalBoolean(body, "memory") };
}

/** SandboxTimeoutRequest. */
export function parseTimeout(raw: Json | undefined): number {
	const timeout = optionalInteger(requireBody(raw), "timeout", 0);
	if (timeout === undefined)
		throw bodyError('doesn\'t match schema: Error at "/timeout": property "timeout" is missing');
	return timeout;
}

/** SandboxPauseRequest, optional. */
export function parsePause(raw: Json | undefined): { memory: boolean | undefined } {
	return { memory: raw === undefined ? undefined : optionalBoolean(raw, "memory") };
}
