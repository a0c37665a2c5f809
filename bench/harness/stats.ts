/** The value at percentile p (0-100) of ascending `sorted`, by the nearest-rank rule. */
export function percentile(sorted: readonly number[], p: number): number {
	if (sorted.length === 0) return Number.NaN;
	const rank = Math.ceil((p / 100) * sorted.length);
	return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] ?? Number.NaN;
}

export function ascending(values: readonly number[]): number[] {
	return [...values].sort((a, b) => a - b);
}

export function median(values: readonly number[]): number {
	const sorted = ascending(values);
	const middle = Math.floor(sorted.length / 2);
	if (sorted.length === 0) return Number.NaN;
	return sorted.length % 2 === 1
		? (sorted[middle] ?? Number.NaN)
		: ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

/** A figure over rounds: its median, and the lowest and highest round. */
export interface Spread {
	median: number;
	min: number;
	max: number;
	rounds: number[];
}

export function spread(rounds: readonly number[]): Spread {
	return {
		median: median(rounds),
		min: Math.min(...rounds),
		max: Math.max(...rounds),
		rounds: [...rounds],
	};
}

export function sum(values: readonly number[]): number {
	return values.reduce((total, value) => total + value, 0);
}

/** Counts of each value, e.g. HTTP statuses. */
export function tally(values: readonly (number | string)[]): Record<string, number> {
	const counts: Record<string, number> = {};
	for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
	return counts;
}

export function mergeTallies(...tallies: Record<string, number>[]): Record<string, number> {
	const merged: Record<string, number> = {};
	for (const counts of tallies) {
		for (const [key, count] of Object.entries(counts)) merged[key] = (merged[key] ?? 0) + count;
	}
	return merged;
}

/**
 * A distribution-free interval for the median of the rounds' population:
 * the k-th lowest and k-th highest round, k the largest for which the
 * interval still holds the median with probability `confidence` (the
 * binomial sign test). Undefined when there are too few rounds for it (under
 * 5 at 90 %): a run that short decides nothing by itself.
 */
export function medianInterval(rounds: readonly number[], confidence = 0.9): { low: number; high: number } | undefined {
	const sorted = ascending(rounds);
	const n = sorted.length;
	// P(fewer than k of n rounds fall below the median) for a fair coin, summed up k by k.
	let below = 0;
	let k = 0;
	for (let i = 0; i <= n; i++) {
		const next = below + binomial(n, i) / 2 ** n;
		if (2 * next > 1 - confidence) break;
		below = next;
		k = i + 1;
	}
	if (k === 0) return undefined;
	return { low: sorted[k - 1] ?? Number.NaN, high: sorted[n - k] ?? Number.NaN };
}

function binomial(n: number, k: number): number {
	let result = 1;
	for (let i = 1; i <= k; i++) result = (result * (n - i + 1)) / i;
	return result;
}
