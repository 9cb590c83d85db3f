import { readdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { sql, type Kysely, type Migration, type MigrationProvider } from "kysely";
import { MigrationFileError } from "./projection-errors.js";

const UP_MARKER = /^[ \t]*--[ \t]*migrate:up[ \t]*$/m;
const DOWN_MARKER = /^[ \t]*--[ \t]*migrate:down[ \t]*$/m;

/** Names the savepoint each migration runs in; one migration runs at a time. */
const MIGRATION_SAVEPOINT = "ordo_migration";

/** The two halves of a migration file, each split into single statements. */
export interface SqlMigrationParts {
  up: string[];
  down: string[];
}

/**
 * Reads a folder of versioned SQL migrations for kysely's `Migrator`.
 *
 * Each file `NNNN_name.sql` holds an up part after a `-- migrate:up` line and a down part
 * after a `-- migrate:down` line; the migration's name is the file name without `.sql`, and
 * kysely applies them in name order. Files are plain SQL, frozen in time: they never depend
 * on application code, so an old database can always be brought forward.
 *
 * kysely 0.28 wraps migrations in a transaction only when the dialect declares transactional
 * DDL, and its `SqliteAdapter` declares none. So every `up` and `down` here runs inside a
 * savepoint of its own: a statement that fails rolls back every earlier statement of that
 * migration, and the database (schema and `kysely_migration`) stays as it was. (kysely
 * records a migration in `kysely_migration` just after its `up` returns, outside the
 * savepoint; only a failure of that one insert could leave a migration applied but unrecorded.)
 *
 * @example
 * ```ts
 * const migrator = new Migrator({ db, provider: new SqlFileMigrationProvider(new URL("../../migrations/", import.meta.url)) });
 * const { error } = await migrator.migrateToLatest();
 * ```
 */
export class SqlFileMigrationProvider implements MigrationProvider {
  readonly #folder: string;

  constructor(folder: string | URL) {
    this.#folder = folder instanceof URL ? fileURLToPath(folder) : folder;
  }

  async getMigrations(): Promise<Record<string, Migration>> {
    let names: string[];
    try {
      names = (await readdir(this.#folder)).filter((name) => name.endsWith(".sql")).sort();
    } catch (error) {
      throw new MigrationFileError(`cannot read the migrations folder ${this.#folder}`, this.#folder, { cause: error });
    }
    const migrations: Record<string, Migration> = {};
    for (const name of names) {
      const file = join(this.#folder, name);
      const parts = parseMigrationFile(await readFile(file, "utf8"), file);
      migrations[name.slice(0, -".sql".length)] = {
        up: (db) => runInSavepoint(db, parts.up),
        down: (db) => runInSavepoint(db, parts.down),
      };
    }
    return migrations;
  }
}

/**
 * Splits a migration file into its up and down statements.
 * Throws a `MigrationFileError` when a marker is missing or out of order: a file without a
 * down part would make `migrateDown` silently skip it.
 */
export function parseMigrationFile(text: string, file = "<inline>"): SqlMigrationParts {
  const up = UP_MARKER.exec(text);
  const down = DOWN_MARKER.exec(text);
  if (!up) throw new MigrationFileError(`${file}: no "-- migrate:up" line`, file);
  if (!down) throw new MigrationFileError(`${file}: no "-- migrate:down" line`, file);
  if (down.index < up.index) throw new MigrationFileError(`${file}: "-- migrate:down" comes before "-- migrate:up"`, file);
  return {
    up: splitSqlStatements(text.slice(up.index + up[0].length, down.index)),
    down: splitSqlStatements(text.slice(down.index + down[0].length)),
  };
}

async function runInSavepoint(db: Kysely<unknown>, statements: readonly string[]): Promise<void> {
  // Outside a transaction SAVEPOINT opens one, inside it nests: either way RELEASE makes
  // the migration's statements land together and ROLLBACK TO undoes all of them.
  await sql.raw(`SAVEPOINT ${MIGRATION_SAVEPOINT}`).execute(db);
  try {
    for (const statement of statements) await sql.raw(statement).execute(db);
  } catch (error) {
    try {
      await sql.raw(`ROLLBACK TO ${MIGRATION_SAVEPOINT}`).execute(db);
      await sql.raw(`RELEASE ${MIGRATION_SAVEPOINT}`).execute(db);
    } catch {
      // Some errors (a full disk) make SQLite roll the whole transaction back itself; the
      // savepoint is then already gone and the original error is the one worth reporting.
    }
    throw error;
  }
  await sql.raw(`RELEASE ${MIGRATION_SAVEPOINT}`).execute(db);
}

/**
 * Splits SQL text into single statements, since better-sqlite3 prepares one at a time.
 *
 * A `;` ends a statement only outside quotes (`'…'`, `"…"`, `` `…` ``, `[…]`), comments
 * (`-- …`, `/* … *\/`) and `BEGIN … END` bodies of triggers (where `CASE … END` also nests).
 * Statements that hold only comments and whitespace are dropped; each kept statement has no
 * trailing `;`.
 */
export function splitSqlStatements(text: string): string[] {
  const statements: string[] = [];
  let start = 0;
  let i = 0;
  let depth = 0;
  let hasCode = false;
  // Words of the statement so far, uppercased, to tell a trigger's BEGIN from BEGIN TRANSACTION.
  let firstWord: string | null = null;
  let inTrigger = false;

  const finish = (end: number): void => {
    if (hasCode) statements.push(text.slice(start, end).trim());
    start = end + 1;
    depth = 0;
    hasCode = false;
    firstWord = null;
    inTrigger = false;
  };

  while (i < text.length) {
    const ch = text[i]!;
    const next = text[i + 1];
    if (ch === "-" && next === "-") {
      const end = text.indexOf("\n", i);
      i = end === -1 ? text.length : end + 1;
      continue;
    }
    if (ch === "/" && next === "*") {
      const end = text.indexOf("*/", i + 2);
      i = end === -1 ? text.length : end + 2;
      continue;
    }
    if (ch === "'" || ch === '"' || ch === "`" || ch === "[") {
      hasCode = true;
      i = skipQuoted(text, i, ch === "[" ? "]" : ch);
      continue;
    }
    if (ch === ";") {
      if (depth === 0) finish(i);
      i += 1;
      continue;
    }
    if (isWordStart(ch)) {
      let end = i + 1;
      while (end < text.length && isWordPart(text[end]!)) end += 1;
      const word = text.slice(i, end).toUpperCase();
      hasCode = true;
      if (firstWord === null) firstWord = word;
      if (word === "TRIGGER" && firstWord === "CREATE") inTrigger = true;
      else if ((word === "BEGIN" && inTrigger) || word === "CASE") depth += 1;
      else if (word === "END" && depth > 0) depth -= 1;
      i = end;
      continue;
    }
    if (!/\s/.test(ch)) hasCode = true;
    i += 1;
  }
  finish(text.length);
  return statements;
}

/** The index just past a quoted run that opened at `open`; a doubled closing quote is an escape. */
function skipQuoted(text: string, open: number, close: string): number {
  let i = open + 1;
  while (i < text.length) {
    if (text[i] === close) {
      if (close !== "]" && text[i + 1] === close) {
        i += 2;
        continue;
      }
      return i + 1;
    }
    i += 1;
  }
  return text.length;
}

function isWordStart(ch: string): boolean {
  return /[A-Za-z_]/.test(ch);
}

function isWordPart(ch: string): boolean {
  return /[A-Za-z0-9_$]/.test(ch);
}
