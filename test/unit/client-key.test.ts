import { describe, expect, it } from "vitest";
import { clientBudgetKey } from "../../src/catalog/client-key.ts";

describe("clientBudgetKey", () => {
	it("is the address for IPv4", () => {
		expect(clientBudgetKey("203.0.113.8")).toBe("203.0.113.8");
	});

	it.each([
		["2001:db8:1:2::1", "2001:db8:1:2::/64"],
		["2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"],
		["2001:0DB8:0001:0002:0:0:0:9", "2001:db8:1:2::/64"],
		["2001:db8::", "2001:db8:0:0::/64"],
		["::1", "0:0:0:0::/64"],
		["2001:db8:1:2::1%eth0", "2001:db8:1:2::/64"],
		["2001:db8:1:2:0:0:192.0.2.1", "2001:db8:1:2::/64"],
	])("is the /64 for IPv6: %s -> %s", (address, key) => {
		expect(clientBudgetKey(address)).toBe(key);
	});

	it("gives every address of one /64 the same key, and the next /64 another", () => {
		const keys = new Set(
			Array.from({ length: 512 }, (_, i) => clientBudgetKey(`2001:db8:1:2:${i.toString(16)}::${i}`)),
		);
		expect(keys).toEqual(new Set(["2001:db8:1:2::/64"]));
		expect(clientBudgetKey("2001:db8:1:3::1")).not.toBe(clientBudgetKey("2001:db8:1:2::1"));
	});

	it("takes an IPv4-mapped address for the IPv4 client it is", () => {
		expect(clientBudgetKey("::ffff:203.0.113.8")).toBe("203.0.113.8");
		expect(clientBudgetKey("::ffff:cb00:7108")).toBe("203.0.113.8");
	});

	it.each(["unknown", "1:2:3", "1::2::3", "12345::", "g::1"])(
		"leaves %j, which is no IPv6 address, as it is",
		(text) => {
			expect(clientBudgetKey(text)).toBe(text);
		},
	);
});
