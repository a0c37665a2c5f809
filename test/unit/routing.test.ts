import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config.ts";
import { ProxyError } from "../../src/errors/proxy-error.ts";
import { routeHost, type SandboxTarget } from "../../src/routing.ts";

const production = parseConfig({
	SANDBOX_DOMAIN: "e2b.example.com, eu.e2b.example.com",
	CONTROL_PLANE_URL: "https://api.example.com",
	API_SECRET: "s",
	ENVIRONMENT: "production",
});
const development = parseConfig({
	SANDBOX_DOMAIN: "localhost",
	CONTROL_PLANE_URL: "http://127.0.0.1:8790",
	API_SECRET: "s",
	ENVIRONMENT: "development",
});

function route(host: string, headers: Record<string, string> = {}, config = production): SandboxTarget {
	const routed = routeHost(host, new Headers(headers), config);
	if (routed.kind !== "sandbox") throw new Error(`expected ${host} to route to a sandbox`);
	return routed.target;
}

function refusal(host: string, headers: Record<string, string> = {}, config = production): ProxyError {
	try {
		route(host, headers, config);
	} catch (error) {
		if (error instanceof ProxyError) {
			expect(error.status).toBe(400);
			return error;
		}
		throw error;
	}
	throw new Error(`expected ${host} to be refused`);
}

function reasonFor(host: string, headers: Record<string, string> = {}, config = production): string {
	return refusal(host, headers, config).code;
}

describe("host routing", () => {
	it.each([
		["3000-abc123.e2b.example.com", 3000, "abc123"],
		["8080-abc123.e2b.example.com:443", 8080, "abc123"],
		["49983-x1.eu.e2b.example.com", 49983, "x1"],
		["1-a.e2b.example.com", 1, "a"],
		["65535-a.e2b.example.com", 65535, "a"],
		// Everything after the second dash is the legacy client-ID suffix.
		["3000-abc123-clientid.e2b.example.com", 3000, "abc123"],
		["3000-abc123-client-id-x.e2b.example.com", 3000, "abc123"],
		// The domain part of a host is case-insensitive.
		["3000-abc123.E2B.Example.COM", 3000, "abc123"],
		["03000-abc123.e2b.example.com", 3000, "abc123"],
		["3000-abc123.e2b.example.com.", 3000, "abc123"],
		["3000-abc123.e2b.example.com.:443", 3000, "abc123"],
	])("routes %s", (host, port, sandboxId) => {
		expect(route(host)).toEqual({ port, sandboxId });
	});

	it.each([
		// wrong or missing domain
		["3000-abc123.evil.com", "host_not_served"],
		["3000-abc123.e2b.example.com.evil.com", "host_not_served"],
		["3000-abc123.note2b.example.com", "host_not_served"],
		["e2b.example.com", "host_not_served"],
		[".e2b.example.com", "invalid_host"],
		["localhost", "host_not_served"],
		["127.0.0.1", "host_not_served"],
		["", "invalid_host"],
		// ports
		["0-abc123.e2b.example.com", "invalid_port"],
		["70000-abc123.e2b.example.com", "invalid_port"],
		["65536-abc123.e2b.example.com", "invalid_port"],
		["abc-abc123.e2b.example.com", "invalid_port"],
		["000000-abc123.e2b.example.com", "invalid_port"],
		["+3000-abc123.e2b.example.com", "invalid_port"],
		["3e3-abc123.e2b.example.com", "invalid_port"],
		["-abc123.e2b.example.com", "invalid_port"],
		// sandbox IDs
		["3000-ABC123.e2b.example.com", "invalid_sandbox_id"],
		["3000-abç123.e2b.example.com", "invalid_sandbox_id"],
		["3000-abc\u0131.e2b.example.com", "invalid_sandbox_id"],
		["3000-\u0430bc.e2b.example.com", "invalid_sandbox_id"],
		["3000-abc_123.e2b.example.com", "invalid_sandbox_id"],
		// How a Unicode host arrives after IDNA conversion.
		["xn--3000-bc-bza.e2b.example.com", "invalid_sandbox_id"],
		[`3000-${"a".repeat(64)}.e2b.example.com`, "invalid_sandbox_id"],
		// empty labels and extra labels
		["3000.e2b.example.com", "invalid_host"],
		["3000-.e2b.example.com", "invalid_host"],
		["3000--x.e2b.example.com", "invalid_host"],
		["a.3000-abc123.e2b.example.com", "invalid_host"],
		["3000-abc123..e2b.example.com", "invalid_host"],
	])("refuses %s (%s)", (host, reason) => {
		expect(reasonFor(host)).toBe(reason);
	});

	it.each([
		["0-abc123.e2b.example.com", "abc123"],
		["99999-abc123.e2b.example.com", "abc123"],
		["http-abc123.e2b.example.com", "abc123"],
		["-abc123.e2b.example.com", "abc123"],
		["0-abc123-clientid.e2b.example.com", "abc123"],
		// Not a valid ID: the port is still the complaint, about no sandbox.
		["0-ABC123.e2b.example.com", undefined],
		["0-abc_123.e2b.example.com", undefined],
		[`0-${"a".repeat(64)}.e2b.example.com`, undefined],
	])("names the sandbox of %s in its invalid_port refusal when the ID is valid (%s)", (host, sandboxId) => {
		const error = refusal(host);
		expect(error.code).toBe("invalid_port");
		expect(error.sandboxId).toBe(sandboxId);
	});

	it("names the sandbox of the routing headers in an invalid_port refusal when the ID is valid", () => {
		const shared = "sandbox.e2b.example.com";
		expect(refusal(shared, { "E2b-Sandbox-Id": " abc ", "E2b-Sandbox-Port": "0" }).sandboxId).toBe("abc");
		expect(refusal(shared, { "E2b-Sandbox-Id": "ABC", "E2b-Sandbox-Port": "0" }).sandboxId).toBeUndefined();
	});

	it("ignores the client's routing headers on a per-sandbox host", () => {
		expect(route("3000-abc123.e2b.example.com", { "E2b-Sandbox-Id": "victim", "E2b-Sandbox-Port": "22" })).toEqual({
			port: 3000,
			sandboxId: "abc123",
		});
	});

	it("routes by header on the shared host sandbox.<domain>", () => {
		expect(route("sandbox.e2b.example.com", { "E2b-Sandbox-Id": "abc123", "E2b-Sandbox-Port": "8080" })).toEqual({
			port: 8080,
			sandboxId: "abc123",
		});
	});

	it("names the shared host's domain, which the node's Host is built from, and no domain on a sandbox's own host", () => {
		const headers = new Headers({ "E2b-Sandbox-Id": "abc123", "E2b-Sandbox-Port": "8080" });
		expect(routeHost("sandbox.eu.e2b.example.com", headers, production)).toMatchObject({
			sharedHostDomain: "eu.e2b.example.com",
		});
		expect(routeHost("3000-abc123.e2b.example.com", headers, production)).not.toHaveProperty("sharedHostDomain");
	});

	it.each([
		[{}, "missing_routing_headers"],
		[{ "E2b-Sandbox-Id": "abc123" }, "missing_routing_headers"],
		[{ "E2b-Sandbox-Port": "3000" }, "missing_routing_headers"],
		[{ "E2b-Sandbox-Id": "ABC", "E2b-Sandbox-Port": "3000" }, "invalid_sandbox_id"],
		[{ "E2b-Sandbox-Id": "abc", "E2b-Sandbox-Port": "0" }, "invalid_port"],
		[{ "E2b-Sandbox-Id": "abc", "E2b-Sandbox-Port": "http" }, "invalid_port"],
		[{ "E2b-Sandbox-Id": "", "E2b-Sandbox-Port": "3000" }, "invalid_sandbox_id"],
	])("refuses bad routing headers on the shared host: %j", (headers, reason) => {
		expect(reasonFor("sandbox.e2b.example.com", headers)).toBe(reason);
	});

	it("routes by header on localhost and IP literals only in development", () => {
		const headers = { "E2b-Sandbox-Id": "abc123", "E2b-Sandbox-Port": "3000" };
		for (const host of ["localhost:8787", "127.0.0.1:8787", "[::1]:8787"]) {
			expect(route(host, headers, development)).toEqual({ port: 3000, sandboxId: "abc123" });
			expect(reasonFor(host, headers, production)).toBe("host_not_served");
		}
	});

	it.each(["[::1]junk", "[::1]:abc", "[::1]junk:80", "999.1.1.1", "256.0.0.1:8787"])(
		"does not take %j for an IP literal, even in development",
		(host) => {
			const headers = { "E2b-Sandbox-Id": "abc123", "E2b-Sandbox-Port": "3000" };
			expect(reasonFor(host, headers, development)).toBe("host_not_served");
		},
	);

	it("routes the local form of a sandbox host", () => {
		expect(route("3000-abc123.localhost:8787", {}, development)).toEqual({ port: 3000, sandboxId: "abc123" });
	});
});

describe("hosts the isolate has routed", () => {
	it("answers a host seen before from memory, for the same settings", () => {
		const first = routeHost("3000-memo1.e2b.example.com", new Headers(), production);
		expect(routeHost("3000-memo1.e2b.example.com", new Headers(), production)).toBe(first);
		// Shared by every request with the host: no request can change it for the others.
		expect(Object.isFrozen(first)).toBe(true);
		if (first.kind === "sandbox") expect(Object.isFrozen(first.target)).toBe(true);
		const other = parseConfig({
			SANDBOX_DOMAIN: "e2b.example.com",
			CONTROL_PLANE_URL: "https://api.example.com",
			API_SECRET: "s",
			ENVIRONMENT: "production",
		});
		expect(routeHost("3000-memo1.e2b.example.com", new Headers(), other)).not.toBe(first);
	});

	it("reads a shared host's headers on every request: what they name is the request's, not the host's", () => {
		const host = "sandbox.e2b.example.com";
		const a = route(host, { "e2b-sandbox-id": "memoa", "e2b-sandbox-port": "3000" });
		const b = route(host, { "e2b-sandbox-id": "memob", "e2b-sandbox-port": "8080" });
		expect([a, b]).toEqual([
			{ sandboxId: "memoa", port: 3000 },
			{ sandboxId: "memob", port: 8080 },
		]);
		expect(refusal(host).code).toBe("missing_routing_headers");
		const local = { "e2b-sandbox-id": "memoc", "e2b-sandbox-port": "49983" };
		expect(route("localhost:8787", local, development)).toEqual({ sandboxId: "memoc", port: 49983 });
		expect(route("localhost:8787", { ...local, "e2b-sandbox-id": "memod" }, development).sandboxId).toBe("memod");
	});

	it("keeps no refusal: a bad host is refused every time it comes", () => {
		for (let i = 0; i < 2; i++) expect(refusal("0-memoe.e2b.example.com").code).toBe("invalid_port");
	});
});
