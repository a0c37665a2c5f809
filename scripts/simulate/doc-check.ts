import type { Model } from "./model.ts";
import { definitions, type Params, parseValue } from "./params.ts";

/**
 * Ties docs/capacity.md to the model, so that neither can change alone:
 * - each table the model renders sits in the doc between
 *   `<!-- simulate:<name> -->` and `<!-- /simulate:<name> -->`, word for word;
 * - a number quoted in the text carries its figure's ID right after it, as
 *   in "about 184.6 calls/s [H4]" (at most four words between, the line
 *   may wrap), and must be that figure's value as the tables write it.
 * Returns what differs, one line each; nothing when the doc agrees.
 */
export function checkDoc(doc: string, model: Model): string[] {
	const problems: string[] = [];
	const blocks = docBlocks(doc);
	for (const [name, expected] of model.blocks) {
		const found = blocks.get(name);
		if (found === undefined) {
			problems.push(`the doc has no simulate:${name} block`);
			continue;
		}
		problems.push(...lineDifferences(name, normalise(expected), normalise(found)));
	}
	for (const name of blocks.keys()) {
		if (!model.blocks.has(name)) problems.push(`the doc's simulate:${name} block is not one the model renders`);
	}
	for (const quote of quotes(doc)) {
		const figure = model.figures.get(quote.id);
		if (figure === undefined) problems.push(`line ${quote.line}: [${quote.id}] is no figure of the model`);
		else if (quote.number === undefined) problems.push(`line ${quote.line}: [${quote.id}] follows no number`);
		else if (quote.number !== figure.text) {
			problems.push(`line ${quote.line}: [${quote.id}] quotes ${quote.number}; the model gives ${figure.text}`);
		}
	}
	return problems;
}

/** The parameters as the doc's parameter table gives them. Throws if one is missing or malformed. */
export function paramsFromDoc(doc: string): Params {
	const table = docBlocks(doc).get("parameters");
	if (table === undefined) throw new Error("the doc has no simulate:parameters block");
	const values = new Map<string, string>();
	for (const line of table.split("\n")) {
		const match = /^\|\s*`--([a-z-]+)`\s*\|\s*([^|]+?)\s*\|/.exec(line);
		if (match !== null) values.set(match[1] as string, match[2] as string);
	}
	const params: Partial<Params> = {};
	for (const definition of definitions) {
		const raw = values.get(definition.flag);
		if (raw === undefined) throw new Error(`the doc's parameter table has no --${definition.flag}`);
		params[definition.key] = parseValue(`--${definition.flag}`, raw);
	}
	return params as Params;
}

/** The doc's marked blocks, by name. */
export function docBlocks(doc: string): Map<string, string> {
	const blocks = new Map<string, string>();
	for (const match of doc.matchAll(blockPattern)) blocks.set(match[1] as string, match[2] as string);
	return blocks;
}

const blockPattern = /<!-- simulate:([a-z-]+) -->\n([\s\S]*?)\n<!-- \/simulate:\1 -->/g;

interface Quote {
	id: string;
	line: number;
	/** The number just before the reference, if there is one, and where it is in the doc. */
	number: string | undefined;
	at: number | undefined;
}

/** Every `[ID]` outside the marked blocks, with the number it quotes. */
export function quotes(doc: string): Quote[] {
	const outside = doc.replace(blockPattern, (block) => block.replace(/[^\n]/g, " "));
	const found: Quote[] = [];
	for (const match of outside.matchAll(/\[([A-Z]\d+[a-z]?)\](?!\()/g)) {
		const index = match.index ?? 0;
		// The number may end the previous line, where the text was wrapped.
		const lineStart = outside.lastIndexOf("\n", index - 1);
		const previousLineStart = lineStart <= 0 ? 0 : outside.lastIndexOf("\n", lineStart - 1) + 1;
		const before = outside.slice(previousLineStart, index).replaceAll("\n", " ");
		const quoted = /(\d[\d,]*(?:\.\d+)?)(?:\s+[^\s\d[\]|][^\s[\]|]*){0,4}\s*$/.exec(before);
		found.push({
			id: match[1] as string,
			line: outside.slice(0, index).split("\n").length,
			number: quoted?.[1],
			at: quoted === null ? undefined : previousLineStart + quoted.index,
		});
	}
	return found;
}

function normalise(text: string): string[] {
	return text
		.trim()
		.split("\n")
		.map((line) => line.trim().replace(/\s+/g, " "));
}

function lineDifferences(name: string, expected: string[], found: string[]): string[] {
	const problems: string[] = [];
	for (let i = 0; i < Math.max(expected.length, found.length); i++) {
		if (expected[i] !== found[i]) {
			problems.push(
				`simulate:${name}, line ${i + 1}:\n  the model: ${expected[i] ?? "(nothing)"}\n  the doc:   ${found[i] ?? "(nothing)"}`,
			);
		}
	}
	return problems;
}
