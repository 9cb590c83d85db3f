import Database from "better-sqlite3";
import type { Chunk, StorageKey } from "@automerge/automerge-repo/slim";
import type { DamagedChunk, DocRecord, DocStorage, RecordQuery, StorageBatch } from "../crdt/doc-storage.js";
import type { DocumentId } from "../crdt/ids.js";
import { createRandom } from "../util/random.js";

/** The ways a write fails on a real machine: a full disk, a failing disk, a file another process holds locked. */
export type StorageFault = "ENOSPC" | "EIO" | "SQLITE_BUSY";

export const STORAGE_FAULTS: readonly StorageFault[] = ["ENOSPC", "EIO", "SQLITE_BUSY"];

export interface FaultyStorageOptions {
  /** The share of write calls that fail, from 0 (none) to 1 (all). */
  rate: number;
  /** Seeds the choice of which writes fail and how, so a failing case replays exactly. */
  seed: number;
  /** The faults to choose from (all of them unless told). */
  faults?: readonly StorageFault[];
}

/**
 * A `DocStorage` whose writes (commit, save, remove, removeRange, sync) fail at a chosen rate
 * with errors shaped like the real ones; reads always pass through. A failed write changes
 * nothing, as a rolled-back SQLite transaction changes nothing. `setRate(0)` stops the faults.
 *
 * @example
 * const storage = new FaultyStorage(openSqliteStorage({ path }), { rate: 0.05, seed: 7 });
 * const store = new DocStore({ storage });
 * // ... writes, 5% of whose commits fail ...
 * storage.setRate(0); // the disk has room again
 */
export class FaultyStorage implements DocStorage {
  readonly #random: () => number;
  readonly #faults: readonly StorageFault[];
  #rate: number;
  /** Writes failed so far, by fault. */
  readonly injected: Record<StorageFault, number> = { ENOSPC: 0, EIO: 0, SQLITE_BUSY: 0 };

  constructor(
    readonly inner: DocStorage,
    options: FaultyStorageOptions,
  ) {
    this.#random = createRandom(options.seed);
    this.#faults = options.faults ?? STORAGE_FAULTS;
    if (this.#faults.length === 0) throw new Error("FaultyStorage needs at least one fault to inject");
    this.#rate = checkedRate(options.rate);
  }

  get rate(): number {
    return this.#rate;
  }

  /** Changes the share of writes that fail; 0 stops the faults. */
  setRate(rate: number): void {
    this.#rate = checkedRate(rate);
  }

  /** Writes failed so far, of every fault. */
  get injectedTotal(): number {
    return Object.values(this.injected).reduce((sum, n) => sum + n, 0);
  }

  // ---- writes: may fail ----------------------------------------------------------------------

  async commit(batch: StorageBatch): Promise<void> {
    this.#maybeFail("commit");
    return this.inner.commit(batch);
  }

  async save(key: StorageKey, data: Uint8Array): Promise<void> {
    this.#maybeFail("save");
    return this.inner.save(key, data);
  }

  async remove(key: StorageKey): Promise<void> {
    this.#maybeFail("remove");
    return this.inner.remove(key);
  }

  async removeRange(keyPrefix: StorageKey): Promise<void> {
    this.#maybeFail("removeRange");
    return this.inner.removeRange(keyPrefix);
  }

  async sync(): Promise<void> {
    this.#maybeFail("sync");
    return this.inner.sync();
  }

  // ---- reads and closing: pass through -------------------------------------------------------

  load(key: StorageKey): Promise<Uint8Array | undefined> {
    return this.inner.load(key);
  }

  loadRange(keyPrefix: StorageKey): Promise<Chunk[]> {
    return this.inner.loadRange(keyPrefix);
  }

  record(id: DocumentId): Promise<DocRecord | undefined> {
    return this.inner.record(id);
  }

  records(query?: RecordQuery): Promise<DocRecord[]> {
    return this.inner.records(query);
  }

  generation(): Promise<number> {
    return this.inner.generation();
  }

  damagedChunks(): Promise<DamagedChunk[]> {
    return this.inner.damagedChunks();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  /** Throws (inside an async method: rejects) before the write reaches the inner storage. */
  #maybeFail(operation: string): void {
    // Drawn on every write, even at rate 0, so which writes fail depends only on the seed and the order of writes.
    const roll = this.#random();
    const pick = this.#random();
    if (roll >= this.#rate) return;
    const fault = this.#faults[Math.floor(pick * this.#faults.length)] ?? "EIO";
    this.injected[fault]++;
    throw storageFaultError(fault, operation);
  }
}

/**
 * An error as the platform raises it: Node's errno errors for the disk (`code`, `errno`,
 * `syscall`), better-sqlite3's `SqliteError` for a locked database.
 */
export function storageFaultError(fault: StorageFault, operation: string): Error {
  switch (fault) {
    case "ENOSPC":
      return Object.assign(new Error(`ENOSPC: no space left on device, write (${operation})`), { code: "ENOSPC", errno: -28, syscall: "write" });
    case "EIO":
      return Object.assign(new Error(`EIO: i/o error, write (${operation})`), { code: "EIO", errno: -5, syscall: "write" });
    case "SQLITE_BUSY":
      return new Database.SqliteError(`database is locked (${operation})`, "SQLITE_BUSY");
  }
}

function checkedRate(rate: number): number {
  if (!(rate >= 0 && rate <= 1)) throw new RangeError(`a fault rate is between 0 and 1, not ${rate}`);
  return rate;
}
