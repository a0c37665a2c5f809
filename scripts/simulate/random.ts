/**
 * A seeded generator (mulberry32), so that every run of the model with the
 * same parameters gives the same figures, digit for digit: the test compares
 * them with the ones quoted in docs/capacity.md.
 */
export function seededRandom(seed: number): () => number {
	let state = seed >>> 0;
	return () => {
		state = (state + 0x6d2b79f5) >>> 0;
		let t = state;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}

/** A Poisson process's next gap, in ms, at `perSecond` events a second. */
export function exponentialGapMs(random: () => number, perSecond: number): number {
	return (-Math.log(1 - random()) / perSecond) * 1000;
}
