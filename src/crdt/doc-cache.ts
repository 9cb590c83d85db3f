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

/**
 * A bounded set of live documents, least recently used evicted first.
 * Evicted documents are freed at once: Automerge's wasm memory otherwise grows with every
 * document ever opened, and each growth costs Node a full GC (see HAZARDS: thousands of live
 * documents make every operation several times slower).
 */
export class DocCache {
  readonly #entries = new Map<DocumentId, LiveDoc>();
  /** Documents a caller is loading or working on: never evicted, even past the capacity, until unpinned. */
  readonly #pins = new Map<DocumentId, number>();

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.#entries.size;
  }

  get(id: DocumentId): LiveDoc | undefined {
    const entry = this.#entries.get(id);
    if (entry) {
      this.#entries.delete(id);
      this.#entries.set(id, entry);
    }
    return entry;
  }

  peek(id: DocumentId): LiveDoc | undefined {
    return this.#entries.get(id);
  }

  /** Stores an entry; replacing a document (after a change) does not free the old one, Automerge already retired it. */
  set(id: DocumentId, entry: LiveDoc): void {
    this.#entries.delete(id);
    this.#entries.set(id, entry);
    this.#evictOverflow();
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
      A.free(evicted.doc);
    }
  }

  delete(id: DocumentId): void {
    const entry = this.#entries.get(id);
    if (!entry) return;
    this.#entries.delete(id);
    A.free(entry.doc);
  }

  clear(): void {
    for (const entry of this.#entries.values()) A.free(entry.doc);
    this.#entries.clear();
  }
}
