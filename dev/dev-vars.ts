// Reads .dev.vars, the file wrangler itself reads for local secrets, so the
// control plane and the Worker agree on API_SECRET.

import { copyFileSync, existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseEnv } from "node:util";

export interface DevVarsResult {
	vars: NodeJS.Dict<string>;
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
	// Node's dotenv parser, as wrangler's dotenv reads the file; a byte-order mark is no part of the first name.
	return { vars: parseEnv(readFileSync(path, "utf8").replace(/^\uFEFF/, "")), path, created };
}
