import { describe, expect, it } from "vitest";
import { translate } from "../../bridge/catalog-entry.ts";
import { parseCommandLine } from "../../bridge/config.ts";
import { maxRouteTtlSeconds } from "../../src/rules/catalog-limits.ts";

// E2B's SandboxInfo has carried the traffic keepalive policy in two shapes.
describe("the bridge's translation of a catalog entry's keepalive policy", () => {
	const base = { team_id: "2b4f0c1e-5d6a-4e2b-9c1d-0a1b2c3d4e5f", orchestrator_ip: "10.0.0.5", execution_id: "exec-1" };
	const itemOf = (info: object) => {
		const translation = translate("sbx1", JSON.stringify(info), 60_000, 3600);
		if (!translation.ok) throw new Error(translation.reason);
		return translation.item;
	};

	it("reads traffic_keepalive", () => {
		expect(itemOf({ ...base, traffic_keepalive: true })).toMatchObject({
			team_id: base.team_id,
			traffic_keepalive: true,
		});
	});

	it("reads keepalive.traffic.enabled", () => {
		expect(itemOf({ ...base, keepalive: { traffic: { enabled: true } } }).traffic_keepalive).toBe(true);
		expect(itemOf({ ...base, keepalive: { traffic: { enabled: false } } }).traffic_keepalive).toBe(false);
	});

	it("leaves it out when neither says", () => {
		expect(itemOf({ ...base, keepalive: {} })).not.toHaveProperty("traffic_keepalive");
		expect(itemOf({ ...base, keepalive: { traffic: { enabled: "yes" } } })).not.toHaveProperty("traffic_keepalive");
	});
});

// The bridge sends only what the catalog API takes (src/rules/catalog-limits.ts).
describe("the bridge's limits, which are the catalog API's", () => {
	const base = { orchestrator_ip: "10.0.0.5", execution_id: "exec-1" };
	const itemOf = (info: object, pttlMs: number) => {
		const translation = translate("sbx1", JSON.stringify(info), pttlMs, 3600);
		if (!translation.ok) throw new Error(translation.reason);
		return translation.item;
	};

	it("caps a route's TTL at the longest the catalog API takes, 366 days, and no shorter", () => {
		expect(maxRouteTtlSeconds).toBe(366 * 24 * 3600);
		// A key without a TTL lives the sandbox's length: 10,000 h is over the limit, 8,000 h within it.
		expect(itemOf({ ...base, sandbox_max_length_in_hours: 10_000 }, -1).ttl_seconds).toBe(maxRouteTtlSeconds);
		expect(itemOf({ ...base, sandbox_max_length_in_hours: 8_000 }, -1).ttl_seconds).toBe(8_000 * 3600);
		// A key's own TTL, rounded up to seconds, is capped the same.
		expect(itemOf(base, (maxRouteTtlSeconds + 60) * 1000).ttl_seconds).toBe(maxRouteTtlSeconds);
		expect(itemOf(base, 1500).ttl_seconds).toBe(2);
	});

	it("takes a --default-ttl up to that longest route, 8784h, and no longer", () => {
		const env = { CATALOG_SECRET: "bridge-entry-test-secret" };
		const ok = ["--redis", "redis://127.0.0.1:6379", "--edge", "https://edge.example.com"];
		const parsed = parseCommandLine([...ok, "--default-ttl", "8784h"], env);
		expect(parsed.help === false && parsed.config.defaultTtlSeconds).toBe(maxRouteTtlSeconds);
		// Past it, the bound of every time flag (also 366 days) refuses it first.
		expect(() => parseCommandLine([...ok, "--default-ttl", "8785h"], env)).toThrow("--default-ttl must be");
	});

	it("leaves out a sandbox_started_at the catalog API would refuse, rather than have the whole put refused", () => {
		expect(itemOf({ ...base, sandbox_started_at: "2026-05-01T10:00:00.123456789Z" }, 60_000)).toMatchObject({
			sandbox_started_at: "2026-05-01T10:00:00.123456789Z",
		});
		expect(itemOf({ ...base, sandbox_started_at: "2026-13-45T10:00:00Z" }, 60_000)).not.toHaveProperty(
			"sandbox_started_at",
		);
		expect(itemOf({ ...base, sandbox_started_at: "0001-01-01T00:00:00Z" }, 60_000)).not.toHaveProperty(
			"sandbox_started_at",
		);
	});

	it("refuses an entry whose execution_id the catalog API would refuse, and leaves out such optional texts", () => {
		expect(translate("sbx1", JSON.stringify({ ...base, execution_id: "a b" }), 60_000, 3600)).toEqual({
			ok: false,
			reason: 'execution_id "a b" is not 1 to 128 printable ASCII characters without spaces',
		});
		expect(itemOf({ ...base, team_id: "x".repeat(129), orchestrator_id: "node-1" }, 60_000)).toEqual({
			sandbox_id: "sbx1",
			orchestrator_ip: "10.0.0.5",
			execution_id: "exec-1",
			ttl_seconds: 60,
			orchestrator_id: "node-1",
		});
	});
});
