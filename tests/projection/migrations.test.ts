import { copyFile, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { sql, type Kysely } from "kysely";
import BetterSqlite3 from "better-sqlite3";
import { afterEach, describe, expect, it, vi } from "vitest";
import { DEFAULT_MIGRATIONS_FOLDER, openProjectionDb } from "../../src/projection/projection-db.js";
import { MigrationError, MigrationFileError } from "../../src/projection/projection-errors.js";
import { parseMigrationFile, splitSqlStatements } from "../../src/projection/sql-file-migration-provider.js";
import { openTempProjection } from "./fixtures.js";

/** Every migration in the repository's folder, oldest first. */
const MIGRATIONS = ["0001_initial", "0002_projection_state", "0003_connectors", "0004_connector_sync", "0005_assignment_submission_types"];

/** The connectors' own tables (migrations/0003 and 0004): kept by the node, not projected from documents. */
const CONNECTOR_TABLES_0003 = ["conflict_strategies", "outbox", "remote_conflicts", "remote_ids", "remote_sync"];
const CONNECTOR_TABLES = [...CONNECTOR_TABLES_0003, "webhook_events"];

const PROJECTED_TABLES = [
  "assignments",
  "conflicts",
  "courses",
  "discussion_topics",
  "doc_heads",
  "enrollments",
  "grades",
  "module_items",
  "modules",
  "pages",
  "posts",
  "projection_state",
  "search",
  "search_rows",
  "submissions",
  "users",
];

describe("splitSqlStatements", () => {
  it("splits on semicolons and drops comment-only statements", () => {
    const statements = splitSqlStatements("CREATE TABLE a (x);\n-- a comment;\nCREATE TABLE b (y); /* trailing; */\n");
    expect(statements).toEqual(["CREATE TABLE a (x)", "-- a comment;\nCREATE TABLE b (y)"]);
  });

  it("keeps semicolons inside quotes and comments", () => {
    const text = `INSERT INTO t VALUES ('a;b', 'it''s; fine');\nSELECT "odd;name", \`x;y\`, [z;w] FROM t /* c; d */;`;
    expect(splitSqlStatements(text)).toEqual([
      "INSERT INTO t VALUES ('a;b', 'it''s; fine')",
      'SELECT "odd;name", `x;y`, [z;w] FROM t /* c; d */',
    ]);
  });

  it("keeps a trigger body, CASE expressions included, in one statement", () => {
    const trigger = `CREATE TRIGGER t AFTER INSERT ON a BEGIN
  UPDATE b SET n = CASE WHEN new.x > 0 THEN 1 ELSE 0 END;
  DELETE FROM c WHERE id = new.id;
END`;
    expect(splitSqlStatements(`${trigger};\nSELECT 1;`)).toEqual([trigger, "SELECT 1"]);
  });

  it("does not mistake BEGIN TRANSACTION or a top-level CASE for a block", () => {
    expect(splitSqlStatements("BEGIN; SELECT CASE WHEN 1 THEN 2 END; COMMIT;")).toEqual([
      "BEGIN",
      "SELECT CASE WHEN 1 THEN 2 END",
      "COMMIT",
    ]);
  });

  it("keeps each trigger of the shipped migration whole", async () => {
    const text = await readFile(join(fileURLToPath(DEFAULT_MIGRATIONS_FOLDER), "0001_initial.sql"), "utf8");
    const triggers = parseMigrationFile(text).up.filter((s) => s.startsWith("CREATE TRIGGER"));
    expect(triggers).toHaveLength(3);
    for (const trigger of triggers) expect(trigger).toMatch(/BEGIN[\s\S]*;\s*END$/);
  });
});

describe("parseMigrationFile", () => {
  it("rejects a file without a down part", () => {
    expect(() => parseMigrationFile("-- migrate:up\nCREATE TABLE a (x);\n", "x.sql")).toThrow(MigrationFileError);
  });

  it("rejects a file whose down part comes first", () => {
    const error = captureError(() => parseMigrationFile("-- migrate:down\nDROP TABLE a;\n-- migrate:up\nCREATE TABLE a (x);\n"));
    expect(error).toBeInstanceOf(MigrationFileError);
    expect((error as MigrationFileError).code).toBe("ORDO_MIGRATION_FILE");
  });
});

describe("openProjectionDb and the migrations", () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  async function setup(options: Parameters<typeof openTempProjection>[0] = {}) {
    const projection = await openTempProjection(options);
    cleanups.push(() => projection.cleanup());
    return projection;
  }

  /** User tables, without kysely's bookkeeping and FTS5's shadow tables. */
  async function tableNames(projection: { db: Kysely<never> }): Promise<string[]> {
    const { rows } = await sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`.execute(projection.db);
    return rows.map((row) => row.name).filter((name) => !/^(kysely_|sqlite_)|^search_(data|idx|docsize|config)$/.test(name));
  }

  async function columnNames(projection: { db: Kysely<never> }, table: string): Promise<string[]> {
    const { rows } = await sql<{ name: string }>`SELECT name FROM pragma_table_info(${table})`.execute(projection.db);
    return rows.map((row) => row.name);
  }

  async function schemaOf(db: Kysely<never>): Promise<Array<{ type: string; name: string; sql: string | null }>> {
    const { rows } = await sql<{ type: string; name: string; sql: string | null }>`SELECT type, name, sql FROM sqlite_master ORDER BY type, name`.execute(db);
    return rows;
  }

  it("migrates a new database to the latest schema from the repository's migrations folder", async () => {
    const projection = await setup();
    const names = await tableNames(projection as never);
    expect(names).toEqual([...PROJECTED_TABLES, ...CONNECTOR_TABLES].sort());
    const status = await projection.status();
    expect(status.map((m) => m.name)).toEqual(MIGRATIONS);
    expect(status.every((m) => m.executedAt instanceof Date)).toBe(true);
    expect(fileURLToPath(DEFAULT_MIGRATIONS_FOLDER)).toMatch(/migrations\/$/);
  });

  it("chooses WAL, NORMAL sync and foreign keys on the connection", async () => {
    const projection = await setup();
    const pragma = async (name: string) => (await sql.raw<Record<string, unknown>>(`PRAGMA ${name}`).execute(projection.db)).rows[0];
    expect(await pragma("journal_mode")).toEqual({ journal_mode: "wal" });
    expect(await pragma("synchronous")).toEqual({ synchronous: 1 });
    expect(await pragma("foreign_keys")).toEqual({ foreign_keys: 1 });
    expect(await pragma("cache_size")).toEqual({ cache_size: -32 * 1024 });
  });

  it("reuses prepared statements for repeated SQL, also across a schema change", async () => {
    const projection = await setup();
    const prepare = vi.spyOn(BetterSqlite3.prototype, "prepare");
    try {
      const query = () => projection.db.selectFrom("doc_heads").select("doc_url").where("status", "=", "projected").execute();
      await query();
      await query();
      await query();
      expect(prepare.mock.calls.filter(([text]) => String(text).startsWith('select "doc_url" from "doc_heads"'))).toHaveLength(1);
      await projection.down();
      await projection.up();
      await expect(query()).resolves.toEqual([]);
    } finally {
      prepare.mockRestore();
    }
  });

  it("creates the indexes the ready queries rely on", async () => {
    const projection = await setup();
    const { rows } = await sql<{ name: string; tbl_name: string }>`SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%'`.execute(projection.db);
    const columnsOf = async (index: string) =>
      (await sql.raw<{ name: string }>(`PRAGMA index_info(${index})`).execute(projection.db)).rows.map((r) => r.name);
    const found = new Map<string, string[]>();
    for (const row of rows) found.set(`${row.tbl_name}:${(await columnsOf(row.name)).join(",")}`, []);
    for (const wanted of [
      "enrollments:course_url,role",
      "assignments:course_url,due_at",
      "submissions:assignment_url",
      "submissions:student_url",
      "grades:submission_url",
      "grades:student_url",
      "posts:topic_url,created_at",
      "pages:course_url,slug",
    ]) {
      expect(found.has(wanted), wanted).toBe(true);
    }
  });

  it("steps down and up again, one migration at a time", async () => {
    const projection = await setup();
    const all = [...PROJECTED_TABLES, ...CONNECTOR_TABLES].sort();
    expect(await tableNames(projection as never)).toEqual(all);
    expect(await columnNames(projection as never, "assignments")).toContain("submission_types");
    expect(await projection.down()).toEqual(["0005_assignment_submission_types"]);
    expect(await columnNames(projection as never, "assignments")).not.toContain("submission_types");
    expect(await tableNames(projection as never)).toEqual(all);
    expect(await projection.down()).toEqual(["0004_connector_sync"]);
    expect(await tableNames(projection as never)).toEqual([...PROJECTED_TABLES, ...CONNECTOR_TABLES_0003].sort());
    expect(await projection.down()).toEqual(["0003_connectors"]);
    expect(await tableNames(projection as never)).toEqual(PROJECTED_TABLES);
    expect(await projection.down()).toEqual(["0002_projection_state"]);
    expect(await tableNames(projection as never)).toEqual(PROJECTED_TABLES.filter((t) => t !== "projection_state"));
    expect(await projection.down()).toEqual(["0001_initial"]);
    expect(await tableNames(projection as never)).toEqual([]);
    expect((await projection.status())[0]?.executedAt).toBeNull();
    expect(await projection.down()).toEqual([]);
    expect(await projection.up()).toEqual(["0001_initial"]);
    expect(await projection.up()).toEqual(["0002_projection_state"]);
    expect(await tableNames(projection as never)).toEqual(PROJECTED_TABLES);
    expect(await projection.up()).toEqual(["0003_connectors"]);
    expect(await projection.up()).toEqual(["0004_connector_sync"]);
    expect(await projection.up()).toEqual(["0005_assignment_submission_types"]);
    expect(await tableNames(projection as never)).toEqual(all);
    expect(await columnNames(projection as never, "assignments")).toContain("submission_types");
    expect(await projection.up()).toEqual([]);
  });

  it("gives existing assignment rows the submission types of a document without them, and has every assignment projected again", async () => {
    const projection = await setup();
    await projection.down();
    const db = projection.db as unknown as Kysely<Record<string, Record<string, unknown>>>;
    const heads = (kind: string, url: string) => ({ doc_url: url, kind, heads: "h1", status: "projected", projected_at: "2025-01-01T00:00:00Z" });
    await db.insertInto("doc_heads").values([heads("assignment", "automerge:a1"), heads("page", "automerge:p1")]).execute();
    await db
      .insertInto("assignments")
      .values({ doc_url: "automerge:a1", created_at: "2025-01-01T00:00:00Z", updated_at: "2025-01-01T00:00:00Z", title: "Lab 1", description: "", published: 1, position: 1, grading_type: "points" })
      .execute();
    await db.insertInto("projection_state").values({ key: "store_generation", value: "42" }).execute();

    expect(await projection.up()).toEqual(["0005_assignment_submission_types"]);
    expect(await db.selectFrom("assignments").select("submission_types").execute()).toEqual([{ submission_types: '["online_text_entry"]' }]);
    // Heads nobody has make the next catch-up project the assignment again; the page stays as it was.
    expect(await db.selectFrom("doc_heads").select(["doc_url", "heads"]).orderBy("doc_url").execute()).toEqual([
      { doc_url: "automerge:a1", heads: "" },
      { doc_url: "automerge:p1", heads: "h1" },
    ]);
    expect(await db.selectFrom("projection_state").selectAll().execute()).toEqual([]);
  });

  it("opens without migrating when asked, and migrates on demand", async () => {
    const projection = await setup({ migrate: false });
    expect(await tableNames(projection as never)).toEqual([]);
    expect(await projection.latest()).toEqual(MIGRATIONS);
    expect(await projection.latest()).toEqual([]);
  });

  it("rolls a failed migration back completely: schema and kysely_migration stay as they were", async () => {
    const folder = await makeMigrationsFolder();
    const projection = await setup({ migrationsFolder: folder });
    const schemaBefore = await schemaOf(projection.db as never);
    const appliedBefore = await sql`SELECT name, timestamp FROM kysely_migration ORDER BY name`.execute(projection.db);

    await writeFile(
      join(folder, "0002_broken.sql"),
      `-- migrate:up
CREATE TABLE extra (x INTEGER);
CREATE INDEX courses_by_name ON courses (name);
CREATE TRIGGER extra_touch AFTER INSERT ON extra BEGIN
  UPDATE extra SET x = CASE WHEN new.x IS NULL THEN 0 ELSE new.x END WHERE rowid = new.rowid;
END;
ALTER TABLE courses ADD COLUMN color TEXT;
CREATE TABLE broken (;
-- migrate:down
DROP TABLE extra;
`,
    );
    const error = await projection.latest().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MigrationError);
    expect((error as MigrationError).code).toBe("ORDO_MIGRATION");
    expect((error as MigrationError).migrationName).toBe("0002_broken");
    expect((error as MigrationError).message).toMatch(/0002_broken.*rolled back/);
    expect((error as MigrationError).cause).toBeInstanceOf(Error);

    expect(await schemaOf(projection.db as never)).toEqual(schemaBefore);
    expect((await sql`SELECT name, timestamp FROM kysely_migration ORDER BY name`.execute(projection.db)).rows).toEqual(appliedBefore.rows);
    // The connection is usable afterwards: no transaction was left open.
    await sql`INSERT INTO doc_heads VALUES ('automerge:x', 'page', 'h', 'projected', 't')`.execute(projection.db);
  });

  it("rolls a failed down migration back completely", async () => {
    const folder = await makeMigrationsFolder();
    await writeFile(
      join(folder, "0002_extra.sql"),
      "-- migrate:up\nCREATE TABLE extra (x INTEGER);\nCREATE TABLE extra2 (y INTEGER);\n-- migrate:down\nDROP TABLE extra2;\nDROP TABLE no_such_table;\n",
    );
    const projection = await setup({ migrationsFolder: folder });
    const schemaBefore = await schemaOf(projection.db as never);
    const error = await projection.down().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MigrationError);
    expect((error as MigrationError).direction).toBe("Down");
    expect(await schemaOf(projection.db as never)).toEqual(schemaBefore);
    expect((await projection.status()).map((m) => m.executedAt !== null)).toEqual([true, true]);
  });

  it("fails to open with a MigrationError and closes the file when a migration is broken", async () => {
    const folder = await makeMigrationsFolder();
    await writeFile(join(folder, "0002_broken.sql"), "-- migrate:up\nCREATE TABLE ok (x);\nNOT SQL;\n-- migrate:down\n");
    const path = join(folder, "..", "broken.sqlite");
    const error = await openProjectionDb({ path, migrationsFolder: folder }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MigrationError);
    // 0001 landed, 0002 did not, and the file is closed (another open succeeds and sees that state).
    const reopened = await openProjectionDb({ path, migrationsFolder: folder, migrate: false });
    cleanups.push(() => reopened.close());
    expect((await reopened.status()).map((m) => [m.name, m.executedAt !== null])).toEqual([
      ["0001_initial", true],
      ["0002_broken", false],
    ]);
    const { rows } = await sql`SELECT name FROM sqlite_master WHERE name = 'ok'`.execute(reopened.db);
    expect(rows).toEqual([]);
  });

  it("reports an unreadable migrations folder as a MigrationError caused by a MigrationFileError", async () => {
    const error = await openTempProjection({ migrationsFolder: "/nonexistent/ordo-migrations" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MigrationError);
    expect((error as MigrationError).cause).toBeInstanceOf(MigrationFileError);
  });

  async function makeMigrationsFolder(): Promise<string> {
    const projection = await setup({ migrate: false });
    const folder = join(projection.dir, "migrations");
    await mkdir(folder);
    await copyFile(join(fileURLToPath(DEFAULT_MIGRATIONS_FOLDER), "0001_initial.sql"), join(folder, "0001_initial.sql"));
    return folder;
  }
});

function captureError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return undefined;
}
