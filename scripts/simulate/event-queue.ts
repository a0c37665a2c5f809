/**
 * A discrete-event clock: a binary min-heap of events by time. An event is
 * a small integer kind and two numbers. Events are not objects or closures
 * but four numbers side by side in one typed array (time, order and kind,
 * `a`, `b`): the storm schedules hundreds of thousands, and a heap of
 * objects is several times slower, bound by allocation and cache misses.
 * Events due at the same time run in the order they were scheduled.
 */
export class EventQueue {
	private heap = new Float64Array(4 * 1024);
	private size = 0;
	private nextOrder = 0;
	/** The time of the event last taken, or as the caller set it. */
	now = 0;
	/** The arguments of the event last taken. */
	a = 0;
	b = 0;

	/** Schedules an event of `kind` (0 to 7). */
	at(at: number, kind: number, a = 0, b = 0): void {
		if (4 * this.size === this.heap.length) this.grow();
		const heap = this.heap;
		// The order of scheduling and the kind share one number: order × 8 + kind.
		const order = this.nextOrder++ * 8 + kind;
		let i = this.size++;
		while (i > 0) {
			const parent = (i - 1) >> 1;
			if (!precedes(at, order, heap, parent)) break;
			copy(heap, parent, i);
			i = parent;
		}
		set(heap, i, at, order, a, b);
	}

	/** When the next event is due; Infinity when none is. */
	get next(): number {
		return this.size > 0 ? (this.heap[0] as number) : Number.POSITIVE_INFINITY;
	}

	/** Takes the earliest event: moves the clock to it, sets `a` and `b`, and returns its kind. */
	take(): number {
		const heap = this.heap;
		this.now = heap[0] as number;
		const kind = (heap[1] as number) % 8;
		this.a = heap[2] as number;
		this.b = heap[3] as number;
		const size = --this.size;
		const last = 4 * size;
		const at = heap[last] as number;
		const order = heap[last + 1] as number;
		const a = heap[last + 2] as number;
		const b = heap[last + 3] as number;
		let i = 0;
		for (;;) {
			let child = 2 * i + 1;
			if (child >= size) break;
			if (child + 1 < size && precedes(heap[4 * child + 4] as number, heap[4 * child + 5] as number, heap, child)) {
				child++;
			}
			if (precedes(at, order, heap, child)) break;
			copy(heap, child, i);
			i = child;
		}
		if (size > 0) set(heap, i, at, order, a, b);
		return kind;
	}

	private grow(): void {
		const heap = new Float64Array(this.heap.length * 2);
		heap.set(this.heap);
		this.heap = heap;
	}
}

/** Whether an event at `at`, scheduled as `order`, comes before the one in slot `j`. */
function precedes(at: number, order: number, heap: Float64Array, j: number): boolean {
	const other = heap[4 * j] as number;
	return at < other || (at === other && order < (heap[4 * j + 1] as number));
}

function copy(heap: Float64Array, from: number, to: number): void {
	heap[4 * to] = heap[4 * from] as number;
	heap[4 * to + 1] = heap[4 * from + 1] as number;
	heap[4 * to + 2] = heap[4 * from + 2] as number;
	heap[4 * to + 3] = heap[4 * from + 3] as number;
}

function set(heap: Float64Array, i: number, at: number, order: number, a: number, b: number): void {
	heap[4 * i] = at;
	heap[4 * i + 1] = order;
	heap[4 * i + 2] = a;
	heap[4 * i + 3] = b;
}
