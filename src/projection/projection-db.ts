import BetterSqlite3 from "better-sqlite3";
import { Kysely, Migrator, SqliteDialect, type MigrationResultSet, type SqliteDatabase } from "kysely";
import type { Database } from "./database.js";
import { MigrationError } from "./projection-errors.js";
import { SqlFileMigrationProvider } from "./sql-file-migration-provider.js";

// This file is the only one in the layer that knows the database is SQLite: the rest goes
// through `Kysely<Database>`, so a relay on PostgreSQL needs another opener, not another layer.

/** The repository's `migrations/` folder, found from this file so it works from any working directory. */
export const DEFAULT_MIGRATIONS_FOLDER = new URL("../../migrations/", import.meta.url);

/**
 * Page cache per connection, in KiB (SQLite's default is 2 MiB). 32 MiB holds the indexes of
 * a course term (tens of thousands of documents) while a catch-up rewrites them, and is
 * small next to the memory the document store needs.
 */
export const DEFAULT_CACHE_SIZE_KIB = 32 * 1024;

/**
 * How long a write waits for another connection's lock, in ms. A CLI or a second process may
 * read or write the same file for a moment; waiting briefly beats failing with SQLITE_BUSY.
 */
export const DEFAULT_BUSY_TIMEOUT_MS = 5_000;

/**
 * Prepared statements kept per connection. kysely's SQLite driver prepares every statement
 * anew, which dominates small queries; the runner's batches repeat a few dozen statement
 * shapes, and the ready queries a handful more.
 */
export const DEFAULT_STATEMENT_CACHE_SIZE = 64;

export interface OpenProjectionDbOptions {
  /** The SQLite file; `":memory:"` for a throwaway database. */
  path: string;
  /** Where the `NNNN_name.sql` migrations are; defaults to the repository's `migrations/`. */
  migrationsFolder?: string | URL;
  /** Bring the schema to the latest migration while opening (default true). */
  migrate?: boolean;
  /** Page cache size in KiB; see `DEFAULT_CACHE_SIZE_KIB`. */
  cacheSizeKiB?: number;
}

/** One migration and whether this database has it. */
export interface MigrationStatus {
  name: string;
  executedAt: Date | null;
}

/** An open projection database: the typed kysely handle and its migrations. */
export interface ProjectionDb {
  readonly db: Kysely<Database>;
  /** Every migration the folder holds, in order, with when it was applied. */
  status(): Promise<MigrationStatus[]>;
  /** Applies every pending migration; returns the names applied. Throws `MigrationError`. */
  latest(): Promise<string[]>;
  /** Applies the next pending migration; returns its name, or none. Throws `MigrationError`. */
  up(): Promise<string[]>;
  /** Reverts the last applied migration; returns its name, or none. Throws `MigrationError`. */
  down(): Promise<string[]>;
  /** Closes the database. Safe to call twice. */
  close(): Promise<void>;
}

/**
 * Opens (or creates) a projection database and migrates it to the latest schema.
 *
 * @example
 * ```ts
 * const projection = await openProjectionDb({ path: ".ordo/projection.sqlite" });
 * const rows = await projection.db.selectFrom("assignments").selectAll().execute();
 * await projection.close();
 * ```
 */
export async function openProjectionDb(options: OpenProjectionDbOptions): Promise<ProjectionDb> {
  const sqlite = new BetterSqlite3(options.path);
  try {
    configureConnection(sqlite, options.cacheSizeKiB ?? DEFAULT_CACHE_SIZE_KIB);
  } catch (error) {
    sqlite.close();
    throw error;
  }
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite, DEFAULT_STATEMENT_CACHE_SIZE) }) });
  const migrator = new Migrator({
    db,
    provider: new SqlFileMigrationProvider(options.migrationsFolder ?? DEFAULT_MIGRATIONS_FOLDER),
  });
  let closed = false;
  const projection: ProjectionDb = {
    db,
    async status() {
      const migrations = await migrator.getMigrations();
      return migrations.map((m) => ({ name: m.name, executedAt: m.executedAt ?? null }));
    },
    latest: async () => appliedOrThrow(await migrator.migrateToLatest(), "Up"),
    up: async () => appliedOrThrow(await migrator.migrateUp(), "Up"),
    down: async () => appliedOrThrow(await migrator.migrateDown(), "Down"),
    async close() {
      if (closed) return;
      closed = true;
      await db.destroy();
    },
  };
  if (options.migrate ?? true) {
    try {
      await projection.latest();
    } catch (error) {
      await projection.close();
      throw error;
    }
  }
  return projection;
}

function configureConnection(sqlite: BetterSqlite3.Database, cacheSizeKiB: number): void {
  // WAL: apps read the tables while the runner writes a batch; readers never block the writer.
  sqlite.pragma("journal_mode = WAL");
  // NORMAL in WAL mode fsyncs at checkpoints, not at every commit. A power cut can lose the
  // last batches but never corrupts the file, and the projection is derived data: the next
  // catch-up sees the lost documents' heads missing from doc_heads and projects them again.
  sqlite.pragma("synchronous = NORMAL");
  // Enforces module_items -> modules (ON DELETE CASCADE); stock SQLite leaves it off per connection.
  sqlite.pragma("foreign_keys = ON");
  // Negative means KiB rather than pages.
  sqlite.pragma(`cache_size = ${-Math.max(1, Math.floor(cacheSizeKiB))}`);
  sqlite.pragma(`busy_timeout = ${DEFAULT_BUSY_TIMEOUT_MS}`);
}

/**
 * The connection as kysely sees it, reusing prepared statements for repeated SQL text (least
 * recently used ones are dropped). Safe because kysely runs one query at a time per
 * connection, and SQLite re-prepares a cached statement by itself after a schema change.
 */
function withStatementCache(sqlite: BetterSqlite3.Database, size: number): SqliteDatabase {
  const cache = new Map<string, BetterSqlite3.Statement>();
  return {
    close: () => sqlite.close(),
    prepare(sql) {
      let statement = cache.get(sql);
      if (statement) {
        // Re-insert to mark it most recently used (a Map iterates in insertion order).
        cache.delete(sql);
      } else {
        statement = sqlite.prepare(sql);
        if (cache.size >= size) cache.delete(cache.keys().next().value as string);
      }
      cache.set(sql, statement);
      return statement;
    },
  };
}

function appliedOrThrow(result: MigrationResultSet, direction: "Up" | "Down"): string[] {
  if (result.error === undefined) {
    return (result.results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
  }
  const failed = result.results?.find((r) => r.status === "Error");
  const cause = result.error;
  const reason = cause instanceof Error ? cause.message : String(cause);
  const message = failed
    ? `migration ${failed.migrationName} (${direction.toLowerCase()}) failed and was rolled back: ${reason}`
    : `migrations could not run: ${reason}`;
  throw new MigrationError(message, failed?.migrationName ?? null, failed?.direction ?? direction, { cause });
}
