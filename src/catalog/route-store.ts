import type { CatalogEntry, RouteDetails, RouteSource } from "./route.ts";

/**
 * Each step runs once, in order, and is recorded, so that the schema is
 * brought up to date on every wake however old the object's storage is.
 * Append new steps; never edit one that has shipped.
 */
export const migrations: readonly string[] = [
	`CREATE TABLE route (
		singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
		sandbox_id TEXT NOT NULL,
		node_ip TEXT NOT NULL,
		learned_at INTEGER NOT NULL,
		expires_at INTEGER NOT NULL
	)`,
	// Routes pushed by the control plane carry their execution, which a
	// delete must name; routes learned from a resume do not.
	"ALTER TABLE route ADD COLUMN source TEXT NOT NULL DEFAULT 'resume'",
	"ALTER TABLE route ADD COLUMN execution_id TEXT",
	// The optional SandboxInfo fields of a push, as JSON: kept for operators, never routed on.
	"ALTER TABLE route ADD COLUMN details TEXT NOT NULL DEFAULT '{}'",
];

/**
 * What all the steps above build, made at once for a new object: every new
 * sandbox gets an object, and one statement costs its first write a fraction
 * of the steps' SQLite work. Update it with each new step;
 * test/unit/route-store-schema.test.ts checks that the two agree.
 */
export const currentSchema = `CREATE TABLE route (
	singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
	sandbox_id TEXT NOT NULL,
	node_ip TEXT NOT NULL,
	learned_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	source TEXT NOT NULL DEFAULT 'resume',
	execution_id TEXT,
	details TEXT NOT NULL DEFAULT '{}'
)`;

export class SqlError extends Error {
	constructor(statement: string, cause: unknown) {
		super(`SQLite statement failed: ${statement.split("\n")[0]}`, { cause });
		this.name = "SqlError";
	}
}

interface RouteRow extends Record<string, SqlStorageValue> {
	node_ip: string;
	learned_at: number;
	expires_at: number;
	source: string;
	execution_id: string | null;
	details: string;
}

/**
 * The one route of one sandbox, kept in the catalog object's SQLite storage.
 * Nothing is written until there is a route to keep: a lookup for an ID that
 * never resumes (a typo, a stranger probing) leaves no stored object behind.
 */
export class RouteStore {
	readonly #sql: SqlStorage;
	// A read-through copy: reading SQLite is synchronous and cheap, but the
	// object answers many lookups per write.
	#entry: CatalogEntry | null;
	#migrated = false;

	constructor(sql: SqlStorage) {
		this.#sql = sql;
		if (hasSchema(sql)) this.#migrate();
		this.#entry = this.#migrated ? this.#load() : null;
	}

	/** Whether the object has stored anything yet: a route, now or before. */
	holdsStorage(): boolean {
		return this.#migrated;
	}

	/** The stored route if it has not expired at `now`. */
	current(now: number): CatalogEntry | null {
		const entry = this.#entry;
		return entry !== null && entry.expiresAt > now ? entry : null;
	}

	save(sandboxId: string, entry: CatalogEntry): void {
		this.#migrate();
		this.#exec(
			`INSERT INTO route (singleton, sandbox_id, node_ip, learned_at, expires_at, source, execution_id, details)
			 VALUES (1, ?, ?, ?, ?, ?, ?, ?)
			 ON CONFLICT (singleton) DO UPDATE SET sandbox_id = excluded.sandbox_id, node_ip = excluded.node_ip,
			 learned_at = excluded.learned_at, expires_at = excluded.expires_at, source = excluded.source,
			 execution_id = excluded.execution_id, details = excluded.details`,
			sandboxId,
			entry.nodeIp,
			entry.learnedAt,
			entry.expiresAt,
			entry.source,
			entry.executionId ?? null,
			JSON.stringify(entry.details),
		);
		this.#entry = entry;
	}

	/** Serves `entry` at once, before it is saved; `save` it after. */
	remember(entry: CatalogEntry): void {
		this.#entry = entry;
	}

	/** Forgets the route in memory, before the object deletes its whole storage. */
	clear(): void {
		this.#entry = null;
	}

	/** The object's storage was deleted whole, schema and all: start again from nothing. */
	storageDeleted(): void {
		this.#migrated = false;
		this.#entry = null;
	}

	#migrate(): void {
		if (this.#migrated) return;
		migrate(this.#sql);
		this.#migrated = true;
	}

	#load(): CatalogEntry | null {
		const row = this.#sql
			.exec<RouteRow>(
				"SELECT node_ip, learned_at, expires_at, source, execution_id, details FROM route WHERE singleton = 1",
			)
			.toArray()[0];
		if (row === undefined) return null;
		return {
			nodeIp: row.node_ip,
			learnedAt: row.learned_at,
			expiresAt: row.expires_at,
			source: row.source === "push" ? "push" : ("resume" satisfies RouteSource),
			...(row.execution_id === null ? {} : { executionId: row.execution_id }),
			details: JSON.parse(row.details) as RouteDetails,
		};
	}

	#exec(statement: string, ...bindings: SqlStorageValue[]): void {
		try {
			this.#sql.exec(statement, ...bindings);
		} catch (error) {
			throw new SqlError(statement, error);
		}
	}
}

function hasSchema(sql: SqlStorage): boolean {
	return (
		sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").toArray().length > 0
	);
}

export function migrate(sql: SqlStorage): void {
	sql.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)");
	const applied = sql
		.exec<{ version: number }>("SELECT COALESCE(MAX(version), 0) AS version FROM schema_migrations")
		.one().version;
	if (applied === 0) {
		try {
			sql.exec(currentSchema);
			const now = Date.now();
			const rows = migrations.map((_, i) => `(${i + 1}, ${now})`).join(", ");
			sql.exec(`INSERT INTO schema_migrations (version, applied_at) VALUES ${rows}`);
		} catch (error) {
			throw new SqlError(currentSchema, error);
		}
		return;
	}
	for (let version = applied + 1; version <= migrations.length; version++) {
		const statement = migrations[version - 1];
		if (statement === undefined) break;
		try {
			sql.exec(statement);
			sql.exec("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", version, Date.now());
		} catch (error) {
			throw new SqlError(statement, error);
		}
	}
}
