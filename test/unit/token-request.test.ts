import { describe, expect, it } from "vitest";
import { parseTokenAnswer } from "../../src/control-plane/token-request.ts";

const now = 1_000_000;

describe("parseTokenAnswer", () => {
	it("takes RFC 6749's answer, and replaces the token a minute before it expires", () => {
		const outcome = parseTokenAnswer(
			JSON.stringify({ access_token: "eyJ.abc.def", token_type: "Bearer", expires_in: 3600, scope: "x" }),
			now,
		);
		expect(outcome).toEqual({
			ok: true,
			token: { accessToken: "eyJ.abc.def", obtainedAt: now, refreshAt: now + 3_540_000, expiresAt: now + 3_600_000 },
		});
	});

	it("replaces a short-lived token after three quarters of its life", () => {
		const outcome = parseTokenAnswer(JSON.stringify({ access_token: "t", token_type: "bearer", expires_in: 4 }), now);
		expect(outcome.ok && outcome.token.refreshAt).toBe(now + 3_000);
	});

	it("trusts a token without expires_in for five minutes, less the margin", () => {
		const outcome = parseTokenAnswer(JSON.stringify({ access_token: "t", token_type: "Bearer" }), now);
		expect(outcome.ok && outcome.token.refreshAt).toBe(now + 240_000);
	});

	it.each([
		["not JSON", "<html>502 Bad Gateway</html>", "not JSON"],
		["not an object", "[1]", "no access_token"],
		["null", "null", "not an object"],
		["no token", JSON.stringify({ token_type: "Bearer", expires_in: 60 }), "no access_token"],
		["an empty token", JSON.stringify({ access_token: "", token_type: "Bearer" }), "no access_token"],
		[
			"a token a header cannot carry",
			JSON.stringify({ access_token: "a b\r\nx-injected: 1", token_type: "Bearer" }),
			"not a bearer token",
		],
		["another token type", JSON.stringify({ access_token: "t", token_type: "mac" }), "not Bearer"],
		["no token type", JSON.stringify({ access_token: "t" }), "not Bearer"],
		["a negative lifetime", JSON.stringify({ access_token: "t", token_type: "Bearer", expires_in: -5 }), "expires_in"],
		[
			"a lifetime in words",
			JSON.stringify({ access_token: "t", token_type: "Bearer", expires_in: "soon" }),
			"expires_in",
		],
	])("refuses %s, naming the problem without the answer's content", (_, text, reason) => {
		const outcome = parseTokenAnswer(text, now);
		expect(outcome.ok).toBe(false);
		if (!outcome.ok) {
			expect(outcome.reason).toContain(reason);
			expect(outcome.reason).not.toContain("injected");
		}
	});
});
