// What may be at the edge: for each sandbox, the executions whose routes the
// bridge sent and has not yet seen deleted. A delete names its execution, so
// this is what lets the bridge delete a route after its Redis key is gone,
// and, kept in --state-file, after a restart too.

import { readFile, rename, writeFile } from "node:fs/promises";

interface Mirrored {
	/** Usually one; more while a put of a new execution is unconfirmed. */
	executionIds: Set<string>;
	/** When the edge drops the route by itself (ms since the epoch). */
	expiresAt: number;
}

interface StateFileV1 {
	version: 1;
	routes: Record<string, { execution_ids: string[]; expires_at: number }>;
}

export class EdgeState {
	readonly #routes = new Map<string, Mirrored>();
	readonly #path: string | undefined;
	#changed = false;

	constructor(path: string | undefined) {
		this.#path = path;
	}

	/** Loads the state file if there is one; a missing file is an empty state. */
	async load(now: number): Promise<number> {
		if (this.#path === undefined) return 0;
		let text: string;
		try {
			text = await readFile(this.#path, "utf8");
		} catch (error) {
			if ((error as NodeJS.ErrnoException).code === "ENOENT") return 0;
			throw error;
		}
		const parsed = JSON.parse(text) as Partial<StateFileV1>;
		if (parsed.version !== 1 || typeof parsed.routes !== "object" || parsed.routes === null) {
			throw new Error(`${this.#path} is not a catalog-bridge state file (version 1)`);
		}
		for (const [id, route] of Object.entries(parsed.routes)) {
			// A route past its expiry is already gone from the edge.
			if (typeof route !== "object" || route === null || !Array.isArray(route.execution_ids)) continue;
			if (!(typeof route.expires_at === "number" && route.expires_at > now)) continue;
			this.#routes.set(id, { executionIds: new Set(route.execution_ids.map(String)), expiresAt: route.expires_at });
		}
		return this.#routes.size;
	}

	/** Writes the file if anything changed since the last save (write, then rename: never a torn file). */
	async save(): Promise<void> {
		if (this.#path === undefined || !this.#changed) return;
		const file: StateFileV1 = { version: 1, routes: {} };
		for (const [id, route] of this.#routes) {
			file.routes[id] = { execution_ids: [...route.executionIds], expires_at: route.expiresAt };
		}
		const temporary = `${this.#path}.${process.pid}.tmp`;
		this.#changed = false;
		try {
			await writeFile(temporary, JSON.stringify(file));
			await rename(temporary, this.#path);
		} catch (error) {
			this.#changed = true;
			throw error;
		}
	}

	ids(): string[] {
		return [...this.#routes.keys()];
	}

	executionIds(sandboxId: string): string[] {
		return [...(this.#routes.get(sandboxId)?.executionIds ?? [])];
	}

	has(sandboxId: string, executionId: string): boolean {
		return this.#routes.get(sandboxId)?.executionIds.has(executionId) ?? false;
	}

	expiresAt(sandboxId: string): number | undefined {
		return this.#routes.get(sandboxId)?.expiresAt;
	}

	/** Before a put is sent: from now on the edge may hold it, whatever the answer. */
	attempt(sandboxId: string, executionId: string, expiresAt: number): void {
		const route = this.#routes.get(sandboxId);
		if (route === undefined) {
			this.#routes.set(sandboxId, { executionIds: new Set([executionId]), expiresAt });
		} else {
			route.executionIds.add(executionId);
			route.expiresAt = Math.max(route.expiresAt, expiresAt);
		}
		this.#changed = true;
	}

	/** The edge stored the put, replacing whatever it had for the sandbox. */
	confirmPut(sandboxId: string, executionId: string, expiresAt: number): void {
		this.#routes.set(sandboxId, { executionIds: new Set([executionId]), expiresAt });
		this.#changed = true;
	}

	/** The edge stored nothing (a put it rejected), or no longer holds this execution's route (a delete). */
	forget(sandboxId: string, executionId: string): void {
		const route = this.#routes.get(sandboxId);
		if (route === undefined || !route.executionIds.delete(executionId)) return;
		if (route.executionIds.size === 0) this.#routes.delete(sandboxId);
		this.#changed = true;
	}

	/** Drops routes the edge has expired by itself. */
	prune(now: number): void {
		for (const [id, route] of this.#routes) {
			if (route.expiresAt <= now) {
				this.#routes.delete(id);
				this.#changed = true;
			}
		}
	}
}
