import * as A from "@automerge/automerge";
import type { StorageKey } from "@automerge/automerge-repo/slim";
import type { DocumentId } from "./ids.js";

/** A document held in memory, with what compaction needs to know of its chunks. */
export interface LiveDoc {
  doc: A.Doc<unknown>;
  /** Chunks that hold this document and loaded cleanly (or that we wrote): the only ones compaction may delete. */
  chunkKeys: StorageKey[];
  snapshotBytes: number;
  incrementalBytes: number;
  /** Damaged chunks or changes waiting for missing dependencies: never compact, so nothing is lost. */
  degraded: boolean;
}

/** A document nobody has used for this long is freed, however much room is left. */
export const DEFAULT_IDLE_MS = 60_000;

/**
 * A bounded set of live documents, least recently used evicted first, and none kept once idle.
 * Evicted documents are freed at once: Automerge's wasm memory otherwise grows with every
 * document ever opened, and each growth costs Node a full GC (see HAZARDS: thousands of live
 * documents make every operation several times slower). Freeing idle ones keeps a long-running
 * node's memory at its working set: a relay whose class edits a different document every few
 * seconds would otherwise fill the whole capacity over an hour and hold it.
 */
export class DocCache {
  /** In order of last use, the least recent first: `get` and `set` move an entry to the end. */
  readonly #entries = new Map<DocumentId, LiveDoc>();
  /** When each entry was last used (`performance.now()`), in the same order. */
  readonly #usedAt = new Map<DocumentId, number>();
  /** Documents a caller is loading or working on: never evicted, even past the capacity, until unpinned. */
  readonly #pins = new Map<DocumentId, number>();
  #sweep: NodeJS.Timeout | null = null;

  constructor(
    readonly capacity: number,
    readonly idleMs = DEFAULT_IDLE_MS,
  ) {}

  get size(): number {
    return this.#entries.size;
  }

  get(id: DocumentId): LiveDoc | undefined {
    const entry = this.#entries.get(id);
    if (entry) this.#touch(id, entry);
    return entry;
  }

  peek(id: DocumentId): LiveDoc | undefined {
    return this.#entries.get(id);
  }

  /** Stores an entry; replacing a document (after a change) does not free the old one, Automerge already retired it. */
  set(id: DocumentId, entry: LiveDoc): void {
    this.#touch(id, entry);
    this.#evictOverflow();
    this.#sweep ??= setInterval(() => this.evictIdle(), Math.max(1, this.idleMs / 2)).unref();
  }

  /** Frees the unpinned documents nobody has used for `idleMs`; runs by itself every half of that. */
  evictIdle(now = performance.now()): void {
    for (const [id, usedAt] of this.#usedAt) {
      // In order of use: the first one used recently enough ends the idle ones.
      if (now - usedAt < this.idleMs) break;
      if (!this.#pins.has(id)) this.delete(id);
    }
  }

  #touch(id: DocumentId, entry: LiveDoc): void {
    this.#entries.delete(id);
    this.#entries.set(id, entry);
    this.#usedAt.delete(id);
    this.#usedAt.set(id, performance.now());
  }

  /**
   * Keeps `id` from eviction until as many `unpin` calls. Without it, more callers loading
   * documents at once than the cache holds evict each other's before they can use them, and
   * every one loads again: a thrash that grows with the square of the callers.
   */
  pin(id: DocumentId): void {
    this.#pins.set(id, (this.#pins.get(id) ?? 0) + 1);
  }

  unpin(id: DocumentId): void {
    const left = (this.#pins.get(id) ?? 1) - 1;
    if (left > 0) return void this.#pins.set(id, left);
    this.#pins.delete(id);
    this.#evictOverflow();
  }

  /** Frees the least recently used unpinned documents until the cache is back within its capacity. */
  #evictOverflow(): void {
    if (this.#entries.size <= this.capacity) return;
    for (const [candidate, evicted] of this.#entries) {
      if (this.#entries.size <= this.capacity) break;
      if (this.#pins.has(candidate)) continue;
      this.#entries.delete(candidate);
      this.#usedAt.delete(candidate);
      A.free(evicted.doc);
    }
  }

  delete(id: DocumentId): void {
    const entry = this.#entries.get(id);
    if (!entry) return;
    this.#entries.delete(id);
    this.#usedAt.delete(id);
    A.free(entry.doc);
  }

  /** Frees every document and stops the idle sweep. */
  clear(): void {
    for (const entry of this.#entries.values()) A.free(entry.doc);
    this.#entries.clear();
    this.#usedAt.clear();
    if (this.#sweep) clearInterval(this.#sweep);
    this.#sweep = null;
  }
}
