// Fails when the committed protobuf code differs from what buf would generate
// from proto/ now, so that a proto change cannot land without its code; and
// when docs/configuration.md differs from what scripts/config-docs.ts would
// write from the settings' table, or leaves out a setting or binding.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { bindings } from "../src/config/bindings.ts";
import { settings } from "../src/config/settings.ts";
import { configDocsPath, renderConfigDocs } from "./config-docs.ts";

const root = new URL("..", import.meta.url).pathname;
const committed = join(root, "src/gen");
const scratch = mkdtempSync(join(tmpdir(), "buf-gen-"));

function filesUnder(dir: string): string[] {
	return readdirSync(dir).flatMap((name) => {
		const path = join(dir, name);
		return statSync(path).isDirectory() ? filesUnder(path) : [path];
	});
}

checkConfigDocs();

function checkConfigDocs(): void {
	const committed = existsSync(configDocsPath) ? readFileSync(configDocsPath, "utf8") : "";
	const names = [...Object.keys(settings), ...Object.keys(bindings)];
	const missing = names.filter((name) => !committed.includes(`| \`${name}\` |`));
	if (missing.length > 0 || committed !== renderConfigDocs()) {
		const which = missing.length > 0 ? ` (it leaves out ${missing.join(", ")})` : "";
		console.error(
			`docs/configuration.md is out of date with src/config/settings.ts, bindings.ts or wrangler.toml${which}. Run: npm run docs:config`,
		);
		process.exitCode = 1;
	} else {
		console.log(`docs/configuration.md matches the settings' table (${names.length} settings and bindings)`);
	}
}

try {
	const bin = join(root, "node_modules/.bin");
	execFileSync(join(bin, "buf"), ["generate", "--output", scratch], {
		cwd: root,
		stdio: "inherit",
		env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}` },
	});
	const fresh = join(scratch, "src/gen");
	const expected = new Map(filesUnder(fresh).map((path) => [relative(fresh, path), readFileSync(path, "utf8")]));
	const actual = new Map(filesUnder(committed).map((path) => [relative(committed, path), readFileSync(path, "utf8")]));
	const stale = [...new Set([...expected.keys(), ...actual.keys()])].filter(
		(file) => expected.get(file) !== actual.get(file),
	);
	if (stale.length > 0) {
		console.error(`src/gen is out of date with proto/ (${stale.join(", ")}). Run: npm run generate`);
		process.exitCode = 1;
	} else {
		console.log("src/gen matches proto/");
	}
} finally {
	rmSync(scratch, { recursive: true, force: true });
}
