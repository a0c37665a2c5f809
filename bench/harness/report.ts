import { medianInterval, type Spread } from "./stats.ts";

/** One line of the suite's table. */
export interface Row {
	case: string;
	measure: string;
	/** The median over rounds (or the one figure). */
	value: string;
	/** Lowest and highest round, when there are rounds. */
	spread: string;
	target: string;
	/** "met", "MISSED by ...", or "" when the figure is only reported. */
	verdict: string;
}

export type Format = (value: number) => string;

export const fixed =
	(digits: number, unit = ""): Format =>
	(value) =>
		`${value.toFixed(digits)}${unit}`;

export const ratio: Format = (value) => `${value.toFixed(2)}×`;
export const ms: Format = (value) => `${value.toFixed(1)} ms`;
export const signedMs: Format = (value) =>
	`${value >= 0 ? "+" : ""}${value.toFixed(value > -10 && value < 10 ? 2 : 0)} ms`;
export const mib: Format = (value) => `${(value / 1024 ** 2).toFixed(1)} MiB`;

export function spreadText(s: Spread, format: Format): string {
	return s.rounds.length > 1 ? `${format(s.min)} … ${format(s.max)}` : "";
}

/** A row for a figure over rounds. `check` says whether the median meets the target, and by how much it misses. */
export function row(
	caseName: string,
	measure: string,
	s: Spread,
	format: Format,
	target = "",
	check?: (value: number) => { met: boolean; by: string },
): Row {
	let verdict = "";
	if (check !== undefined && Number.isFinite(s.median)) {
		const outcome = check(s.median);
		verdict = outcome.met ? "met" : `MISSED by ${outcome.by}`;
		// Decided when every round falls on one side of the target, or the
		// median's whole 90 % interval does: otherwise the rounds straddle
		// it, and another run could give the other verdict.
		const everyRound = check(s.min).met === check(s.max).met;
		const interval = everyRound ? undefined : medianInterval(s.rounds);
		if (!everyRound && (interval === undefined || check(interval.low).met !== check(interval.high).met)) {
			const range = interval === undefined ? "too few rounds" : `${format(interval.low)} … ${format(interval.high)}`;
			verdict += `, not decided (90 % interval of the median: ${range})`;
		}
	}
	return { case: caseName, measure, value: format(s.median), spread: spreadText(s, format), target, verdict };
}

export function infoRow(caseName: string, measure: string, value: string, target = "", verdict = ""): Row {
	return { case: caseName, measure, value, spread: "", target, verdict };
}

/** At least `floor`: a miss is said as the shortfall. */
export const atLeast =
	(floor: number, format: Format = ratio) =>
	(value: number) => ({ met: value >= floor, by: format(floor - value).replace("×", "") });

/** At most `ceiling`: a miss is said as the excess. */
export const atMost =
	(ceiling: number, format: Format = ratio) =>
	(value: number) => ({ met: value <= ceiling, by: format(value - ceiling).replace("×", "") });

/**
 * The largest move of a baseline's figure from one round to the next, as a
 * share of the earlier round's: the ratios divide each round by its own
 * baseline, which cancels drift slower than a round and nothing faster.
 */
export function largestStep(values: readonly number[]): number {
	let largest = 0;
	for (let i = 1; i < values.length; i++) {
		const before = values[i - 1] ?? Number.NaN;
		largest = Math.max(largest, Math.abs((values[i] ?? Number.NaN) - before) / before);
	}
	return largest;
}

/**
 * A row that flags a run whose baseline moved more than `limit` (a share)
 * from one of `values` to the next: rounds, or the turns within a round.
 */
export function driftRow(caseName: string, measure: string, step: number, limit: number): Row {
	const percent = (share: number) => `${(share * 100).toFixed(0)} %`;
	return infoRow(
		caseName,
		measure,
		percent(step),
		`≤ ${percent(limit)}`,
		step <= limit ? "steady" : "DRIFTED: the ratios of this run are not to be trusted",
	);
}

/** The rows as a fixed-width text table, the way `npm run bench` prints it. */
export function renderTable(rows: readonly Row[]): string {
	const columns: (keyof Row)[] = ["case", "measure", "value", "spread", "target", "verdict"];
	const titles: Record<keyof Row, string> = {
		case: "case",
		measure: "measure",
		value: "median",
		spread: "spread over rounds",
		target: "target",
		verdict: "verdict",
	};
	const widths = columns.map((column) => Math.max(titles[column].length, ...rows.map((r) => r[column].length)));
	const line = (cells: string[]) =>
		cells
			.map((cell, i) => cell.padEnd(widths[i] ?? 0))
			.join("  ")
			.trimEnd();
	const out = [line(columns.map((c) => titles[c])), line(widths.map((w) => "-".repeat(w)))];
	let previous = "";
	for (const r of rows) {
		out.push(line(columns.map((c) => (c === "case" && r.case === previous ? "" : r[c]))));
		previous = r.case;
	}
	return out.join("\n");
}

/** The same rows as a Markdown table, for BENCHMARKS.md. */
export function renderMarkdown(rows: readonly Row[]): string {
	const out = ["| case | measure | median | spread over rounds | target | verdict |", "|---|---|---|---|---|---|"];
	for (const r of rows) {
		out.push(`| ${r.case} | ${r.measure} | ${r.value} | ${r.spread} | ${r.target} | ${r.verdict} |`);
	}
	return out.join("\n");
}
