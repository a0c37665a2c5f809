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
