import type { Chunk, StorageKey } from "@automerge/automerge-repo/slim";
import { OrdoError } from "../util/errors.js";
import type { DocRecord, DocStorage } from "./doc-storage.js";
import type { DocumentId } from "./ids.js";

/** Writes waiting for the next commit. */
export interface WriteBatch {
  save: Array<{ key: StorageKey; data: Uint8Array }>;
  remove: StorageKey[];
  records: Map<DocumentId, DocRecord>;
  /** Announcements of the batch's changes, made once it is committed (and only then). */
  notify: Array<() => void>;
}

export interface GroupCommitHooks {
  /** Runs first in each commit, and may add to the batch (the store adds catalog edits here). */
  beforeCommit(): Promise<void>;
  /** Runs once a batch is committed, before its announcements. */
  afterCommit(batch: WriteBatch): void;
  /** A commit failed; its writes are kept and retried. */
  onError(error: unknown): void;
}

/** A failed commit (a full disk, a locked file) is retried after this pause rather than in a busy loop. */
export const DEFAULT_RETRY_MS = 1_000;

/**
 * Group commit: every write queued during one tick lands in one storage transaction, and
 * every writer's promise resolves once that transaction is committed. A failed commit keeps
 * its writes and retries them, so a failing disk loses nothing that is still in memory.
 */
export class GroupCommit {
  pending: WriteBatch = emptyBatch();
  /** The batch being committed right now, so readers meanwhile still see its writes. */
  inFlight: WriteBatch | null = null;
  /** A commit not started yet: it will carry every write queued before it starts. */
  #scheduled: Promise<void> | null = null;
  #running: Promise<void> | null = null;
  #stopped = false;
  /** The last commit failed: its writes wait in `pending` for a retry. */
  #failing = false;

  constructor(
    private readonly storage: DocStorage,
    private readonly hooks: GroupCommitHooks,
  ) {}

  /** Resolves once the writes queued so far are committed. */
  schedule(): Promise<void> {
    this.#scheduled ??= new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        this.#scheduled = null;
        const run = (this.#running ?? Promise.resolve()).catch(() => undefined).then(() => this.#commit());
        this.#running = run;
        run.then(resolve, reject).finally(() => {
          if (this.#running === run) this.#running = null;
        });
      });
    });
    return this.#scheduled;
  }

  /**
   * True from a failed commit until a commit succeeds: storage is refusing writes, and what
   * was written since lives only in memory.
   */
  get failing(): boolean {
    return this.#failing;
  }

  /**
   * Resolves once nothing is scheduled or running and the writes queued so far are committed;
   * rejects if committing them fails.
   */
  async flush(): Promise<void> {
    // Writes a failed commit put back wait for a retry timer, with nothing scheduled: without
    // this, a flush (and so a close, or a durability barrier) would pass over them.
    if (this.#failing) void this.schedule().catch(() => undefined);
    for (let next = this.#scheduled ?? this.#running; next; next = this.#scheduled ?? this.#running) await next;
  }

  /** The newest record queued or being committed, if any. */
  record(id: DocumentId): DocRecord | undefined {
    return this.pending.records.get(id) ?? this.inFlight?.records.get(id);
  }

  /** The records of every write not committed yet, the newest of each document. */
  queuedRecords(): Map<DocumentId, DocRecord> {
    return new Map([...(this.inFlight?.records ?? []), ...this.pending.records]);
  }

  /** A document's stored chunks, corrected by the writes not committed yet. */
  withQueued(id: DocumentId, stored: readonly Chunk[]): Chunk[] {
    const queued = [this.inFlight, this.pending].filter((batch) => batch !== null);
    const removed = new Set(queued.flatMap((batch) => batch.remove.map((key) => key.join("/"))));
    return [...stored.filter((chunk) => !removed.has(chunk.key.join("/"))), ...queued.flatMap((batch) => batch.save.filter((chunk) => chunk.key[0] === id))];
  }

  /** Stops retrying failed commits (the store is closing). */
  stop(): void {
    this.#stopped = true;
  }

  async #commit(): Promise<void> {
    try {
      await this.hooks.beforeCommit();
    } catch (error) {
      // Nothing was taken off the queue: the next attempt carries it all.
      throw this.#failed(error);
    }
    const batch = this.pending;
    if (batch.save.length === 0 && batch.remove.length === 0 && batch.records.size === 0 && batch.notify.length === 0) {
      this.#failing = false;
      return;
    }
    this.pending = emptyBatch();
    this.inFlight = batch;
    try {
      await this.storage.commit({ save: batch.save, remove: batch.remove, records: [...batch.records.values()] });
    } catch (error) {
      this.pending.save.unshift(...batch.save);
      this.pending.remove.unshift(...batch.remove);
      this.pending.notify.unshift(...batch.notify);
      for (const [id, record] of batch.records) if (!this.pending.records.has(id)) this.pending.records.set(id, record);
      throw this.#failed(error);
    } finally {
      this.inFlight = null;
    }
    // Every write a failed commit put back went into this batch: none is left waiting.
    this.#failing = false;
    this.hooks.afterCommit(batch);
    for (const announce of batch.notify) announce();
  }

  #failed(error: unknown): OrdoError {
    this.#failing = true;
    this.hooks.onError(error);
    if (!this.#stopped) setTimeout(() => void this.schedule().catch(() => undefined), DEFAULT_RETRY_MS).unref();
    return new OrdoError("ORDO_STORAGE", "could not write documents to storage; they stay queued and are retried", { cause: error });
  }
}

function emptyBatch(): WriteBatch {
  return { save: [], remove: [], records: new Map(), notify: [] };
}
