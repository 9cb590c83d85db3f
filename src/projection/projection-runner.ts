import { CompiledQuery, type Insertable, type Kysely, type Transaction } from "kysely";
import type { DocUrl } from "../crdt/ids.js";
import type { DocSnapshot } from "../crdt/snapshot.js";
import { OWNED_TABLES, type Database, type DocStatus, type OwnedTable } from "./database.js";
import { ProjectionError } from "./projection-errors.js";
import { isProjectedKind, projectSnapshot, statusOfSnapshot, tablesOfKind, type RowSet } from "./snapshot-projector.js";

/**
 * Documents per transaction in `catchUp`. Large enough that per-transaction costs (a WAL
 * commit, a dozen DELETE statements) vanish next to the rows; small enough that a crash
 * redoes little and readers wait at most a few milliseconds.
 */
export const DEFAULT_BATCH_SIZE = 500;

/**
 * Bound parameters per statement. SQLite's limit is 32,766 since 3.32 (999 before);
 * statements of a few thousand values already amortize kysely's per-query cost (it prepares
 * every statement anew), while larger ones only grow the SQL text it compiles.
 */
export const DEFAULT_MAX_PARAMETERS = 4_000;

/** Where the projection reads documents from: the document store, or anything shaped like it. */
export interface ProjectionSource {
  /** Every document the store holds, deleted and invalid ones included. */
  list(): Promise<Array<{ url: DocUrl; kind: string; heads: string; status: "ok" | "invalid"; deleted: boolean }>>;
  /** The snapshot of a valid document, or undefined if it is gone or invalid. */
  snapshot(url: DocUrl): Promise<DocSnapshot | undefined>;
}

/** An entry of `ProjectionSource.list()`. */
export type ListedDoc = Awaited<ReturnType<ProjectionSource["list"]>>[number];

/**
 * A document state the projection records without rows: deleted or invalid documents keep
 * only their `doc_heads` entry, and documents that left the store lose even that.
 */
export type DocMark =
  | { url: DocUrl; kind: string; heads: string; status: "deleted" | "invalid" }
  | { url: DocUrl; status: "removed" };

/** What `apply` takes: a snapshot to project (deleted if its entity has a tombstone), or a mark. */
export type ProjectionChange = DocSnapshot | DocMark;

/** How many documents of a batch ended in each state. */
export interface ApplyResult {
  projected: number;
  deleted: number;
  invalid: number;
  removed: number;
}

/** What a catch-up or rebuild did. */
export interface CatchUpResult extends ApplyResult {
  /** Documents the source listed. */
  listed: number;
  /** Listed documents whose heads and status the projection already had. */
  skipped: number;
  /** Listed as valid, but the source had no snapshot when asked (they will be retried). */
  missing: number;
  /** Valid documents of kinds the projection does not hold (course catalogs). */
  ignored: number;
}

export interface CatchUpProgress {
  /** Documents handled so far, skipped ones excluded. */
  done: number;
  /** Documents that needed work. */
  total: number;
}

export interface CatchUpOptions {
  /** Documents per transaction; see `DEFAULT_BATCH_SIZE`. */
  batchSize?: number;
  /** Called after each committed batch. */
  onProgress?: (progress: CatchUpProgress) => void;
}

export interface ProjectionRunnerOptions {
  /** The clock for `doc_heads.projected_at`, as an ISO string. */
  now?: () => string;
  /** Bound parameters per statement; see `DEFAULT_MAX_PARAMETERS`. */
  maxParameters?: number;
}

/** Keeps the projected tables in step with the documents. */
export interface ProjectionRunner {
  /**
   * Projects a batch in one transaction: each document's rows in every table are deleted
   * and its new rows inserted, and its `doc_heads` entry is upserted. When a batch names a
   * document twice, the last change wins. Applying the same snapshots again changes no row
   * (only `projected_at`). Throws `ProjectionError` (and changes nothing) if a document
   * cannot be projected.
   */
  apply(changes: ReadonlyArray<ProjectionChange>): Promise<ApplyResult>;
  /**
   * Brings the projection up to the source: projects documents whose heads or status differ
   * from `doc_heads` and drops documents the source no longer lists, in transactions of
   * `batchSize`. After a crash at any point, calling it again finishes the work.
   */
  catchUp(source: ProjectionSource, options?: CatchUpOptions): Promise<CatchUpResult>;
  /**
   * Empties every projected table and `doc_heads`, then projects everything the source
   * holds. The result is the same as the incremental path's; an interrupted rebuild is
   * finished by `catchUp`.
   */
  rebuild(source: ProjectionSource, options?: CatchUpOptions): Promise<CatchUpResult>;
}

const OWNED_TABLE_NAMES = Object.keys(OWNED_TABLES) as OwnedTable[];

/** One document's outcome, planned before the transaction so that projecting (pure CPU) never holds the write lock. */
type Plan =
  | { url: DocUrl; status: "projected"; kind: string; heads: string; rows: RowSet }
  | { url: DocUrl; status: "deleted" | "invalid"; kind: string; heads: string }
  | { url: DocUrl; status: "removed" };

/**
 * Creates the runner that writes the projection.
 *
 * @example
 * ```ts
 * const { db } = await openProjectionDb({ path: "projection.sqlite" });
 * const runner = createProjectionRunner(db);
 * await runner.catchUp(source); // at start: resumes wherever the last run stopped
 * const snapshot = await source.snapshot(changedUrl); // then, as documents change
 * if (snapshot) await runner.apply([snapshot]);
 * ```
 */
export function createProjectionRunner(db: Kysely<Database>, options: ProjectionRunnerOptions = {}): ProjectionRunner {
  const now = options.now ?? (() => new Date().toISOString());
  const maxParameters = Math.max(1, options.maxParameters ?? DEFAULT_MAX_PARAMETERS);

  async function apply(changes: ReadonlyArray<ProjectionChange>): Promise<ApplyResult> {
    const plans = new Map<DocUrl, Plan>();
    for (const change of changes) {
      const plan = planChange(change);
      // Delete-then-set keeps the map in the order of each document's last change.
      plans.delete(plan.url);
      plans.set(plan.url, plan);
    }
    const result: ApplyResult = { projected: 0, deleted: 0, invalid: 0, removed: 0 };
    if (plans.size === 0) return result;

    const rows: { [T in OwnedTable]?: Array<Insertable<Database[T]>> } = {};
    const heads: Array<Insertable<Database["doc_heads"]>> = [];
    const removed: DocUrl[] = [];
    const projectedAt = now();
    for (const plan of plans.values()) {
      result[plan.status] += 1;
      if (plan.status === "removed") {
        removed.push(plan.url);
        continue;
      }
      heads.push({ doc_url: plan.url, kind: plan.kind, heads: plan.heads, status: plan.status, projected_at: projectedAt });
      if (plan.status === "projected") {
        for (const table of OWNED_TABLE_NAMES) {
          const owned = plan.rows[table];
          if (owned && owned.length > 0) ((rows[table] ??= []) as unknown[]).push(...owned);
        }
      }
    }

    try {
      await writeBatch([...plans.values()], rows, removed, heads);
    } catch (error) {
      throw new ProjectionError(`projecting a batch of ${plans.size} documents failed; none of it was written`, null, { cause: error });
    }
    return result;
  }

  async function writeBatch(
    plans: readonly Plan[],
    rows: { [T in OwnedTable]?: Array<Insertable<Database[T]>> },
    removed: readonly DocUrl[],
    heads: ReadonlyArray<Insertable<Database["doc_heads"]>>,
  ): Promise<void> {
    await db.transaction().execute(async (trx) => {
      const owners = await ownersByTable(trx, plans, maxParameters);
      // OWNED_TABLES lists modules before module_items, as the foreign key between them needs.
      for (const table of OWNED_TABLE_NAMES) {
        for (const chunk of chunked(owners.get(table) ?? [], maxParameters)) await deleteOwnedRows(trx, table, chunk);
      }
      for (const table of OWNED_TABLE_NAMES) {
        const tableRows = rows[table];
        if (tableRows && tableRows.length > 0) await insertRows(trx, table, tableRows, maxParameters);
      }
      for (const chunk of chunked(removed, maxParameters)) {
        await run(trx, `delete from "doc_heads" where "doc_url" in (${placeholders(chunk.length)})`, chunk);
      }
      for (const chunk of chunked(heads, Math.floor(maxParameters / HEADS_COLUMNS.length))) {
        const values = chunk.flatMap((row) => HEADS_COLUMNS.map((column) => row[column]));
        const tuples = chunk.map(() => `(${placeholders(HEADS_COLUMNS.length)})`).join(", ");
        await run(trx, `insert into "doc_heads" (${HEADS_COLUMNS.join(", ")}) values ${tuples} on conflict ("doc_url") do update set ${HEADS_UPDATE}`, values);
      }
    });
  }

  async function catchUp(source: ProjectionSource, catchUpOptions: CatchUpOptions = {}): Promise<CatchUpResult> {
    const batchSize = Math.max(1, catchUpOptions.batchSize ?? DEFAULT_BATCH_SIZE);
    const listed = await source.list();
    const known = new Map<string, { heads: string; status: DocStatus }>();
    for (const row of await db.selectFrom("doc_heads").select(["doc_url", "heads", "status"]).execute()) {
      known.set(row.doc_url, { heads: row.heads, status: row.status });
    }

    const result: CatchUpResult = {
      listed: listed.length,
      skipped: 0,
      missing: 0,
      ignored: 0,
      projected: 0,
      deleted: 0,
      invalid: 0,
      removed: 0,
    };
    const seen = new Set<string>();
    const work: ListedDoc[] = [];
    for (const doc of listed) {
      if (doc.status === "ok" && !isProjectedKind(doc.kind)) {
        result.ignored += 1;
        continue;
      }
      seen.add(doc.url);
      const wanted: DocStatus = doc.status === "invalid" ? "invalid" : doc.deleted ? "deleted" : "projected";
      const have = known.get(doc.url);
      if (have && have.heads === doc.heads && have.status === wanted) result.skipped += 1;
      else work.push(doc);
    }
    const gone = [...known.keys()].filter((url) => !seen.has(url)) as DocUrl[];

    const total = work.length + gone.length;
    let done = 0;
    const commit = async (changes: ProjectionChange[], handled: number): Promise<void> => {
      const applied = await apply(changes);
      result.projected += applied.projected;
      result.deleted += applied.deleted;
      result.invalid += applied.invalid;
      result.removed += applied.removed;
      done += handled;
      catchUpOptions.onProgress?.({ done, total });
    };

    for (const chunk of chunked(gone, batchSize)) {
      await commit(
        chunk.map((url) => ({ url, status: "removed" })),
        chunk.length,
      );
    }
    for (const chunk of chunked(work, batchSize)) {
      const changes: ProjectionChange[] = [];
      for (const doc of chunk) {
        if (doc.status === "invalid") {
          changes.push({ url: doc.url, kind: doc.kind, heads: doc.heads, status: "invalid" });
        } else if (doc.deleted) {
          changes.push({ url: doc.url, kind: doc.kind, heads: doc.heads, status: "deleted" });
        } else {
          const snapshot = await source.snapshot(doc.url);
          if (snapshot) changes.push(snapshot);
          else result.missing += 1;
        }
      }
      await commit(changes, chunk.length);
    }
    return result;
  }

  async function rebuild(source: ProjectionSource, catchUpOptions: CatchUpOptions = {}): Promise<CatchUpResult> {
    await db.transaction().execute(async (trx) => {
      for (const table of OWNED_TABLE_NAMES) await trx.deleteFrom(table).execute();
      await trx.deleteFrom("doc_heads").execute();
    });
    // With doc_heads empty, catching up projects everything, in resumable batches.
    return catchUp(source, catchUpOptions);
  }

  return { apply, catchUp, rebuild };
}

function planChange(change: ProjectionChange): Plan {
  if (!("entity" in change)) return change;
  if (!isProjectedKind(change.kind)) {
    throw new ProjectionError(`cannot project a document of kind ${JSON.stringify(change.kind)}`, change.url);
  }
  const status = statusOfSnapshot(change);
  if (status === "deleted") return { url: change.url, status, kind: change.kind, heads: change.heads };
  return { url: change.url, status, kind: change.kind, heads: change.heads, rows: projectSnapshot(change) };
}

/**
 * The documents whose old rows each table may hold: the tables of a document's kind as it was
 * last projected (`doc_heads`), and of its kind now. Rows live only where the projected
 * state put them, so other tables need no probe (a change to one document would otherwise
 * cost thirteen DELETEs).
 */
async function ownersByTable(trx: Transaction<Database>, plans: readonly Plan[], maxParameters: number): Promise<Map<OwnedTable, DocUrl[]>> {
  const before = new Map<string, { kind: string; status: DocStatus }>();
  for (const chunk of chunked(plans.map((plan) => plan.url), maxParameters)) {
    const { rows } = await trx.executeQuery<{ doc_url: string; kind: string; status: DocStatus }>(
      CompiledQuery.raw(`select "doc_url", "kind", "status" from "doc_heads" where "doc_url" in (${placeholders(chunk.length)})`, chunk),
    );
    for (const row of rows) before.set(row.doc_url, row);
  }
  const owners = new Map<OwnedTable, DocUrl[]>();
  for (const plan of plans) {
    const tables = new Set<OwnedTable>();
    const earlier = before.get(plan.url);
    if (earlier?.status === "projected") for (const table of tablesOfKind(earlier.kind)) tables.add(table);
    if (plan.status === "projected") for (const table of tablesOfKind(plan.kind)) tables.add(table);
    for (const table of tables) {
      const urls = owners.get(table);
      if (urls) urls.push(plan.url);
      else owners.set(table, [plan.url]);
    }
  }
  return owners;
}

// Statements on the path of every change are written out rather than built: a query builder
// costs more than SQLite does to run them.
async function deleteOwnedRows(trx: Transaction<Database>, table: OwnedTable, urls: readonly DocUrl[]): Promise<void> {
  await run(trx, `delete from "${table}" where "${OWNED_TABLES[table]}" in (${placeholders(urls.length)})`, urls);
}

const HEADS_COLUMNS = ["doc_url", "kind", "heads", "status", "projected_at"] as const satisfies ReadonlyArray<keyof Database["doc_heads"]>;
const HEADS_UPDATE = HEADS_COLUMNS.filter((column) => column !== "doc_url")
  .map((column) => `"${column}" = excluded."${column}"`)
  .join(", ");

async function run(trx: Transaction<Database>, text: string, parameters: readonly unknown[]): Promise<void> {
  await trx.executeQuery(CompiledQuery.raw(text, [...parameters]));
}

function placeholders(count: number): string {
  return Array.from({ length: count }, () => "?").join(", ");
}

async function insertRows<T extends OwnedTable>(
  trx: Transaction<Database>,
  table: T,
  rows: ReadonlyArray<Insertable<Database[T]>>,
  maxParameters: number,
): Promise<void> {
  for (const chunk of chunked(rows, rowsPerStatement(rows, maxParameters))) {
    // kysely cannot relate a generic table name to its row type; the RowSet type already did.
    await trx
      .insertInto(table)
      .values(chunk as never)
      .execute();
  }
}

/** Rows per multi-row INSERT so that rows × columns stays within the parameter budget. */
function rowsPerStatement(rows: ReadonlyArray<object>, maxParameters: number): number {
  const columns = rows[0] ? Object.keys(rows[0]).length : 1;
  return Math.max(1, Math.floor(maxParameters / Math.max(1, columns)));
}

function* chunked<T>(items: readonly T[], size: number): Generator<T[]> {
  for (let start = 0; start < items.length; start += size) yield items.slice(start, start + size);
}
