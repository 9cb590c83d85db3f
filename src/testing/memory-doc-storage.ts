import type { Chunk, StorageKey } from "@automerge/automerge-repo/slim";
import type { DamagedChunk, DocRecord, DocStorage, RecordQuery, StorageBatch } from "../crdt/doc-storage.js";
import type { DocumentId } from "../crdt/ids.js";

/** A `DocStorage` in memory, for tests of layers above storage. Insertion-ordered like the SQLite one. */
export class MemoryDocStorage implements DocStorage {
  readonly chunks = new Map<string, Chunk>();
  readonly recordsById = new Map<DocumentId, DocRecord>();
  syncs = 0;
  commits = 0;

  async load(key: StorageKey): Promise<Uint8Array | undefined> {
    return this.chunks.get(encode(key))?.data;
  }
  async save(key: StorageKey, data: Uint8Array): Promise<void> {
    this.chunks.set(encode(key), { key, data });
  }
  async remove(key: StorageKey): Promise<void> {
    this.chunks.delete(encode(key));
  }
  async loadRange(prefix: StorageKey): Promise<Chunk[]> {
    return [...this.chunks.values()].filter((c) => prefix.every((part, i) => c.key[i] === part));
  }
  async removeRange(prefix: StorageKey): Promise<void> {
    for (const chunk of await this.loadRange(prefix)) this.chunks.delete(encode(chunk.key));
  }
  async commit(batch: StorageBatch): Promise<void> {
    for (const { key, data } of batch.save ?? []) this.chunks.set(encode(key), { key, data });
    for (const key of batch.remove ?? []) this.chunks.delete(encode(key));
    for (const record of batch.records ?? []) this.recordsById.set(record.id, record);
    this.commits++;
  }
  async generation(): Promise<number> {
    return this.commits;
  }
  async record(id: DocumentId): Promise<DocRecord | undefined> {
    return this.recordsById.get(id);
  }
  async records(query: RecordQuery = {}): Promise<DocRecord[]> {
    return [...this.recordsById.values()]
      .filter((r) => (query.course === undefined || r.course === query.course) && (query.kind === undefined || r.kind === query.kind))
      .filter((r) => (query.status === undefined || r.status === query.status) && (query.includeDeleted || !r.deleted))
      .sort((a, b) => (a.id < b.id ? -1 : 1));
  }
  async sync(): Promise<void> {
    this.syncs++;
  }
  async damagedChunks(): Promise<DamagedChunk[]> {
    return [];
  }
  async close(): Promise<void> {}
}

function encode(key: StorageKey): string {
  return key.join("\u001f");
}
