// Which operation a request names, matched as E2B's API matches it: its
// request validator (kin-openapi's router over spec/openapi.yml in
// e2b-dev/infra) answers a path no operation has with 404 "no matching
// operation was found", and a path whose operations take other methods with
// 400 "method not allowed", both before it looks at credentials.

/**
 * Every operation of E2B's API outside /admin (the control plane's own admin
 * API lives there): spec/openapi.yml, plus POST /v2/sandboxes and POST
 * /v2/sandboxes/{sandboxID}/connect, which the e2b SDK 2.51.0 calls and the
 * spec we read predates. The ones this API does not serve answer 501.
 */
export const E2B_OPERATIONS: readonly string[] = [
	"POST /access-tokens",
	"DELETE /access-tokens/{accessTokenID}",
	"GET /api-keys",
	"POST /api-keys",
	"DELETE /api-keys/{apiKeyID}",
	"PATCH /api-keys/{apiKeyID}",
	"GET /health",
	"GET /nodes",
	"GET /nodes/{nodeID}",
	"POST /nodes/{nodeID}",
	"GET /sandboxes",
	"POST /sandboxes",
	"GET /sandboxes/metrics",
	"DELETE /sandboxes/{sandboxID}",
	"GET /sandboxes/{sandboxID}",
	"POST /sandboxes/{sandboxID}/connect",
	"POST /sandboxes/{sandboxID}/fork",
	"GET /sandboxes/{sandboxID}/logs",
	"GET /sandboxes/{sandboxID}/metrics",
	"PUT /sandboxes/{sandboxID}/network",
	"POST /sandboxes/{sandboxID}/pause",
	"POST /sandboxes/{sandboxID}/refreshes",
	"POST /sandboxes/{sandboxID}/resume",
	"POST /sandboxes/{sandboxID}/snapshots",
	"POST /sandboxes/{sandboxID}/timeout",
	"GET /secrets",
	"POST /secrets",
	"DELETE /secrets/{secretID}",
	"GET /secrets/{secretID}",
	"POST /secrets/{secretID}",
	"GET /snapshots",
	"GET /teams",
	"GET /teams/{teamID}/metrics",
	"GET /teams/{teamID}/metrics/max",
	"GET /templates",
	"POST /templates",
	"GET /templates/aliases/{alias}",
	"DELETE /templates/tags",
	"POST /templates/tags",
	"DELETE /templates/{templateID}",
	"GET /templates/{templateID}",
	"PATCH /templates/{templateID}",
	"POST /templates/{templateID}",
	"POST /templates/{templateID}/builds/{buildID}",
	"GET /templates/{templateID}/builds/{buildID}/logs",
	"GET /templates/{templateID}/builds/{buildID}/status",
	"GET /templates/{templateID}/files/{hash}",
	"GET /templates/{templateID}/tags",
	"GET /v2/sandboxes",
	"POST /v2/sandboxes",
	"POST /v2/sandboxes/{sandboxID}/connect",
	"GET /v2/sandboxes/{sandboxID}/logs",
	"GET /v2/templates",
	"POST /v2/templates",
	"PATCH /v2/templates/{templateID}",
	"POST /v2/templates/{templateID}/builds/{buildID}",
	"POST /v3/templates",
	"GET /volumes",
	"POST /volumes",
	"DELETE /volumes/{volumeID}",
	"GET /volumes/{volumeID}",
];

export type OperationMatch =
	| {
			kind: "operation";
			/** "METHOD /template", as listed in E2B_OPERATIONS. */
			operation: string;
			/** Path parameters, percent-decoded. */
			params: Record<string, string>;
	  }
	| { kind: "method_not_allowed" }
	| { kind: "not_found" };

interface Template {
	method: string;
	operation: string;
	segments: string[];
	/** Literal segments first: /sandboxes/metrics is not /sandboxes/{sandboxID}. */
	literals: number;
}

function parse(operation: string): Template {
	const [method = "", path = ""] = operation.split(" ", 2);
	const segments = path.split("/").slice(1);
	return { method, operation, segments, literals: segments.filter((s) => !s.startsWith("{")).length };
}

function decode(segment: string): string {
	try {
		return decodeURIComponent(segment);
	} catch {
		return segment;
	}
}

/** Path parameters when `path`'s segments fit the template (a parameter is one non-empty segment). */
function paramsIfFits(template: Template, segments: string[]): Record<string, string> | undefined {
	if (template.segments.length !== segments.length) return undefined;
	const params: Record<string, string> = {};
	for (const [i, expected] of template.segments.entries()) {
		const actual = segments[i] ?? "";
		if (expected.startsWith("{")) {
			if (actual === "") return undefined;
			params[expected.slice(1, -1)] = decode(actual);
		} else if (expected !== actual) {
			return undefined;
		}
	}
	return params;
}

export function createOperationMatcher(
	operations: readonly string[],
): (method: string, path: string) => OperationMatch {
	const templates = operations.map(parse).sort((a, b) => b.literals - a.literals);
	return (method, path) => {
		const segments = path.split("/").slice(1);
		let pathMatched = false;
		for (const template of templates) {
			const params = paramsIfFits(template, segments);
			if (params === undefined) continue;
			if (template.method === method) return { kind: "operation", operation: template.operation, params };
			pathMatched = true;
		}
		return pathMatched ? { kind: "method_not_allowed" } : { kind: "not_found" };
	};
}
