// The edge's capacity model (docs/capacity.md): replays a hot sandbox, its
// wake and a resume storm against a model of the edge's caches, objects and
// the control plane, and prints the figures the doc quotes.
//
//   npm run simulate                      the doc's figures, as tables
//   npm run simulate -- --locations 300   the same with other parameters (see --help)
//   npm run simulate -- --markdown        the doc's marked blocks, to paste into it
//   npm run simulate -- --check           compare with docs/capacity.md; exit 1 if they differ
import { readFileSync } from "node:fs";
import { checkDoc } from "./simulate/doc-check.ts";
import { runModel } from "./simulate/model.ts";
import { defaultParams, definitions, envName, type Params, paramsFrom } from "./simulate/params.ts";

const docPath = new URL("../docs/capacity.md", import.meta.url);
const args = process.argv.slice(2);
const modes = new Set(args.filter((arg) => ["--markdown", "--check", "--help"].includes(arg)));
const flags = args.filter((arg) => !modes.has(arg));

if (modes.has("--help")) {
	console.log("Usage: npm run simulate -- [--markdown | --check] [--<parameter> <value>]...\n");
	for (const d of definitions) console.log(`  --${d.flag} (${envName(d.flag)}), default ${d.value}: ${d.meaning}`);
	process.exit(0);
}

let params: Params;
try {
	params = paramsFrom(flags, process.env);
} catch (error) {
	console.error(error instanceof Error ? error.message : String(error));
	process.exit(2);
}

const started = performance.now();
const model = runModel(params);
const elapsed = performance.now() - started;

if (modes.has("--check")) {
	const problems = checkDoc(readFileSync(docPath, "utf8"), model);
	const changed = definitions.filter((d) => params[d.key] !== defaultParams[d.key]).map((d) => `--${d.flag}`);
	if (changed.length > 0) problems.unshift(`the doc quotes the defaults; these were changed: ${changed.join(", ")}`);
	for (const problem of problems) console.error(problem);
	console.log(problems.length === 0 ? "docs/capacity.md agrees with the model" : `${problems.length} differences`);
	process.exit(problems.length === 0 ? 0 : 1);
}

for (const [name, block] of model.blocks) {
	console.log(
		modes.has("--markdown")
			? `<!-- simulate:${name} -->\n${block}\n<!-- /simulate:${name} -->\n`
			: `${name}\n${block}\n`,
	);
}
console.log(`(simulated in ${(elapsed / 1000).toFixed(1)} s)`);
