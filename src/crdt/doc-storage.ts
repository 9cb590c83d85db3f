import type { StorageAdapterInterface, StorageKey } from "@automerge/automerge-repo/slim";
import type { DocumentId, DocUrl } from "./ids.js";

/**
 * What the store knows of a document without loading it: enough to list a course,
 * to find what the projection has not seen yet, and (later) to authorize a peer.
 * Derived from the document, so it can always be rebuilt from the chunks.
 */
export interface DocRecord {
  id: DocumentId;
  /** An entity kind, or `catalog` for a course catalog partition. */
  kind: string;
  course: DocUrl | null;
  /** See `Audience`. */
  audience: string;
  owner: DocUrl | null;
  /** The document's heads, sorted and joined with commas. */
  heads: string;
  deleted: boolean;
  /** `invalid` documents are quarantined: kept, reported, never projected. */
  status: "ok" | "invalid";
  /** Why a document is invalid. */
  problem: string | null;
  updatedAt: string;
  /**
   * The document's plain values at `heads`, as JSON (see `DocView`), written in the same
   * transaction as its chunks. Returned by `record(id)` only; listings leave it out.
   */
  view?: string | null;
}

export interface RecordQuery {
  course?: DocUrl;
  kind?: string;
  status?: DocRecord["status"];
  includeDeleted?: boolean;
}

/** Whether `record` is one that `query` asks for: what a storage's `records(query)` filters by. */
export function answersQuery(record: DocRecord, query: RecordQuery): boolean {
  return (
    (query.course === undefined || record.course === query.course) &&
    (query.kind === undefined || record.kind === query.kind) &&
    (query.status === undefined || record.status === query.status) &&
    (query.includeDeleted === true || !record.deleted)
  );
}

/** A set of writes that land together or not at all. */
export interface StorageBatch {
  save?: ReadonlyArray<{ key: StorageKey; data: Uint8Array }>;
  remove?: ReadonlyArray<StorageKey>;
  records?: ReadonlyArray<DocRecord>;
}

/** A stored chunk that failed its checksum or could not be read. It is set aside, never deleted. */
export interface DamagedChunk {
  key: StorageKey;
  reason: "empty" | "checksum" | "length";
  detectedAt: string;
}

/**
 * The storage the document store needs: automerge-repo's chunk interface (so a stock
 * `Repo` can use it too), plus atomic batches, the document index and a durability barrier.
 * Implemented over SQLite here; a relay can implement it over PostgreSQL.
 */
export interface DocStorage extends StorageAdapterInterface {
  /** Applies every write of the batch in one transaction. */
  commit(batch: StorageBatch): Promise<void>;
  record(id: DocumentId): Promise<DocRecord | undefined>;
  records(query?: RecordQuery): Promise<DocRecord[]>;
  /** Resolves once everything committed so far survives a power loss, not just a crash. */
  sync(): Promise<void>;
  /**
   * A number that grows with every committed write. A reader that remembers it (the
   * projection, at a clean shutdown) knows on the next start whether anything changed since.
   */
  generation(): Promise<number>;
  /** Chunks set aside as damaged since the store was created. */
  damagedChunks(): Promise<DamagedChunk[]>;
  close(): Promise<void>;
}
