import { createHash } from "node:crypto";
import Database from "better-sqlite3";
import type { Chunk, StorageKey } from "@automerge/automerge-repo/slim";
import { OrdoError } from "../util/errors.js";
import type { DamagedChunk, DocRecord, DocStorage, RecordQuery, StorageBatch } from "./doc-storage.js";
import type { DocumentId, DocUrl } from "./ids.js";

/**
 * Joins the parts of a storage key. U+001F sorts below every printable character, so all keys
 * under a prefix form one contiguous range `[prefix + SEP, prefix + U+0020)` of the key index.
 */
const KEY_SEPARATOR = "\u001f";
/** The first code point after the separator: the exclusive upper bound of a prefix range. */
const KEY_RANGE_END = "\u0020";

/**
 * How long a write waits for another connection's lock. A checkpoint or a CLI reading the file holds
 * it for milliseconds; better-sqlite3 blocks the event loop while it waits, so waiting much longer
 * would freeze the process instead of surfacing the problem.
 */
export const DEFAULT_BUSY_TIMEOUT_MS = 5_000;

/**
 * Page cache per connection, in KiB (SQLite's default is 2 MiB). 16 MiB keeps the key index and the
 * documents table of a classroom term (tens of thousands of documents) in memory at a modest cost.
 */
export const DEFAULT_CACHE_SIZE_KIB = 16 * 1024;

/** The schema this code writes. Bump it and append to `MIGRATIONS` to evolve the file. */
const SCHEMA_VERSION = 2;

/**
 * `MIGRATIONS[n]` takes a file from `user_version` n to n + 1. Each is frozen in time: later
 * versions add a new entry instead of editing an old one, because files in the field ran it already.
 */
const MIGRATIONS: readonly string[] = [
  `
  -- seq is an explicit INTEGER PRIMARY KEY (an alias of the rowid) so insertion order survives
  -- VACUUM; an upsert keeps the row and therefore its position, as automerge-repo's contract expects.
  CREATE TABLE chunks (
    seq INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    data BLOB NOT NULL,
    size INTEGER NOT NULL,
    checksum BLOB NOT NULL
  );

  -- Chunks that failed verification are moved here and kept: they may be the only copy of some
  -- changes, and a human or a repair tool may still recover them.
  CREATE TABLE damaged_chunks (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    data BLOB,
    size INTEGER,
    checksum BLOB,
    reason TEXT NOT NULL,
    detected_at TEXT NOT NULL
  );

  CREATE TABLE documents (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    course TEXT,
    audience TEXT NOT NULL,
    owner TEXT,
    heads TEXT NOT NULL,
    deleted INTEGER NOT NULL CHECK (deleted IN (0, 1)),
    status TEXT NOT NULL CHECK (status IN ('ok', 'invalid')),
    problem TEXT,
    updated_at TEXT NOT NULL
  );
  CREATE INDEX documents_course_kind ON documents (course, kind);
  CREATE INDEX documents_kind ON documents (kind);

  CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
  );
  `,
  `
  -- The document's plain values at its heads (JSON), written with the record so that the
  -- projection reads them without loading the Automerge document.
  ALTER TABLE documents ADD COLUMN view TEXT;
  `,
];

/** Why a storage call failed. */
export type StorageErrorCode =
  | "ORDO_STORAGE_OPEN_FAILED"
  | "ORDO_STORAGE_SCHEMA_TOO_NEW"
  | "ORDO_STORAGE_CLOSED"
  | "ORDO_STORAGE_INVALID_KEY"
  | "ORDO_STORAGE_EMPTY_CHUNK"
  | "ORDO_STORAGE_READ_FAILED"
  | "ORDO_STORAGE_WRITE_FAILED";

/** Thrown (or rejected with) by the SQLite store; `cause` holds the underlying SQLite error, if any. */
export class StorageError extends OrdoError {
  declare readonly code: StorageErrorCode;
  constructor(code: StorageErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = "StorageError";
  }
}

/** Options of {@link openSqliteStorage}. */
export interface SqliteStorageOptions {
  /** The database file (created if missing; its directory must exist), or `":memory:"`. */
  path: string;
  /**
   * Called once per chunk that failed verification, after it was set aside. Exceptions it throws are
   * ignored: the chunk is already recorded in `damaged_chunks`, and a load must not fail for a report.
   */
  onDamage?: (chunk: DamagedChunk) => void;
  /** Stamps `detectedAt` of damaged chunks; injected so tests are deterministic. */
  clock?: () => Date;
}

/**
 * Opens (creating or upgrading as needed) a store over one SQLite file.
 *
 * @example
 * ```ts
 * const storage = openSqliteStorage({ path: "/var/lib/ordo/store.db", onDamage: (c) => log.warn(c) });
 * const repo = new Repo({ storage, network: [] });
 * await repo.flush();
 * await storage.sync(); // now it survives a power loss too
 * ```
 * @throws {StorageError} `ORDO_STORAGE_OPEN_FAILED` when the file cannot be opened or is not a
 * database, `ORDO_STORAGE_SCHEMA_TOO_NEW` when a newer version of this code wrote it.
 */
export function openSqliteStorage(options: SqliteStorageOptions): SqliteStorageAdapter {
  return new SqliteStorageAdapter(options);
}

/**
 * Encodes a storage key as one string for the `chunks.key` column.
 *
 * @throws {StorageError} `ORDO_STORAGE_INVALID_KEY` for an empty key or a part that contains U+001F,
 * either of which would make two different keys share an encoding.
 */
export function encodeStorageKey(key: StorageKey): string {
  if (key.length === 0) throw new StorageError("ORDO_STORAGE_INVALID_KEY", "A storage key needs at least one part");
  checkKeyParts(key);
  return key.join(KEY_SEPARATOR);
}

function checkKeyParts(key: StorageKey): void {
  for (const part of key) {
    if (typeof part !== "string" || part.includes(KEY_SEPARATOR)) {
      throw new StorageError(
        "ORDO_STORAGE_INVALID_KEY",
        `Invalid storage key ${JSON.stringify(key)}: parts must be strings without U+001F`,
      );
    }
  }
}

function decodeStorageKey(encoded: string): StorageKey {
  return encoded.split(KEY_SEPARATOR);
}

interface ChunkRow {
  seq: number;
  key: string;
  data: Buffer | string | null;
  size: number | null;
  checksum: Buffer | null;
}

interface DocumentRow {
  id: string;
  kind: string;
  course: string | null;
  audience: string;
  owner: string | null;
  heads: string;
  deleted: number;
  status: string;
  problem: string | null;
  updated_at: string;
  view?: string | null;
}

interface DamagedRow {
  key: string;
  reason: string;
  detected_at: string;
}

type Verdict = { ok: true; data: Uint8Array } | { ok: false; reason: DamagedChunk["reason"] };

function sha256(data: Uint8Array): Buffer {
  return createHash("sha256").update(data).digest();
}

/** A zero-copy view: better-sqlite3 binds Buffers, and a caller's Uint8Array may be a subarray. */
function asBuffer(data: Uint8Array): Buffer {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

function inspect(row: ChunkRow): Verdict {
  // A TEXT value would mean someone wrote the column by hand; judge its bytes like any other.
  const bytes = row.data === null ? Buffer.alloc(0) : typeof row.data === "string" ? Buffer.from(row.data) : row.data;
  if (bytes.length === 0) return { ok: false, reason: "empty" };
  if (bytes.length !== row.size) return { ok: false, reason: "length" };
  if (row.checksum === null || !sha256(bytes).equals(row.checksum)) return { ok: false, reason: "checksum" };
  // Copy into a plain Uint8Array: callers compare with toStrictEqual, and must not alias our buffers.
  return { ok: true, data: new Uint8Array(bytes) };
}

function checkData(key: StorageKey, data: Uint8Array): void {
  // On read a zero-length chunk is taken for a torn write, so one must never be written.
  if (data.byteLength === 0) {
    throw new StorageError("ORDO_STORAGE_EMPTY_CHUNK", `Refusing to store an empty chunk at ${JSON.stringify(key)}`);
  }
}

function toRow(record: DocRecord): unknown[] {
  // `?? null` lets SQLite's NOT NULL constraints reject a missing field instead of binding failing.
  return [
    record.id ?? null,
    record.kind ?? null,
    record.course ?? null,
    record.audience ?? null,
    record.owner ?? null,
    record.heads ?? null,
    typeof record.deleted === "boolean" ? (record.deleted ? 1 : 0) : null,
    record.status ?? null,
    record.problem ?? null,
    record.updatedAt ?? null,
    record.view ?? null,
  ];
}

function fromRow(row: DocumentRow): DocRecord {
  return {
    id: row.id as DocumentId,
    kind: row.kind,
    course: row.course as DocUrl | null,
    audience: row.audience,
    owner: row.owner as DocUrl | null,
    heads: row.heads,
    deleted: row.deleted === 1,
    status: row.status as DocRecord["status"],
    problem: row.problem,
    updatedAt: row.updated_at,
    ...(row.view != null ? { view: row.view } : {}),
  };
}

/** Listings leave out `view`: a course's worth of JSON is what the bounded working set avoids. */
const DOCUMENT_COLUMNS = "id, kind, course, audience, owner, heads, deleted, status, problem, updated_at";
const CHUNK_COLUMNS = "seq, key, data, size, checksum";

/**
 * automerge-repo chunks, the document index and damaged chunks in one SQLite file.
 *
 * Every method runs synchronously inside (better-sqlite3 is synchronous) and returns a promise so
 * that failures arrive as rejections carrying a {@link StorageError}, never as synchronous throws.
 * Create it with {@link openSqliteStorage}.
 */
export class SqliteStorageAdapter implements DocStorage {
  readonly #db: Database.Database;
  readonly #path: string;
  readonly #onDamage: ((chunk: DamagedChunk) => void) | undefined;
  readonly #clock: () => Date;
  readonly #statements: ReturnType<typeof prepareStatements>;
  readonly #recordQueries = new Map<string, Database.Statement<unknown[], DocumentRow>>();
  readonly #commitBatch: (batch: StorageBatch) => void;
  /** Runs one write and counts it in the generation, in one transaction. */
  readonly #bumped: (write: () => unknown) => void;
  /** Moves a chunk to `damaged_chunks` if it is still damaged; returns the fresh verdict. */
  readonly #quarantine: (seq: number, detectedAt: string) => Verdict | undefined;
  #closed = false;
  #pendingSync: Promise<void> | undefined;
  #runPendingSync: (() => void) | undefined;

  /** Prefer {@link openSqliteStorage}. */
  constructor(options: SqliteStorageOptions) {
    this.#path = options.path;
    this.#onDamage = options.onDamage;
    this.#clock = options.clock ?? (() => new Date());
    this.#db = openDatabase(options.path);
    this.#statements = prepareStatements(this.#db);
    const s = this.#statements;
    this.#commitBatch = this.#db.transaction((batch: StorageBatch) => {
      for (const { key, data } of batch.save ?? []) s.upsertChunk.run(encodeStorageKey(key), asBuffer(data), data.byteLength, sha256(data));
      for (const key of batch.remove ?? []) s.deleteChunk.run(encodeStorageKey(key));
      for (const record of batch.records ?? []) s.upsertDocument.run(...toRow(record));
      s.bumpGeneration.run();
    });
    this.#bumped = this.#db.transaction((write: () => unknown) => {
      write();
      s.bumpGeneration.run();
    });
    const quarantine = this.#db.transaction((seq: number, detectedAt: string): Verdict | undefined => {
      // Re-read inside the transaction: what gets moved is exactly what was judged damaged.
      const current = s.selectChunkBySeq.get(seq);
      if (current === undefined) return undefined;
      const verdict = inspect(current);
      if (verdict.ok) return verdict;
      s.insertDamaged.run(current.key, current.data, current.size, current.checksum, verdict.reason, detectedAt);
      s.deleteChunkBySeq.run(seq);
      return verdict;
    });
    // IMMEDIATE: take the write lock before the re-read, so no other writer slips in between.
    this.#quarantine = (seq, detectedAt) => quarantine.immediate(seq, detectedAt);
  }

  async load(key: StorageKey): Promise<Uint8Array | undefined> {
    this.#checkOpen();
    const encoded = encodeStorageKey(key);
    const row = this.#read(() => this.#statements.selectChunk.get(encoded));
    if (row === undefined) return undefined;
    return this.#verify(row);
  }

  async save(key: StorageKey, data: Uint8Array): Promise<void> {
    this.#checkOpen();
    const encoded = encodeStorageKey(key);
    checkData(key, data);
    this.#write("save", () => this.#bumped(() => this.#statements.upsertChunk.run(encoded, asBuffer(data), data.byteLength, sha256(data))));
  }

  async remove(key: StorageKey): Promise<void> {
    this.#checkOpen();
    const encoded = encodeStorageKey(key);
    this.#write("remove", () => this.#bumped(() => this.#statements.deleteChunk.run(encoded)));
  }

  async loadRange(keyPrefix: StorageKey): Promise<Chunk[]> {
    this.#checkOpen();
    const prefix = this.#encodePrefix(keyPrefix);
    const s = this.#statements;
    const rows = this.#read(() =>
      prefix === undefined ? s.selectAllChunks.all() : s.selectChunkRange.all(prefix, prefix + KEY_SEPARATOR, prefix + KEY_RANGE_END),
    );
    const chunks: Chunk[] = [];
    for (const row of rows) {
      const data = this.#verify(row);
      if (data !== undefined) chunks.push({ key: decodeStorageKey(row.key), data });
    }
    return chunks;
  }

  async removeRange(keyPrefix: StorageKey): Promise<void> {
    this.#checkOpen();
    const prefix = this.#encodePrefix(keyPrefix);
    const s = this.#statements;
    this.#write("removeRange", () =>
      this.#bumped(() => (prefix === undefined ? s.deleteAllChunks.run() : s.deleteChunkRange.run(prefix, prefix + KEY_SEPARATOR, prefix + KEY_RANGE_END))),
    );
  }

  /**
   * Applies the batch's chunk saves, then its removes, then its record upserts, in one transaction:
   * after a failure (including a record that violates a constraint) nothing of it is stored.
   */
  async commit(batch: StorageBatch): Promise<void> {
    this.#checkOpen();
    // Check everything first so a bad key fails fast with its own code, before any SQL runs.
    for (const { key, data } of batch.save ?? []) {
      encodeStorageKey(key);
      checkData(key, data);
    }
    for (const key of batch.remove ?? []) encodeStorageKey(key);
    this.#write("commit", () => this.#commitBatch(batch));
  }

  async record(id: DocumentId): Promise<DocRecord | undefined> {
    this.#checkOpen();
    const row = this.#read(() => this.#statements.selectDocument.get(id));
    return row === undefined ? undefined : fromRow(row);
  }

  /** Records matching every given filter, ordered by id; deleted ones only with `includeDeleted`. */
  async records(query: RecordQuery = {}): Promise<DocRecord[]> {
    this.#checkOpen();
    const statement = this.#recordQuery(query);
    const params: unknown[] = [];
    if (query.course !== undefined) params.push(query.course);
    if (query.kind !== undefined) params.push(query.kind);
    if (query.status !== undefined) params.push(query.status);
    return this.#read(() => statement.all(...params)).map(fromRow);
  }

  /**
   * The durability barrier. Normal commits run with `synchronous=NORMAL`, which survives a process
   * crash but may lose the latest commits on power loss; this commits one tiny write with
   * `synchronous=FULL`, whose fsync of the WAL also persists every frame written before it.
   * Calls made in the same tick share one barrier.
   */
  sync(): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closedError());
    if (this.#pendingSync !== undefined) return this.#pendingSync;
    const pending = new Promise<void>((resolve, reject) => {
      const run = () => {
        // Cleared before running so a call made after this barrier started gets a barrier of its own.
        this.#pendingSync = undefined;
        this.#runPendingSync = undefined;
        try {
          this.#barrier();
          resolve();
        } catch (error) {
          reject(error);
        }
      };
      this.#runPendingSync = run;
      queueMicrotask(() => {
        if (this.#runPendingSync === run) run();
      });
    });
    this.#pendingSync = pending;
    return pending;
  }

  /** Counts every committed write: equal generations mean nothing was written in between. */
  async generation(): Promise<number> {
    this.#checkOpen();
    return this.#read(() => this.#statements.selectGeneration.get()?.value ?? 0);
  }

  /** Chunks set aside as damaged, oldest first. */
  async damagedChunks(): Promise<DamagedChunk[]> {
    this.#checkOpen();
    const rows = this.#read(() => this.#statements.selectDamaged.all());
    return rows.map((row) => ({
      key: decodeStorageKey(row.key),
      reason: row.reason as DamagedChunk["reason"],
      detectedAt: row.detected_at,
    }));
  }

  /**
   * Closes the database; a second call does nothing. A barrier requested before closing runs first,
   * so its `sync()` resolves; every later call rejects with `ORDO_STORAGE_CLOSED`.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#runPendingSync?.();
    this.#closed = true;
    try {
      this.#db.close();
    } catch (error) {
      throw new StorageError("ORDO_STORAGE_WRITE_FAILED", `Closing the store at ${this.#path} failed: ${messageOf(error)}`, {
        cause: error,
      });
    }
  }

  #barrier(): void {
    if (this.#closed) throw this.#closedError();
    this.#write("sync", () => {
      this.#db.pragma("synchronous = FULL");
      try {
        this.#statements.bumpSyncCounter.run();
      } finally {
        this.#db.pragma("synchronous = NORMAL");
      }
    });
  }

  /** Returns the chunk's bytes, or sets it aside and returns undefined when it fails verification. */
  #verify(row: ChunkRow): Uint8Array | undefined {
    const verdict = inspect(row);
    if (verdict.ok) return verdict.data;
    const detectedAt = this.#clock().toISOString();
    const moved = this.#write("quarantine", () => this.#quarantine(row.seq, detectedAt));
    // Another connection may have removed or rewritten the row since it was read: trust the fresh read.
    if (moved === undefined) return undefined;
    if (moved.ok) return moved.data;
    const damaged: DamagedChunk = { key: decodeStorageKey(row.key), reason: moved.reason, detectedAt };
    try {
      this.#onDamage?.(damaged);
    } catch {
      // Deliberately ignored: see SqliteStorageOptions.onDamage.
    }
    return undefined;
  }

  #recordQuery(query: RecordQuery): Database.Statement<unknown[], DocumentRow> {
    // One statement per combination of filters (at most 16), prepared on first use.
    const filters = [query.course, query.kind, query.status].map((v) => (v === undefined ? "-" : "+"));
    const shape = filters.join("") + (query.includeDeleted ? "d" : "");
    let statement = this.#recordQueries.get(shape);
    if (statement === undefined) {
      const where: string[] = [];
      if (query.course !== undefined) where.push("course = ?");
      if (query.kind !== undefined) where.push("kind = ?");
      if (query.status !== undefined) where.push("status = ?");
      if (!query.includeDeleted) where.push("deleted = 0");
      const sql = `SELECT ${DOCUMENT_COLUMNS} FROM documents${where.length > 0 ? ` WHERE ${where.join(" AND ")}` : ""} ORDER BY id`;
      statement = this.#db.prepare<unknown[], DocumentRow>(sql);
      this.#recordQueries.set(shape, statement);
    }
    return statement;
  }

  /** `undefined` stands for the empty prefix, which matches every key. */
  #encodePrefix(keyPrefix: StorageKey): string | undefined {
    if (keyPrefix.length === 0) return undefined;
    return encodeStorageKey(keyPrefix);
  }

  #checkOpen(): void {
    if (this.#closed) throw this.#closedError();
  }

  #closedError(): StorageError {
    return new StorageError("ORDO_STORAGE_CLOSED", `The store at ${this.#path} is closed`);
  }

  #read<T>(run: () => T): T {
    try {
      return run();
    } catch (error) {
      throw new StorageError("ORDO_STORAGE_READ_FAILED", `Reading the store at ${this.#path} failed: ${messageOf(error)}`, {
        cause: error,
      });
    }
  }

  #write<T>(operation: string, run: () => T): T {
    try {
      return run();
    } catch (error) {
      if (error instanceof StorageError) throw error;
      throw new StorageError("ORDO_STORAGE_WRITE_FAILED", `${operation} on the store at ${this.#path} failed: ${messageOf(error)}`, {
        cause: error,
      });
    }
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function openDatabase(path: string): Database.Database {
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { timeout: DEFAULT_BUSY_TIMEOUT_MS });
    // WAL: readers never block the writer, and a commit appends to one file instead of rewriting pages.
    // (An in-memory database answers "memory"; it has no file to protect.)
    db.pragma("journal_mode = WAL");
    // In WAL mode a NORMAL commit is atomic and survives a process crash; only a power loss can roll
    // back the latest commits, never corrupt the file. sync() closes that gap on demand.
    db.pragma("synchronous = NORMAL");
    // Also set by the constructor's `timeout`; stated here so the file's settings read in one place.
    db.pragma(`busy_timeout = ${DEFAULT_BUSY_TIMEOUT_MS}`);
    // Negative means KiB rather than pages, independent of the page size.
    db.pragma(`cache_size = -${DEFAULT_CACHE_SIZE_KIB}`);
    migrate(db, path);
    return db;
  } catch (error) {
    try {
      db?.close();
    } catch {
      // The open error below is the one worth reporting.
    }
    if (error instanceof StorageError) throw error;
    throw new StorageError("ORDO_STORAGE_OPEN_FAILED", `Cannot open the store at ${path}: ${messageOf(error)}`, { cause: error });
  }
}

function migrate(db: Database.Database, path: string): void {
  const readVersion = () => db.pragma("user_version", { simple: true }) as number;
  if (readVersion() === SCHEMA_VERSION) return;
  // IMMEDIATE takes the write lock before reading the version, so two processes opening a new file
  // at once cannot both run the same migration.
  db.transaction(() => {
    const version = readVersion();
    if (version > SCHEMA_VERSION) {
      throw new StorageError(
        "ORDO_STORAGE_SCHEMA_TOO_NEW",
        `The store at ${path} has schema version ${version}; this code understands up to ${SCHEMA_VERSION}`,
      );
    }
    for (let next = version; next < SCHEMA_VERSION; next++) db.exec(MIGRATIONS[next] ?? "");
    // user_version lives in the file header and is written inside this transaction.
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

function prepareStatements(db: Database.Database) {
  return {
    selectChunk: db.prepare<[string], ChunkRow>(`SELECT ${CHUNK_COLUMNS} FROM chunks WHERE key = ?`),
    selectChunkBySeq: db.prepare<[number], ChunkRow>(`SELECT ${CHUNK_COLUMNS} FROM chunks WHERE seq = ?`),
    // The OR of an equality and a range is answered from the key index (no LIKE: `_` and `%` are
    // wildcards there and it ignores ASCII case); ORDER BY seq restores insertion order.
    selectChunkRange: db.prepare<[string, string, string], ChunkRow>(
      `SELECT ${CHUNK_COLUMNS} FROM chunks WHERE key = ? OR (key >= ? AND key < ?) ORDER BY seq`,
    ),
    selectAllChunks: db.prepare<[], ChunkRow>(`SELECT ${CHUNK_COLUMNS} FROM chunks ORDER BY seq`),
    upsertChunk: db.prepare<[string, Buffer, number, Buffer]>(
      `INSERT INTO chunks (key, data, size, checksum) VALUES (?, ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET data = excluded.data, size = excluded.size, checksum = excluded.checksum`,
    ),
    deleteChunk: db.prepare<[string]>(`DELETE FROM chunks WHERE key = ?`),
    deleteChunkBySeq: db.prepare<[number]>(`DELETE FROM chunks WHERE seq = ?`),
    deleteChunkRange: db.prepare<[string, string, string]>(`DELETE FROM chunks WHERE key = ? OR (key >= ? AND key < ?)`),
    deleteAllChunks: db.prepare<[]>(`DELETE FROM chunks`),
    insertDamaged: db.prepare<[string, Buffer | string | null, number | null, Buffer | null, string, string]>(
      `INSERT INTO damaged_chunks (key, data, size, checksum, reason, detected_at) VALUES (?, ?, ?, ?, ?, ?)`,
    ),
    selectDamaged: db.prepare<[], DamagedRow>(`SELECT key, reason, detected_at FROM damaged_chunks ORDER BY id`),
    selectDocument: db.prepare<[string], DocumentRow>(`SELECT ${DOCUMENT_COLUMNS}, view FROM documents WHERE id = ?`),
    upsertDocument: db.prepare<unknown[]>(
      `INSERT INTO documents (${DOCUMENT_COLUMNS}, view) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, course = excluded.course, audience = excluded.audience,
         owner = excluded.owner, heads = excluded.heads, deleted = excluded.deleted, status = excluded.status,
         problem = excluded.problem, updated_at = excluded.updated_at, view = excluded.view`,
    ),
    bumpGeneration: db.prepare<[]>(
      `INSERT INTO meta (key, value) VALUES ('generation', 1) ON CONFLICT (key) DO UPDATE SET value = value + 1`,
    ),
    selectGeneration: db.prepare<[], { value: number }>(`SELECT value FROM meta WHERE key = 'generation'`),
    bumpSyncCounter: db.prepare<[]>(
      `INSERT INTO meta (key, value) VALUES ('sync_barriers', 1) ON CONFLICT (key) DO UPDATE SET value = value + 1`,
    ),
  };
}
