/**
 * The shape of an entry of the settings' table (settings.ts). Nothing here
 * names a Worker type: scripts/config-docs.ts reads the table in Node.
 */

/** Where a setting is given: a wrangler var, or a secret (`wrangler secret put`; `.dev.vars` locally). */
export type SettingKind = "var" | "secret";

/**
 * When a setting that has no default must be given: always, or only in one
 * CONTROL_PLANE_AUTH mode.
 */
export type Requirement = "always" | "api_secret" | "oauth2";

interface Described {
	kind: SettingKind;
	/** What docs/configuration.md says it does: Markdown, one line, links relative to docs/. */
	doc: string;
	/** Set when a missing value is refused; the docs' default column says when. */
	required?: Requirement;
	/** What the docs' default column says when the setting is unset and has no default, e.g. "(unset: API off)". */
	unset?: string;
}

/** How a value is read and checked; parse.ts and read.ts hold the checks. */
export type SettingType =
	/** A whole number within its bounds, both included. */
	| { type: "integer"; min: number; max: number; default: number }
	/** A decimal from 0 to 1, both included: a share of something. */
	| { type: "fraction"; default: number }
	/** "true" or "false". */
	| { type: "flag"; default: boolean }
	/** One of a fixed list, exactly (case-sensitive). */
	| { type: "enum"; values: readonly string[]; default?: string }
	/** Free text, with the checks its parser makes. */
	| { type: "string"; default?: string }
	/** An absolute http:// or https:// URL. */
	| { type: "url" }
	/** Comma-separated DNS names. */
	| { type: "hostnames" }
	/** An origin (scheme, host, port) with `{ip}` or `{ip_dashed}` in it. */
	| { type: "origin template"; default: string }
	/** A DNS name with `{ip_dashed}` or `{ip}` in it. */
	| { type: "hostname template" }
	/** A value sent in a header or a form: checked without echoing any part of it. */
	| { type: "credential" };

export type Setting = Described & SettingType;

/** A wrangler binding the Worker uses when it is there: documented with the settings, never parsed. */
export interface Binding {
	/** Its table in wrangler.toml. */
	kind: "ratelimits" | "analytics_engine_datasets" | "vpc_networks";
	doc: string;
	/** What the docs' default column says when production does not bind it. */
	unset: string;
}

/** A docs text's pointer to a section: "see [text](link)". */
export function see(text: string, link: string): string {
	return `see [${text}](${link})`;
}
