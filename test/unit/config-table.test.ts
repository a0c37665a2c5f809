import { describe, expect, it } from "vitest";
import { bindings } from "../../src/config/bindings.ts";
import type { Setting } from "../../src/config/schema.ts";
import { type SettingName, settings } from "../../src/config/settings.ts";
import { parseConfig, type RawSettings } from "../../src/config.ts";
import { configErrorFor } from "./config-refusal.ts";

// The settings' table (src/config/settings.ts) is what docs/configuration.md
// shows: these check that the parser does what each entry says. That the
// file shows every entry is scripts/check-generated.ts's to check.

const entries = Object.entries(settings) as [SettingName, Setting][];
const names = entries.map(([name]) => name);

const apiSecretMode: RawSettings = {
	SANDBOX_DOMAIN: "e2b.example.com",
	CONTROL_PLANE_URL: "https://api.example.com",
	API_SECRET: "api-secret-value-1234",
};
const oauth2Mode: RawSettings = {
	...apiSecretMode,
	CONTROL_PLANE_AUTH: "oauth2",
	OAUTH_TOKEN_URL: "https://auth.example.com/oauth2/token",
	OAUTH_CLIENT_ID: "edge-client",
	OAUTH_CLIENT_SECRET: "client-secret-value-5678",
};

/** The settings a setting is read with: the OAuth2 ones only in oauth2 mode. */
function baseFor(name: SettingName): RawSettings {
	return name.startsWith("OAUTH_") ? oauth2Mode : apiSecretMode;
}

/** The names parseConfig reads from `raw`. */
function namesRead(raw: RawSettings): Set<string> {
	const read = new Set<string>();
	const recorder = new Proxy(raw, {
		get(target, name, receiver) {
			if (typeof name === "string") read.add(name);
			return Reflect.get(target, name, receiver);
		},
	});
	parseConfig(recorder);
	return read;
}

describe("the settings' table", () => {
	it("is every name the parser reads, and the parser reads every one (each auth mode its own)", () => {
		const catalog = { CATALOG_SECRET: "catalog-secret-value-90ab" };
		const apiSecret = namesRead({ ...apiSecretMode, ...catalog });
		const oauth2 = namesRead({ ...oauth2Mode, ...catalog });
		expect([...new Set([...apiSecret, ...oauth2])].sort()).toEqual([...names].sort());
		expect([...apiSecret].filter((name) => name.startsWith("OAUTH_"))).toEqual([]);
		expect(oauth2).not.toContain("API_SECRET");
	});

	it.each(entries)("%s: refused when missing exactly when the table says it is required", (name, setting) => {
		const base = setting.required === "oauth2" ? oauth2Mode : baseFor(name);
		const { [name]: _, ...without } = base;
		if (setting.required === undefined) {
			expect(() => parseConfig(without)).not.toThrow();
		} else {
			const error = configErrorFor(without);
			expect(error.setting).toBe(name);
			expect(error.message).toMatch(new RegExp(`^Invalid configuration: ${name} is missing`));
		}
	});

	it.each(entries.filter(([, setting]) => "default" in setting))(
		"%s: its default is what unset means",
		(name, setting) => {
			const base = baseFor(name);
			const fallback = (setting as { default: string | number | boolean }).default;
			expect(parseConfig({ ...base, [name]: String(fallback) })).toEqual(parseConfig(base));
		},
	);

	it.each(
		entries.flatMap(([name, setting]) =>
			setting.type === "integer" ? [[name, setting.min, setting.max] as const] : [],
		),
	)("%s takes %i to %i and nothing outside", (name, min, max) => {
		const base = baseFor(name);
		for (const value of [min, max]) expect(() => parseConfig({ ...base, [name]: String(value) })).not.toThrow();
		for (const value of [min - 1, max + 1].filter((value) => value >= 0)) {
			const error = configErrorFor({ ...base, [name]: String(value) });
			expect(error.message).toBe(`Invalid configuration: ${name} must be between ${min} and ${max}`);
		}
	});

	it.each(entries.flatMap(([name, setting]) => (setting.type === "enum" ? [[name, setting.values] as const] : [])))(
		"%s takes each of its values and nothing else",
		(name, values) => {
			const base = name === "CONTROL_PLANE_AUTH" ? oauth2Mode : baseFor(name);
			for (const value of values) expect(() => parseConfig({ ...base, [name]: value })).not.toThrow();
			expect(configErrorFor({ ...base, [name]: `${values[0]}x` }).setting).toBe(name);
		},
	);

	it.each(entries.filter(([, setting]) => setting.type === "flag"))("%s takes true and false", (name) => {
		expect(() => parseConfig({ ...apiSecretMode, [name]: "true" })).not.toThrow();
		expect(() => parseConfig({ ...apiSecretMode, [name]: "false" })).not.toThrow();
		expect(configErrorFor({ ...apiSecretMode, [name]: "yes" }).message).toBe(
			`Invalid configuration: ${name} must be "true" or "false"`,
		);
	});

	it("has texts that fit a Markdown table's row", () => {
		for (const [name, entry] of [...Object.entries(settings), ...Object.entries(bindings)]) {
			expect(entry.doc, name).not.toMatch(/[\n|]/);
			expect(entry.doc.trim(), name).not.toBe("");
		}
		// A setting and a binding never share a name: both are keys of `env`.
		for (const name of Object.keys(bindings)) expect(names).not.toContain(name);
	});
});
