import type { Route } from "./route.ts";

/**
 * Each step runs once, in order, and is recorded, so that the schema is
 * brought up to date on every wake however old the object's storage is.
 * Append new steps; never edit one that has shipped.
 */
const migrations: readonly string[] = [
	`CREATE TABLE route (
		singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
		sandbox_id TEXT NOT NULL,
		node_ip TEXT NOT NULL,
		learned_at INTEGER NOT NULL,
		expires_at INTEGER NOT NULL
	)`,
];

export class SqlError extends Error {
	constructor(statement: string, cause: unknown) {
		super(`SQLite statement failed: ${statement.split("\n")[0]}`, { cause });
		this.name = "SqlError";
	}
}

interface RouteRow extends Record<string, SqlStorageValue> {
	sandbox_id: string;
	node_ip: string;
	learned_at: number;
	expires_at: number;
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
	#route: Route | null;
	#migrated = false;

	constructor(sql: SqlStorage) {
		this.#sql = sql;
		if (hasSchema(sql)) this.#migrate();
		this.#route = this.#migrated ? this.#load() : null;
	}

	/** The stored route if it has not expired at `now`. */
	current(now: number): Route | null {
		const route = this.#route;
		return route !== null && route.expiresAt > now ? route : null;
	}

	save(sandboxId: string, route: Route): void {
		this.#migrate();
		this.#exec(
			`INSERT INTO route (singleton, sandbox_id, node_ip, learned_at, expires_at) VALUES (1, ?, ?, ?, ?)
			 ON CONFLICT (singleton) DO UPDATE SET sandbox_id = excluded.sandbox_id, node_ip = excluded.node_ip,
			 learned_at = excluded.learned_at, expires_at = excluded.expires_at`,
			sandboxId,
			route.nodeIp,
			route.learnedAt,
			route.expiresAt,
		);
		this.#route = route;
	}

	clear(): void {
		if (this.#migrated) this.#exec("DELETE FROM route");
		this.#route = null;
	}

	#migrate(): void {
		if (this.#migrated) return;
		migrate(this.#sql);
		this.#migrated = true;
	}

	#load(): Route | null {
		const row = this.#sql
			.exec<RouteRow>("SELECT sandbox_id, node_ip, learned_at, expires_at FROM route WHERE singleton = 1")
			.toArray()[0];
		return row === undefined ? null : { nodeIp: row.node_ip, learnedAt: row.learned_at, expiresAt: row.expires_at };
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

function migrate(sql: SqlStorage): void {
	sql.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)");
	const applied = sql
		.exec<{ version: number }>("SELECT COALESCE(MAX(version), 0) AS version FROM schema_migrations")
		.one().version;
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
