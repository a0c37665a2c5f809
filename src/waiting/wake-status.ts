import type { CatalogClient } from "../catalog/catalog-client.ts";
import { errorCodes } from "../errors/registry.ts";

/**
 * The answer to a waiting page's question: how the sandbox's wake stands,
 * as JSON. It only reads the sandbox's object, so a stranger asking about
 * any ID wakes nothing and costs one object call, like any request.
 */
export async function answerWakeStatus(catalog: CatalogClient): Promise<Response> {
	const status = await catalog.wakeStatus();
	const body =
		status.phase === "failed"
			? {
					phase: "failed",
					reason: status.error.code,
					status: errorCodes[status.error.code].status,
					message: status.error.message ?? errorCodes[status.error.code].message,
				}
			: status;
	return new Response(`${JSON.stringify(body)}\n`, {
		headers: {
			"content-type": "application/json; charset=utf-8",
			"cache-control": "no-store",
			"x-content-type-options": "nosniff",
		},
	});
}
