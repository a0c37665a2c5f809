// Reads .dev.vars, the file wrangler itself reads for local secrets, so the
// control plane and the Worker agree on API_SECRET.

import { copyFileSync, existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** dotenv-style KEY=VALUE lines; # comments, blank lines, `export ` and matching quotes allowed. */
export function parseDevVars(text: string): Record<string, string> {
	const vars: Record<string, string> = {};
	for (const rawLine of text.split(/\r?\n/)) {
		const line = rawLine.trim();
		if (line === "" || line.startsWith("#")) continue;
		const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
		if (match === null) continue;
		const [, key = "", rawValue = ""] = match;
		let value = rawValue.trim();
		const quote = value[0];
		if ((quote === '"' || quote === "'") && value.length >= 2 && value.endsWith(quote)) {
			value = value.slice(1, -1);
		} else {
			value = value.replace(/\s+#.*$/, "");
		}
		vars[key] = value;
	}
	return vars;
}

export interface DevVarsResult {
	vars: Record<string, string>;
	path: string;
	/** True when .dev.vars was just created from .dev.vars.example. */
	created: boolean;
}

export class DevVarsError extends Error {
	constructor(message: string) {
		super(message);
		this.name = "DevVarsError";
	}
}

export function loadDevVars(repoRoot: URL): DevVarsResult {
	const path = fileURLToPath(new URL(".dev.vars", repoRoot));
	const example = fileURLToPath(new URL(".dev.vars.example", repoRoot));
	let created = false;
	if (!existsSync(path)) {
		if (!existsSync(example)) {
			throw new DevVarsError(`neither ${path} nor ${example} exists; create .dev.vars with API_SECRET=<secret>`);
		}
		copyFileSync(example, path);
		created = true;
	}
	return { vars: parseDevVars(readFileSync(path, "utf8")), path, created };
}
