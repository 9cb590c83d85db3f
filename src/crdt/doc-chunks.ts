import { createHash } from "node:crypto";
import * as A from "@automerge/automerge";
import type { Chunk, StorageKey } from "@automerge/automerge-repo/slim";
import type { DocumentId } from "./ids.js";
import type { LiveDoc } from "./doc-cache.js";
import { isWholeAutomergeData } from "./chunk-frames.js";

/**
 * Chunk keys follow automerge-repo's layout (`[documentId, "snapshot" | "incremental", hash]`),
 * so a stock `Repo` given the same storage reads the same documents.
 */
export function incrementalKey(id: DocumentId, data: Uint8Array): StorageKey {
  return [id, "incremental", sha256Hex(data)];
}

export function snapshotKey(id: DocumentId, heads: A.Heads): StorageKey {
  return [id, "snapshot", sha256Hex(new TextEncoder().encode([...heads].sort().join(",")))];
}

function sha256Hex(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Heads in the one form records and projections compare: sorted, comma-joined. */
export function headsKey(doc: A.Doc<unknown>): string {
  return [...A.getHeads(doc)].sort().join(",");
}

export interface LoadedDoc {
  live: LiveDoc;
  /** Chunks storage returned that are not whole Automerge data (torn or garbled) or that Automerge could not read. */
  unreadable: StorageKey[];
}

/**
 * Rebuilds a document from its chunks, one chunk at a time so that one bad chunk costs
 * only its own changes (loading them concatenated, as the stock loader does, loses every
 * change after the first bad byte). Returns undefined when there is nothing to load.
 */
export function loadFromChunks(chunks: readonly Chunk[]): LoadedDoc | undefined {
  const snapshots = chunks.filter((c) => c.key[1] === "snapshot" && c.data);
  const incrementals = chunks.filter((c) => c.key[1] === "incremental" && c.data);
  if (snapshots.length === 0 && incrementals.length === 0) return undefined;

  let doc: A.Doc<unknown> = A.init();
  const chunkKeys: StorageKey[] = [];
  const unreadable: StorageKey[] = [];
  let snapshotBytes = 0;
  let incrementalBytes = 0;
  for (const chunk of [...snapshots, ...incrementals]) {
    const data = chunk.data as Uint8Array;
    // loadIncremental takes a torn or garbled chunk without an error (it keeps the changes
    // before the damage): without this check such a chunk would count as loaded, and
    // compaction would delete it. Storage that checks its own checksums catches most damage
    // first; this holds whatever the storage.
    if (!isWholeAutomergeData(data)) {
      unreadable.push(chunk.key);
      continue;
    }
    try {
      // A first snapshot loads faster whole than through loadIncremental. Automerge's own
      // integrity check is skipped (`unchecked`, about half the CPU of a load): the frames and
      // their checksums were verified just above. Peers' bytes never come this way.
      doc = chunkKeys.length === 0 && chunk.key[1] === "snapshot" ? replace(doc, A.load(data, { unchecked: true })) : A.loadIncremental(doc, data);
      chunkKeys.push(chunk.key);
      if (chunk.key[1] === "snapshot") snapshotBytes += data.byteLength;
      else incrementalBytes += data.byteLength;
    } catch {
      unreadable.push(chunk.key);
    }
  }
  const waiting = A.getMissingDeps(doc, []).length > 0;
  return {
    live: { doc, chunkKeys, snapshotBytes, incrementalBytes, degraded: unreadable.length > 0 || waiting },
    unreadable,
  };
}

function replace(previous: A.Doc<unknown>, next: A.Doc<unknown>): A.Doc<unknown> {
  A.free(previous);
  return next;
}

/** Due for compaction once incremental chunks outweigh the snapshot, or there are many of them. */
export function shouldCompact(live: LiveDoc): boolean {
  const incrementalCount = live.chunkKeys.filter((k) => k[1] === "incremental").length;
  return !live.degraded && (incrementalCount >= DEFAULT_MAX_INCREMENTALS || live.incrementalBytes > live.snapshotBytes);
}

/** Reading a document pays per chunk; 32 keeps loads fast without rewriting snapshots on every edit. */
export const DEFAULT_MAX_INCREMENTALS = 32;

/**
 * Compact now, on the path of a change: compaction waits for a quiet moment, but a store
 * that is never quiet must not let a document's chunks grow without bound meanwhile.
 */
export function mustCompact(live: LiveDoc): boolean {
  const incrementalCount = live.chunkKeys.filter((k) => k[1] === "incremental").length;
  return !live.degraded && incrementalCount >= 2 * DEFAULT_MAX_INCREMENTALS;
}
