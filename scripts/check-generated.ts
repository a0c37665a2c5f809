// Fails when the committed protobuf code differs from what buf would generate
// from proto/ now, so that a proto change cannot land without its code.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const committed = join(root, "src/gen");
const scratch = mkdtempSync(join(tmpdir(), "buf-gen-"));

function filesUnder(dir: string): string[] {
	return readdirSync(dir).flatMap((name) => {
		const path = join(dir, name);
		return statSync(path).isDirectory() ? filesUnder(path) : [path];
	});
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
