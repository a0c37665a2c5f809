import { describe, expect, it } from "vitest";
import { translate } from "../../bridge/catalog-entry.ts";

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
