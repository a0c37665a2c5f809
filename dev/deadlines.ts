// One timer per sandbox for its end time, the moment E2B pauses a sandbox
// that has a timeout and auto-pause. The owner decides, when a timer fires,
// whether the end time still stands (a keepalive may have moved it).

export interface Deadlines {
	/** Fires `onDue(id)` at `at` (epoch ms), replacing the sandbox's earlier timer. */
	set(id: string, at: number): void;
	clear(id: string): void;
	/** Clears every timer; no callback runs afterwards. */
	close(): void;
}

export function createDeadlines(onDue: (id: string) => void): Deadlines {
	const timers = new Map<string, NodeJS.Timeout>();
	let closed = false;
	const clear = (id: string) => {
		clearTimeout(timers.get(id));
		timers.delete(id);
	};
	return {
		set(id, at) {
			clear(id);
			if (closed) return;
			const timer = setTimeout(
				() => {
					timers.delete(id);
					if (!closed) onDue(id);
				},
				Math.max(0, at - Date.now()),
			);
			// A sandbox's timeout must not keep a finished test process alive.
			timer.unref();
			timers.set(id, timer);
		},
		clear,
		close() {
			closed = true;
			for (const id of [...timers.keys()]) clear(id);
		},
	};
}
