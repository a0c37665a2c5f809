import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { checkDoc, docBlocks, paramsFromDoc, quotes } from "../../scripts/simulate/doc-check.ts";
import { type Model, runModel } from "../../scripts/simulate/model.ts";
import { defaultParams, parseValue } from "../../scripts/simulate/params.ts";
import { wakingSandbox } from "../../scripts/simulate/scenarios.ts";

// docs/capacity.md quotes the capacity model's figures; `npm run simulate`
// computes them. This runs the simulation with the parameters the doc
// states (no Cloudflare, about two seconds) and fails if the two disagree
// in any number, so that neither can change without the other.

const doc = readFileSync(new URL("../../docs/capacity.md", import.meta.url), "utf8");
let model: Model;

beforeAll(() => {
	model = runModel(paramsFromDoc(doc));
});

describe("docs/capacity.md", () => {
	it("states the parameters that `npm run simulate` uses by default", () => {
		expect(paramsFromDoc(doc)).toEqual(defaultParams);
	});

	it("holds every table of the model as the simulation renders it, and quotes its figures as computed", () => {
		expect(checkDoc(doc, model)).toEqual([]);
		expect([...docBlocks(doc).keys()].sort()).toEqual([...model.blocks.keys()].sort());
		// The text quotes the headline figures, not just the tables.
		expect(quotes(doc).length).toBeGreaterThan(30);
	});
});

describe("the model", () => {
	const figure = (id: string) => parseValue(id, model.figures.get(id)?.text ?? "");

	it("serves no route longer than ROUTE_CACHE_TTL_MS after the answer, plus one Cache API match, whatever the split", () => {
		const { ttlMs, cacheMs } = defaultParams;
		const splits = [...model.figures.keys()].filter((id) => /^L\d+a$/.test(id));
		const before = splits.at(-1) as string;
		for (const id of ["H15", ...splits.filter((id) => id !== before)]) {
			expect(figure(id), id).toBeGreaterThanOrEqual(ttlMs);
			expect(figure(id), id).toBeLessThanOrEqual(ttlMs + cacheMs);
		}
		// Before the bound, an isolate kept a whole TTL from a location entry of any age.
		expect(figure(before)).toBeGreaterThan(ttlMs + cacheMs);
	});

	it("ends a wake as soon as a push before the answer reaches the waiters", () => {
		const answered = wakingSandbox(defaultParams).isolate.wake;
		const pushed = wakingSandbox({ ...defaultParams, pushLeadMs: 500 }).isolate.wake;
		expect(answered.rpcs).toBe(1);
		expect(pushed.rpcs).toBe(1);
		expect(answered.durationMs - pushed.durationMs).toBeCloseTo(500, 6);
	});
});

describe("the comparison", () => {
	it("fails when any figure in a table is changed", () => {
		for (const { id, text } of model.figures.values()) {
			const row = new RegExp(`^\\|\\s*${id.replace(/[a-z]$/, "")}\\s*\\|.*$`, "m").exec(doc);
			expect(row, `${id} has a table row`).not.toBeNull();
			const line = row?.[0] ?? "";
			const at = line.lastIndexOf(text);
			expect(at, `${id}'s row holds ${text}`).toBeGreaterThan(-1);
			const changed = doc.replace(line, line.slice(0, at) + bump(text) + line.slice(at + text.length));
			expect(checkDoc(changed, model), `after changing ${id}`).not.toEqual([]);
		}
	});

	it("fails when a figure quoted in the text is changed", () => {
		for (const { id, number, at } of quotes(doc)) {
			expect(number, `[${id}] quotes a number`).toBeDefined();
			const start = at ?? 0;
			const text = number ?? "";
			const changed = doc.slice(0, start) + bump(text) + doc.slice(start + text.length);
			expect(checkDoc(changed, model), `after changing the ${text} of [${id}]`).not.toEqual([]);
		}
	});

	it("fails when a parameter is changed, or a quote names no figure", () => {
		const changed = doc.replace("| `--locations` | 50 |", "| `--locations` | 51 |");
		expect(changed).not.toEqual(doc);
		expect(paramsFromDoc(changed)).not.toEqual(defaultParams);
		expect(checkDoc(`${doc}\nAbout 12 calls [Z9].\n`, model)).toEqual([
			`line ${doc.split("\n").length + 1}: [Z9] is no figure of the model`,
		]);
	});
});

/** The number with its last digit changed, as an edit of the doc would. */
function bump(text: string): string {
	const at = text.search(/\d(?=\D*$)/);
	const digit = Number(text[at]);
	return text.slice(0, at) + String((digit + 1) % 10) + text.slice(at + 1);
}
