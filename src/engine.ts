import { existsSync, mkdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Kysely } from "kysely";
import { DocStore, type DocChange, type DocStoreOptions } from "./crdt/doc-store.js";
import type { DocStorage } from "./crdt/doc-storage.js";
import { docUrlOf, documentIdOf, type DocUrl } from "./crdt/ids.js";
import { openSqliteStorage } from "./crdt/sqlite-storage-adapter.js";
import type { Database } from "./projection/database.js";
import { openProjectionDb, type ProjectionDb } from "./projection/projection-db.js";
import { clearCompleteAt, readCompleteAt, writeCompleteAt } from "./projection/projection-state.js";
import { createProjectionRunner, type CatchUpOptions, type CatchUpResult, type ProjectionChange, type ProjectionRunner, type ProjectionSource } from "./projection/projection-runner.js";
import { systemClock, type Clock } from "./util/clock.js";
import { OrdoError } from "./util/errors.js";
import { silentLogger, type Logger } from "./util/logger.js";

/** Documents projected per transaction while following live changes. */
export const DEFAULT_PROJECTION_BATCH = 500;
/** A failed projection (a full disk, a locked file) is retried after this pause rather than in a busy loop. */
export const DEFAULT_PROJECTION_RETRY_MS = 1_000;

export interface EngineOptions {
  /** The node's data directory: `store.sqlite` (documents) and `projection.sqlite` (tables). */
  dataDir: string;
  /** Create the directory when it does not exist (otherwise a missing directory is an error). */
  create?: boolean;
  /** Documents kept in memory at most. */
  cacheSize?: number;
  clock?: Clock;
  logger?: Logger;
  /**
   * Bring the projection schema to the latest migration and catch up on open (default true).
   * `ordo migrate` opens without, to move the schema one step at a time.
   */
  migrate?: boolean;
  /** Which catalog partitions this node keeps (see `DocStoreOptions.maintainsCatalog`). */
  maintainsCatalog?: DocStoreOptions["maintainsCatalog"];
  /** When documents are compacted (see `DocStoreOptions.compaction`). */
  compaction?: DocStoreOptions["compaction"];
  /** Wraps the document storage opened for the store, e.g. to inject faults in tests. */
  wrapStorage?: (storage: DocStorage) => DocStorage;
}

/** What a node holds, for `ordo status` and `/status`. */
export interface EngineStatus {
  dataDir: string;
  documents: number;
  byKind: Record<string, number>;
  deleted: number;
  quarantined: number;
  damagedChunks: number;
  /** Storage is refusing writes: changes wait in memory and are retried (see `DocStore.writesFailing`). */
  writesFailing: boolean;
  projected: number;
  projectionPending: number;
  /** Projection runs that failed since the engine opened (their documents were retried). */
  projectionFailures: number;
  /** The last projection run failed, and its documents wait for a retry. */
  projectionFailing: boolean;
  liveDocuments: number;
}

/**
 * A node's engine: the document store and its SQL projection, wired together.
 * This is the one composition root; each layer below knows only its own seams.
 *
 * @example
 * const engine = await Engine.open({ dataDir: "./.ordo", create: true });
 * const course = await engine.docs.create("course", { name: "Biology 101" });
 * await engine.whenProjected();
 * const rows = await engine.db.selectFrom("courses").selectAll().execute();
 * await engine.close();
 */
export class Engine {
  readonly #storage: DocStorage;
  readonly #projection: ProjectionDb;
  readonly #runner: ProjectionRunner;
  readonly #logger: Logger;
  readonly #dirty = new Set<DocUrl>();
  #projecting: Promise<unknown> | null = null;
  /** Every write to the projection goes through this chain, so an older snapshot never lands after a newer one. */
  #writes: Promise<unknown> = Promise.resolve();
  #failures = 0;
  #failing = false;
  #closed = false;
  /** False when opened without migrating (`ordo migrate`): the state table may not exist. */
  #tracksCompleteness: boolean;
  /** What the catch-up at open did; null when the projection was already complete. */
  #startup: CatchUpResult | null = null;
  readonly #onChange = (change: DocChange) => this.#queue(change.url);

  private constructor(
    readonly dataDir: string,
    readonly docs: DocStore,
    storage: DocStorage,
    projection: ProjectionDb,
    logger: Logger,
    tracksCompleteness: boolean,
  ) {
    this.#tracksCompleteness = tracksCompleteness;
    this.#storage = storage;
    this.#projection = projection;
    this.#runner = createProjectionRunner(projection.db);
    this.#logger = logger;
    docs.on("doc-changed", this.#onChange);
  }

  /** Opens a node's data directory, migrates its projection and resumes projecting where it stopped. */
  static async open(options: EngineOptions): Promise<Engine> {
    const dataDir = resolve(options.dataDir);
    if (!existsSync(dataDir)) {
      if (!options.create) throw new OrdoError("ORDO_NO_DATA", `no data directory at ${dataDir} (run \`ordo init\` first)`);
      mkdirSync(dataDir, { recursive: true });
    } else if (!statSync(dataDir).isDirectory()) {
      throw new OrdoError("ORDO_NO_DATA", `${dataDir} is not a directory`);
    } else if (!options.create && !existsSync(join(dataDir, "store.sqlite"))) {
      // An existing but foreign directory is not a node: do not write into it unasked.
      throw new OrdoError("ORDO_NO_DATA", `no node in ${dataDir} (run \`ordo init\` first)`);
    }
    const logger = options.logger ?? silentLogger;
    const opened = openSqliteStorage({
      path: join(dataDir, "store.sqlite"),
      clock: options.clock,
      onDamage: (chunk) => logger.error({ key: chunk.key, reason: chunk.reason }, "damaged chunk set aside"),
    });
    const storage = options.wrapStorage?.(opened) ?? opened;
    let projection: ProjectionDb;
    try {
      projection = await openProjectionDb({ path: join(dataDir, "projection.sqlite"), migrate: options.migrate ?? true });
    } catch (error) {
      await storage.close();
      throw error;
    }
    const docs = new DocStore({ storage, cacheSize: options.cacheSize, clock: options.clock ?? systemClock, logger, maintainsCatalog: options.maintainsCatalog, compaction: options.compaction });
    const engine = new Engine(dataDir, docs, storage, projection, logger, options.migrate ?? true);
    if (engine.#tracksCompleteness) {
      try {
        await engine.#resume();
      } catch (error) {
        // Close without claiming the projection complete: the next open must catch up again.
        engine.#tracksCompleteness = false;
        await engine.close().catch(() => undefined);
        throw error;
      }
    }
    return engine;
  }

  /**
   * After a clean shutdown the projection records the store generation it was complete at;
   * if the store has not been written since, there is nothing to compare. Otherwise (a crash,
   * another writer) it catches up by comparing every document's heads. The marker is removed
   * while the engine runs, so a crash at any point leads to a full catch-up next time.
   */
  async #resume(): Promise<void> {
    const completeAt = await readCompleteAt(this.db);
    if (completeAt === undefined || completeAt !== (await this.#storage.generation())) this.#startup = await this.catchUp();
    await clearCompleteAt(this.db);
  }

  /** What opening had to project: null when the projection was already complete. */
  get startup(): CatchUpResult | null {
    return this.#startup;
  }

  /** The projected tables, typed. */
  get db(): Kysely<Database> {
    return this.#projection.db;
  }

  /** The projection database's migrations (`ordo migrate`). */
  get migrations(): Pick<ProjectionDb, "status" | "up" | "down" | "latest"> {
    return this.#projection;
  }

  /** Projects whatever the tables do not reflect yet (after a restart, a crash, or a failed batch). */
  async catchUp(options: CatchUpOptions = {}): Promise<CatchUpResult> {
    return this.#serially(() => this.#runner.catchUp(this.#source(), options));
  }

  /** Drops every projected row and projects all documents again. */
  async rebuild(options: CatchUpOptions = {}): Promise<CatchUpResult> {
    await this.whenProjected();
    return this.#serially(() => this.#runner.rebuild(this.#source(), options));
  }

  /** Resolves once every change made or received so far is in the tables; rejects if projecting them fails. */
  async whenProjected(): Promise<void> {
    await this.docs.flush();
    while (this.#projecting || this.#dirty.size > 0) {
      const error = await (this.#projecting ?? this.#projectNow());
      if (error) throw new OrdoError("ORDO_PROJECTION", "could not project the latest changes", { cause: error });
    }
  }

  /** Storage is refusing writes; the changes wait in memory and are retried. */
  get writesFailing(): boolean {
    return this.docs.writesFailing;
  }

  /** What the node holds. Answers while storage refuses writes: it counts what is stored, and says so. */
  async status(): Promise<EngineStatus> {
    // A failing disk must not take the report down with it (`/healthz` reads it).
    await this.docs.flush().catch(() => undefined);
    const records = await this.#storage.records({ includeDeleted: true });
    const byKind: Record<string, number> = {};
    let deleted = 0;
    let quarantined = 0;
    for (const record of records) {
      byKind[record.kind] = (byKind[record.kind] ?? 0) + 1;
      if (record.deleted) deleted++;
      if (record.status === "invalid") quarantined++;
    }
    const projected = await this.db.selectFrom("doc_heads").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
    return {
      dataDir: this.dataDir,
      documents: records.length,
      byKind,
      deleted,
      quarantined,
      damagedChunks: (await this.#storage.damagedChunks()).length,
      writesFailing: this.docs.writesFailing,
      projected: Number(projected.n),
      projectionPending: this.#dirty.size,
      projectionFailures: this.#failures,
      projectionFailing: this.#failing,
      liveDocuments: this.docs.liveCount,
    };
  }

  /** Finishes pending writes and projection, then closes both databases. Every step runs even if one fails. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const errors: unknown[] = [];
    const attempt = async (step: () => Promise<unknown>) => step().catch((error: unknown) => errors.push(error));
    await attempt(() => this.whenProjected());
    await attempt(() => this.docs.close());
    // Writes flushed by closing the store are projected too, before the marker says "complete".
    await attempt(() => this.whenProjected());
    this.docs.off("doc-changed", this.#onChange);
    if (errors.length === 0 && this.#tracksCompleteness) {
      // The store is synced first: a power cut must not leave a marker newer than the documents.
      await attempt(async () => {
        await this.#storage.sync();
        await writeCompleteAt(this.db, await this.#storage.generation());
      });
    }
    await attempt(() => this.#storage.close());
    await attempt(() => this.#projection.close());
    if (errors.length > 0) throw new OrdoError("ORDO_CLOSE", "the engine did not close cleanly", { cause: errors[0] });
  }

  #serially<T>(write: () => Promise<T>): Promise<T> {
    const next = this.#writes.catch(() => undefined).then(write);
    this.#writes = next;
    return next;
  }

  #source(): ProjectionSource {
    return {
      list: async () =>
        (await this.docs.records({ includeDeleted: true })).map((r) => ({ url: docUrlOf(r.id), kind: r.kind, heads: r.heads, status: r.status, deleted: r.deleted })),
      snapshot: (url) => this.docs.snapshot(url),
    };
  }

  #queue(url: DocUrl): void {
    this.#dirty.add(url);
    this.#projecting ??= this.#projectNow();
  }

  /**
   * Projects the queued documents in batches, one run at a time. A failed run keeps its
   * documents queued, logs, and is retried after a pause; it never throws out of an event.
   */
  #projectNow(): Promise<unknown> {
    const run = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.#projectDirty())
      .then(
        () => {
          this.#failing = false;
        },
        (error: unknown) => {
          this.#failures++;
          this.#failing = true;
          this.#logger.error({ err: error }, "projection failed; the documents stay queued and are retried");
          setTimeout(() => {
            if (!this.#closed && this.#dirty.size > 0) this.#projecting ??= this.#projectNow();
          }, DEFAULT_PROJECTION_RETRY_MS).unref();
          return error;
        },
      )
      .finally(() => {
        if (this.#projecting === run) this.#projecting = null;
      });
    this.#projecting = run;
    return run;
  }

  async #projectDirty(): Promise<void> {
    while (this.#dirty.size > 0) {
      const batch = [...this.#dirty].slice(0, DEFAULT_PROJECTION_BATCH);
      // Off the queue before reading: a change arriving meanwhile queues its document again.
      for (const url of batch) this.#dirty.delete(url);
      const changes: ProjectionChange[] = [];
      for (const url of batch) {
        const record = await this.#storage.record(documentIdOf(url));
        if (!record) changes.push({ url, status: "removed" });
        else if (record.kind === "catalog") continue;
        else if (record.status === "invalid") changes.push({ url, kind: record.kind, heads: record.heads, status: "invalid" });
        else {
          const snapshot = await this.docs.snapshot(url);
          changes.push(snapshot ?? { url, status: "removed" });
        }
      }
      try {
        await this.#serially(() => this.#runner.apply(changes));
      } catch (error) {
        for (const url of batch) this.#dirty.add(url);
        throw error;
      }
    }
  }
}
