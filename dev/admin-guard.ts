// The admin API is unauthenticated and drives every sandbox, so a web page
// must not be able to reach it. A page can aim a request at 127.0.0.1, and by
// DNS rebinding can even read the answer under its own origin; only the Host
// header it cannot forge gives that away. And a page can send a cross-site
// POST without a preflight only with a "simple" content type, never
// application/json.

import type { IncomingMessage } from "node:http";

export interface AdminRefusal {
	status: 403 | 415;
	reason: "host_not_loopback" | "json_content_type_required";
	message: string;
}

const HOST_PATTERN = /^(?:(localhost)|(\d{1,3}(?:\.\d{1,3}){3})|\[(::1)\])(?::\d{1,5})?$/i;

/** `localhost`, a 127.0.0.0/8 literal or `[::1]`, each with an optional port. */
export function isLoopbackHost(host: string): boolean {
	const match = HOST_PATTERN.exec(host);
	if (match === null) return false;
	const ipv4 = match[2];
	if (ipv4 === undefined) return true;
	const octets = ipv4.split(".").map(Number);
	return octets[0] === 127 && octets.every((octet) => octet <= 255);
}

/** `application/json`, parameters allowed. */
export function isJsonContentType(value: string | undefined): boolean {
	if (value === undefined) return false;
	return (value.split(";", 1)[0] ?? "").trim().toLowerCase() === "application/json";
}

function hostHeaders(req: IncomingMessage): string[] {
	const hosts: string[] = [];
	for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
		if (req.rawHeaders[i]?.toLowerCase() === "host") hosts.push(req.rawHeaders[i + 1] ?? "");
	}
	return hosts;
}

/** Why the request must be turned away, or undefined when it may go on. */
export function refuseAdminRequest(req: IncomingMessage): AdminRefusal | undefined {
	// Node keeps only the first of repeated Host headers; a request with two is not one to trust.
	const hosts = hostHeaders(req);
	const host = hosts.length === 1 ? hosts[0] : undefined;
	if (host === undefined || !isLoopbackHost(host)) {
		const given = hosts.length === 0 ? "none" : hosts.map((h) => JSON.stringify(h.slice(0, 100))).join(", ");
		return {
			status: 403,
			reason: "host_not_loopback",
			message:
				"the admin API answers only requests whose Host is localhost, a 127.0.0.0/8 address or [::1] " +
				`(with an optional port), against DNS rebinding; the Host was ${given}`,
		};
	}
	const method = req.method ?? "GET";
	if (method !== "GET" && method !== "HEAD" && !isJsonContentType(req.headers["content-type"])) {
		return {
			status: 415,
			reason: "json_content_type_required",
			message: `${method} requests to the admin API need "Content-Type: application/json", even without a body`,
		};
	}
	return undefined;
}
