import type { DocumentId } from "./ids.js";

export interface CompactionTiming {
  /** Documents due are compacted once the store has written nothing for this long. */
  quietMs: number;
  /** ...and never later than this after the first of them became due, however busy the store. */
  latestMs: number;
}

export const DEFAULT_COMPACTION_TIMING: CompactionTiming = { quietMs: 1_000, latestMs: 30_000 };

/**
 * When documents due for compaction are compacted: in a quiet moment, not on the path of the
 * change that made them due. Compacting rewrites a document's whole snapshot; done inline,
 * the edit that crosses the threshold would wait for it, on every peer holding the document
 * at once (a teacher's edit reaching a class).
 */
export class CompactionSchedule {
  readonly #due = new Set<DocumentId>();
  #firstDueAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(
    private readonly compact: (ids: DocumentId[]) => void,
    private readonly timing: CompactionTiming = DEFAULT_COMPACTION_TIMING,
  ) {}

  /** A document is due: its incremental chunks outweigh its snapshot. */
  due(id: DocumentId): void {
    if (this.#stopped) return;
    if (this.#due.size === 0) this.#firstDueAt = performance.now();
    this.#due.add(id);
    this.wrote();
  }

  /** The store wrote something: the quiet period starts again. */
  wrote(): void {
    if (this.#due.size === 0 || this.#stopped) return;
    clearTimeout(this.#timer);
    const wait = Math.max(0, Math.min(this.timing.quietMs, this.#firstDueAt + this.timing.latestMs - performance.now()));
    this.#timer = setTimeout(() => this.runNow(), wait).unref();
  }

  /** Compacts what is due now (the store is closing: a quiet moment by definition). */
  runNow(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const ids = [...this.#due];
    this.#due.clear();
    if (ids.length > 0 && !this.#stopped) this.compact(ids);
  }

  /** Nothing more is compacted (the store is closing; compaction can always wait for the next run). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#due.clear();
  }
}
