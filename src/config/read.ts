/**
 * Reading one setting by its entry in the table: the bounds, values and
 * default come from settings.ts, and every message names the setting. A
 * credential's value never appears in a message.
 */
import { type SettingName, settings } from "./settings.ts";
import { ConfigError } from "./types.ts";

/** The settings as they arrive from wrangler: every value may be absent or mistyped. */
export type RawSettings = Partial<Record<SettingName, unknown>>;

type Table = typeof settings;
/** The names of the settings whose entry is a `T`. */
export type NameOf<T> = { [K in SettingName]: Table[K] extends T ? K : never }[SettingName];
/** The values an enum setting takes. */
type ValueOf<K extends SettingName> = Table[K] extends { values: readonly (infer V)[] } ? V : never;

export function optionalString(raw: RawSettings, name: SettingName): string | undefined {
	const value = raw[name];
	if (value === undefined || value === null) return undefined;
	if (typeof value !== "string") throw new ConfigError(name, "must be a string");
	const trimmed = value.trim();
	return trimmed === "" ? undefined : trimmed;
}

export function requiredString(raw: RawSettings, name: SettingName): string {
	const value = optionalString(raw, name);
	if (value === undefined) throw new ConfigError(name, "is missing");
	return value;
}

/** A string setting's value, or its default. */
export function stringOrDefault(
	raw: RawSettings,
	name: NameOf<{ type: "string" | "origin template"; default: string }>,
): string {
	return optionalString(raw, name) ?? settings[name].default;
}

export function integer(raw: RawSettings, name: NameOf<{ type: "integer" }>): number {
	const { min, max, default: fallback }: { min: number; max: number; default: number } = settings[name];
	const value = optionalString(raw, name);
	if (value === undefined) return fallback;
	if (!/^\d+$/.test(value)) throw new ConfigError(name, "must be a whole number");
	const number = Number(value);
	if (number < min || number > max) throw new ConfigError(name, `must be between ${min} and ${max}`);
	return number;
}

export function fraction(raw: RawSettings, name: NameOf<{ type: "fraction" }>): number {
	const value = optionalString(raw, name);
	if (value === undefined) return settings[name].default;
	// Plain decimals only: no exponent, sign or percent, which would read as something else.
	if (!/^(?:\d+(?:\.\d*)?|\.\d+)$/.test(value)) throw new ConfigError(name, "must be a decimal from 0 to 1");
	const number = Number(value);
	if (number > 1) throw new ConfigError(name, "must be a decimal from 0 to 1");
	return number;
}

export function flag(raw: RawSettings, name: NameOf<{ type: "flag" }>): boolean {
	const value = optionalString(raw, name);
	if (value === undefined) return settings[name].default;
	if (value === "true") return true;
	if (value === "false") return false;
	throw new ConfigError(name, `must be ${describeChoices(["true", "false"])}`);
}

/** An enum setting's value, or its default. */
export function choice<K extends NameOf<{ type: "enum"; default: string }>>(raw: RawSettings, name: K): ValueOf<K> {
	const entry: { values: readonly string[]; default: string } = settings[name];
	return oneOf(name, entry.values, optionalString(raw, name) ?? entry.default) as ValueOf<K>;
}

/** An enum setting's value, or undefined when it is unset (it has no default). */
export function optionalChoice<K extends NameOf<{ type: "enum" }>>(raw: RawSettings, name: K): ValueOf<K> | undefined {
	const value = optionalString(raw, name);
	if (value === undefined) return undefined;
	return oneOf(name, settings[name].values, value) as ValueOf<K>;
}

function oneOf(name: SettingName, values: readonly string[], value: string): string {
	if (!values.includes(value)) throw new ConfigError(name, `must be ${describeChoices(values)}`);
	return value;
}

/** `"a" or "b"`, `"a", "b" or "c"`; a longer list as `one of a, b, c, d`. */
function describeChoices(values: readonly string[]): string {
	if (values.length > 3) return `one of ${values.join(", ")}`;
	const quoted = values.map((value) => `"${value}"`);
	return `${quoted.slice(0, -1).join(", ")} or ${quoted.at(-1)}`;
}

/** A credential's value, or undefined when unset; checked without echoing any part of it. */
export function credential(raw: RawSettings, name: NameOf<{ type: "credential" }>): string | undefined {
	const value = raw[name];
	if (value === undefined || value === null || value === "") return undefined;
	if (typeof value !== "string") throw new ConfigError(name, "must be a string");
	// Header values cannot hold control characters or surrounding spaces.
	if (value !== value.trim() || hasControlCharacter(value)) {
		throw new ConfigError(name, "contains whitespace or control characters");
	}
	return value;
}

/** A credential that must be given; the message says where it goes (a var, or a secret). */
export function requiredCredential(raw: RawSettings, name: NameOf<{ type: "credential" }>): string {
	const value = credential(raw, name);
	if (value === undefined) {
		const how = settings[name].kind === "secret" ? `set it with \`wrangler secret put ${name}\`` : "set it in vars";
		throw new ConfigError(name, `is missing; ${how}`);
	}
	return value;
}

export function hasControlCharacter(text: string): boolean {
	for (let i = 0; i < text.length; i++) {
		const code = text.charCodeAt(i);
		if (code < 0x20 || code === 0x7f) return true;
	}
	return false;
}
