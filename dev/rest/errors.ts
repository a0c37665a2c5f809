// E2B's API answers every error as {code, message} JSON (apierrors.SendAPIError
// and utils.ErrorHandler in e2b-dev/infra), compact, as gin writes it.

import type { ServerResponse } from "node:http";

export class RestError extends Error {
	readonly status: number;
	constructor(status: number, message: string) {
		super(message);
		this.name = "RestError";
		this.status = status;
	}
}

/** E2B's utils.SandboxNotFoundMsg. */
export function sandboxNotFound(sandboxId: string): RestError {
	return new RestError(404, `Sandbox ${JSON.stringify(sandboxId)} doesn't exist or you don't have access to it`);
}

/** What E2B's request validator answers for a request its OpenAPI spec refuses (utils.ErrorHandler). */
export function validationError(message: string, status = 400): RestError {
	return new RestError(status, `validation error: ${message}`);
}

export function sendE2bJson(
	res: ServerResponse,
	status: number,
	body: unknown,
	headers: Record<string, string> = {},
): void {
	const text = JSON.stringify(body);
	res.writeHead(status, {
		...headers,
		"content-type": "application/json; charset=utf-8",
		"content-length": Buffer.byteLength(text),
	});
	res.end(text);
}

export function sendE2bError(res: ServerResponse, error: RestError): void {
	sendE2bJson(res, error.status, { code: error.status, message: error.message });
}
