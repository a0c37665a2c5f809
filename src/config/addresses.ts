/**
 * The settings that name places: the sandbox domains, the control plane's
 * and the token endpoint's URLs (https:// outside development, since every
 * call carries a credential), and the templates of a node's address.
 */
import { optionalString, type RawSettings, requiredString, stringOrDefault } from "./read.ts";
import type { SettingName } from "./settings.ts";
import { ConfigError, type Environment } from "./types.ts";

const hostnamePattern = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

export function parseDomains(raw: RawSettings): string[] {
	const domains = requiredString(raw, "SANDBOX_DOMAIN")
		.split(",")
		.map((domain) =>
			domain
				.trim()
				.toLowerCase()
				.replace(/^\.+|\.+$/g, ""),
		)
		.filter((domain) => domain !== "");
	if (domains.length === 0) throw new ConfigError("SANDBOX_DOMAIN", "lists no domain");
	for (const domain of domains) {
		if (!hostnamePattern.test(domain)) {
			throw new ConfigError("SANDBOX_DOMAIN", `has an invalid domain "${domain}"`);
		}
	}
	// Longest first, so that a host under both "example.com" and
	// "eu.example.com" is matched against the more specific domain.
	return [...new Set(domains)].sort((a, b) => b.length - a.length);
}

/** `value` as a URL, or the setting's error saying it is not one. */
function urlOf(name: SettingName, value: string, problem = "is not a valid URL"): URL {
	try {
		return new URL(value);
	} catch {
		throw new ConfigError(name, problem);
	}
}

export function parseControlPlaneUrl(raw: RawSettings, environment: Environment): string {
	const value = requiredString(raw, "CONTROL_PLANE_URL");
	const url = urlOf("CONTROL_PLANE_URL", value);
	if (url.protocol !== "http:" && url.protocol !== "https:") {
		throw new ConfigError("CONTROL_PLANE_URL", "must be an http:// or https:// URL");
	}
	// Every call carries API_SECRET or a token, which must not cross the network in clear.
	if (url.protocol === "http:" && environment !== "development") {
		throw new ConfigError("CONTROL_PLANE_URL", 'must be an https:// URL outside ENVIRONMENT "development"');
	}
	if (url.username || url.password) {
		throw new ConfigError("CONTROL_PLANE_URL", "must not carry credentials; use API_SECRET");
	}
	// The raw check catches a bare "?" or "#", which URL reports as empty.
	if (url.search || url.hash || /[?#]/.test(value)) {
		throw new ConfigError("CONTROL_PLANE_URL", "must not have a query or fragment");
	}
	return url.href.replace(/\/+$/, "");
}

export function parseTokenUrl(raw: RawSettings, environment: Environment): string {
	const value = requiredString(raw, "OAUTH_TOKEN_URL");
	const url = urlOf("OAUTH_TOKEN_URL", value);
	if (url.protocol !== "https:" && !(url.protocol === "http:" && environment === "development")) {
		throw new ConfigError("OAUTH_TOKEN_URL", 'must be an https:// URL (http:// only in ENVIRONMENT "development")');
	}
	if (url.username || url.password || url.hash) {
		throw new ConfigError("OAUTH_TOKEN_URL", "must not carry credentials or a fragment");
	}
	return url.href;
}

export function parseNodeOriginTemplate(raw: RawSettings): string {
	const template = stringOrDefault(raw, "NODE_ORIGIN_TEMPLATE");
	if (!template.includes("{ip}") && !template.includes("{ip_dashed}")) {
		throw new ConfigError("NODE_ORIGIN_TEMPLATE", "must contain {ip} or {ip_dashed}");
	}
	const sample = template.replaceAll("{ip}", "192.0.2.1").replaceAll("{ip_dashed}", "192-0-2-1");
	const url = urlOf("NODE_ORIGIN_TEMPLATE", sample, "does not give a valid URL");
	if (url.protocol !== "http:" && url.protocol !== "https:") {
		throw new ConfigError("NODE_ORIGIN_TEMPLATE", "must be an http:// or https:// origin");
	}
	if (url.pathname !== "/" || /[?#@]/.test(template) || url.username || url.password) {
		throw new ConfigError("NODE_ORIGIN_TEMPLATE", "must be an origin only: scheme, host and port");
	}
	return template.replace(/\/+$/, "");
}

export function parseNodeResolveOverride(raw: RawSettings): string | undefined {
	const template = optionalString(raw, "NODE_RESOLVE_OVERRIDE")?.toLowerCase();
	if (template === undefined) return undefined;
	if (!template.includes("{ip_dashed}") && !template.includes("{ip}")) {
		throw new ConfigError("NODE_RESOLVE_OVERRIDE", "must contain {ip_dashed} or {ip}");
	}
	// Cloudflare resolves it as a DNS name of the zone: no scheme, port or path, and never an IP.
	const sample = template.replaceAll("{ip_dashed}", "10-0-0-5").replaceAll("{ip}", "10.0.0.5");
	if (!hostnamePattern.test(sample) || !sample.includes(".") || /^[0-9.]+$/.test(sample)) {
		throw new ConfigError(
			"NODE_RESOLVE_OVERRIDE",
			"must be a hostname in the Worker's zone, such as n-{ip_dashed}.nodes.example.com (no scheme, port or path)",
		);
	}
	return template;
}
