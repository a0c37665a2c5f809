import type { CatalogWrite } from "../catalog/route.ts";
import { excerpt } from "../errors/excerpt.ts";
import { ProxyError } from "../errors/proxy-error.ts";
import {
	checkedExecutionId,
	checkedSandboxId,
	InvalidInput,
	maxBatchItems,
	object,
	pushedRoute,
	putFields,
} from "./input.ts";

/** One item's outcome: the status the single call would have given. */
export interface BatchResult {
	sandbox_id: string;
	op: "put" | "delete";
	status: 204 | 400 | 503;
	message?: string;
}

/** A batch, checked: each item is either a write for a sandbox or the reason it is refused. */
export interface ParsedBatch {
	items: BatchItem[];
}

type BatchItem =
	| { op: "put" | "delete"; sandboxId: string; write: CatalogWrite }
	| { op: "put" | "delete"; sandboxId: string; invalid: string };

const batchFields = new Set(["put", "delete"]);
const putItemFields = new Set(["sandbox_id", ...putFields]);
const deleteItemFields = new Set(["sandbox_id", "execution_id"]);

/**
 * Checks a batch body. A malformed envelope (not an object, unknown fields,
 * lists that are not lists, too many items) refuses the whole batch; a bad
 * item refuses only itself, as its single call would have been refused.
 */
export function parseBatch(value: unknown): ParsedBatch {
	const body = object(value, "body");
	for (const key of Object.keys(body)) {
		if (!batchFields.has(key)) throw new InvalidInput(excerpt(key, 64), "is not a known field");
	}
	const puts = list(body.put, "put");
	const deletes = list(body.delete, "delete");
	if (puts.length + deletes.length > maxBatchItems) {
		throw new InvalidInput(
			"put, delete",
			`hold ${puts.length + deletes.length} items; at most ${maxBatchItems} in all`,
		);
	}
	const items: BatchItem[] = [];
	puts.forEach((item, index) => {
		items.push(checkItem("put", item, `put[${index}].`));
	});
	deletes.forEach((item, index) => {
		items.push(checkItem("delete", item, `delete[${index}].`));
	});
	return { items };
}

function list(value: unknown, field: string): unknown[] {
	if (value === undefined || value === null) return [];
	if (!Array.isArray(value)) throw new InvalidInput(field, "must be a list");
	return value;
}

function checkItem(op: "put" | "delete", value: unknown, prefix: string): BatchItem {
	const rawId = typeof value === "object" && value !== null ? (value as Record<string, unknown>).sandbox_id : undefined;
	const sandboxId = typeof rawId === "string" ? rawId : "";
	try {
		const item = object(value, prefix.slice(0, -1));
		const id = checkedSandboxId(item.sandbox_id ?? missing(`${prefix}sandbox_id`), `${prefix}sandbox_id`);
		if (op === "put") return { op, sandboxId: id, write: { op, route: pushedRoute(item, prefix, putItemFields) } };
		for (const key of Object.keys(item)) {
			if (!deleteItemFields.has(key)) throw new InvalidInput(`${prefix}${excerpt(key, 64)}`, "is not a known field");
		}
		return {
			op,
			sandboxId: id,
			write: { op, executionId: checkedExecutionId(item.execution_id, `${prefix}execution_id`) },
		};
	} catch (error) {
		if (!(error instanceof InvalidInput)) throw error;
		return { op, sandboxId: excerpt(sandboxId, 64), invalid: error.message };
	}
}

function missing(field: string): never {
	throw new InvalidInput(field, "is required");
}

// Writes to different sandboxes go to different objects, in parallel, but
// not a thousand at once.
const maxConcurrentObjects = 32;

/**
 * Applies a checked batch: each sandbox's writes go to its object in one
 * call, in the order given (the puts, then the deletes). Results come back
 * in the order of the request.
 */
export async function applyBatch(
	batch: ParsedBatch,
	writeTo: (sandboxId: string, writes: CatalogWrite[]) => Promise<void>,
): Promise<BatchResult[]> {
	const results: BatchResult[] = batch.items.map((item) =>
		"invalid" in item
			? { sandbox_id: item.sandboxId, op: item.op, status: 400, message: item.invalid }
			: { sandbox_id: item.sandboxId, op: item.op, status: 204 },
	);
	const groups = new Map<string, { writes: CatalogWrite[]; indexes: number[] }>();
	batch.items.forEach((item, index) => {
		if ("invalid" in item) return;
		let group = groups.get(item.sandboxId);
		if (group === undefined) {
			group = { writes: [], indexes: [] };
			groups.set(item.sandboxId, group);
		}
		group.writes.push(item.write);
		group.indexes.push(index);
	});

	const pending = [...groups];
	const worker = async () => {
		for (let next = pending.shift(); next !== undefined; next = pending.shift()) {
			const [sandboxId, group] = next;
			try {
				await writeTo(sandboxId, group.writes);
			} catch (error) {
				const message = error instanceof ProxyError ? error.message : "The catalog could not store this write";
				for (const index of group.indexes) {
					const result = results[index];
					if (result !== undefined) Object.assign(result, { status: 503, message });
				}
			}
		}
	};
	await Promise.all(Array.from({ length: Math.min(maxConcurrentObjects, pending.length) }, worker));
	return results;
}
