import type { RecordedCall } from "./model.ts";

// At equal times: calls that end there, then calls that start there, then the
// ends of calls that took no time at all, which overlap whatever is in flight.
const END = 0;
const START = 1;
const INSTANT_END = 2;

/**
 * The most ResumeSandbox calls in flight at once. A call occupies
 * [at, finishedAt): one that finished just as another started did not overlap
 * it. A call still in flight occupies the rest of time.
 */
export function maxConcurrentCalls(calls: readonly RecordedCall[]): number {
	const events: { time: number; kind: number; change: 1 | -1 }[] = [];
	for (const call of calls) {
		events.push({ time: call.at, kind: START, change: 1 });
		const end = call.finishedAt ?? Number.POSITIVE_INFINITY;
		if (end > call.at) events.push({ time: end, kind: END, change: -1 });
		else events.push({ time: call.at, kind: INSTANT_END, change: -1 });
	}
	events.sort((a, b) => a.time - b.time || a.kind - b.kind);
	let current = 0;
	let peak = 0;
	for (const event of events) {
		current += event.change;
		peak = Math.max(peak, current);
	}
	return peak;
}
