import { createHash } from "node:crypto";
import type { Chunk, StorageKey } from "@automerge/automerge-repo/slim";
import type { DamagedChunk, DocRecord, DocStorage, RecordQuery, StorageBatch } from "../crdt/doc-storage.js";
import type { DocumentId } from "../crdt/ids.js";

/**
 * What a power loss does to the writes not yet synced, after the idea of SQLite's crash tests
 * (test_vfs "crash" simulation): writes since the last sync may be lost, written in part, or
 * written as garbage; everything synced before survives.
 *
 * - `transactions` is SQLite in WAL mode: each unsynced transaction (a commit batch, a single
 *   save or remove) survives whole or is lost whole, and those that survive are the first
 *   ones (WAL recovery stops at the first frame whose cumulative checksum fails).
 * - `torn-writes` models a store without that atomicity or order, such as chunks kept in
 *   files: each unsynced transaction, independently of the others, survives, is lost, or is
 *   cut part way. Its writes land in order
 *   (chunk saves, then removes, then records, as the SQLite adapter applies them); at the cut
 *   a chunk save is torn (its bytes cut short) or garbled (bytes flipped), a remove or record
 *   is lost, and every later write of the transaction is lost. A damaged save never replaces
 *   bytes already stored under its key (as a write to a new file and a rename would not).
 *
 * Damaged bytes keep the size and checksum of the bytes that were meant (the index row landed,
 * the data did not). With `checksums` on, reads verify them as `SqliteStorageAdapter` does: a
 * damaged chunk is set aside in `damagedChunks()`, reported through `onDamage` and not
 * returned. With it off, the damaged bytes reach the document loader, which must catch them.
 *
 * @example
 * const storage = new PowerLossStorage({ checksums: true });
 * const store = new DocStore({ storage });
 * // ... writes, some durable ...
 * const { storage: after } = storage.crash(createRandom(7), "torn-writes");
 * const reopened = new DocStore({ storage: after }); // over what survived
 */
export class PowerLossStorage implements DocStorage {
  readonly #options: PowerLossOptions;
  /** What survives a power loss: everything synced. */
  readonly #durable: DiskState;
  /** What reads see: the durable state with every unsynced transaction applied. */
  readonly #current: DiskState;
  readonly #unsynced: Transaction[] = [];
  #poweredOff = false;
  #chunksRemoved = 0;

  constructor(options: PowerLossOptions, survived?: DiskState) {
    this.#options = options;
    this.#durable = survived ?? { chunks: new Map(), records: new Map(), damaged: [], generation: 0 };
    this.#current = cloneState(this.#durable);
  }

  /**
   * Cuts the power: this storage refuses every call from now on (its store is gone), and the
   * returned storage, with the same options, holds what survived (see the model above).
   */
  crash(random: () => number, model: CrashModel): { storage: PowerLossStorage; report: CrashReport } {
    this.#poweredOff = true;
    const report: CrashReport = { model, unsynced: this.#unsynced.length, kept: 0, lost: 0, cut: 0, torn: [], garbled: [] };
    const survived = cloneState(this.#durable);
    if (model === "transactions") {
      const surviving = Math.floor(random() * (this.#unsynced.length + 1));
      for (const transaction of this.#unsynced.slice(0, surviving)) applyTransaction(survived, transaction);
      report.kept = surviving;
      report.lost = this.#unsynced.length - surviving;
    } else {
      for (const transaction of this.#unsynced) {
        const fate = random();
        if (fate < 0.4) {
          report.kept++;
          applyTransaction(survived, transaction);
        } else if (fate < 0.7) {
          report.lost++;
        } else {
          report.cut++;
          this.#applyCut(survived, transaction, random, report);
        }
      }
    }
    return { storage: new PowerLossStorage(this.#options, survived), report };
  }

  /** Chunk removes written so far (compactions replace chunks with a snapshot). */
  get chunksRemoved(): number {
    return this.#chunksRemoved;
  }

  /** Every chunk key stored now, in insertion order, damaged or not (for checks; no verification). */
  storedKeys(prefix: StorageKey = []): StorageKey[] {
    return [...this.#current.chunks.values()].filter((chunk) => hasPrefix(chunk.key, prefix)).map((chunk) => chunk.key);
  }

  /** A document's chunks as stored, without verification or setting aside (for checks). */
  storedChunks(prefix: StorageKey): Array<Chunk & { damaged: boolean }> {
    return [...this.#current.chunks.values()].filter((chunk) => hasPrefix(chunk.key, prefix)).map((chunk) => ({ key: chunk.key, data: chunk.data, damaged: chunk.damage !== undefined }));
  }

  /** Keys of stored chunks a crash damaged (torn or garbled), still stored. */
  damagedKeys(): StorageKey[] {
    return [...this.#current.chunks.values()].filter((chunk) => chunk.damage !== undefined).map((chunk) => chunk.key);
  }

  // ---- writes: volatile until sync ----------------------------------------------------------

  async commit(batch: StorageBatch): Promise<void> {
    this.#assertPowered();
    for (const { data } of batch.save ?? []) if (data.byteLength === 0) throw new Error("refusing to store an empty chunk");
    this.#chunksRemoved += batch.remove?.length ?? 0;
    this.#write([
      ...(batch.save ?? []).map(({ key, data }): Write => ({ op: "save", key, data: Uint8Array.from(data) })),
      ...(batch.remove ?? []).map((key): Write => ({ op: "remove", key })),
      ...(batch.records ?? []).map((record): Write => ({ op: "record", record: structuredClone(record) })),
    ]);
  }

  async save(key: StorageKey, data: Uint8Array): Promise<void> {
    this.#assertPowered();
    this.#write([{ op: "save", key, data: Uint8Array.from(data) }]);
  }

  async remove(key: StorageKey): Promise<void> {
    this.#assertPowered();
    this.#write([{ op: "remove", key }]);
  }

  async removeRange(keyPrefix: StorageKey): Promise<void> {
    this.#assertPowered();
    this.#write([{ op: "removeRange", prefix: keyPrefix }]);
  }

  /** The durability barrier: every transaction so far survives a power loss from here on. */
  async sync(): Promise<void> {
    this.#assertPowered();
    for (const transaction of this.#unsynced.splice(0)) applyTransaction(this.#durable, transaction);
  }

  // ---- reads ------------------------------------------------------------------------------------

  async load(key: StorageKey): Promise<Uint8Array | undefined> {
    this.#assertPowered();
    const chunk = this.#current.chunks.get(encodeKey(key));
    return chunk && this.#verified(chunk);
  }

  async loadRange(keyPrefix: StorageKey): Promise<Chunk[]> {
    this.#assertPowered();
    const chunks: Chunk[] = [];
    for (const chunk of [...this.#current.chunks.values()]) {
      if (!hasPrefix(chunk.key, keyPrefix)) continue;
      const data = this.#verified(chunk);
      if (data) chunks.push({ key: chunk.key, data });
    }
    return chunks;
  }

  async record(id: DocumentId): Promise<DocRecord | undefined> {
    this.#assertPowered();
    const record = this.#current.records.get(id);
    return record && structuredClone(record);
  }

  async records(query: RecordQuery = {}): Promise<DocRecord[]> {
    this.#assertPowered();
    return [...this.#current.records.values()]
      .filter((r) => (query.course === undefined || r.course === query.course) && (query.kind === undefined || r.kind === query.kind))
      .filter((r) => (query.status === undefined || r.status === query.status) && (query.includeDeleted || !r.deleted))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .map(({ view: _view, ...listed }) => structuredClone(listed));
  }

  async generation(): Promise<number> {
    this.#assertPowered();
    return this.#current.generation;
  }

  async damagedChunks(): Promise<DamagedChunk[]> {
    this.#assertPowered();
    return this.#current.damaged.map((chunk) => ({ ...chunk }));
  }

  async close(): Promise<void> {}

  // ---- internals ----------------------------------------------------------------------------

  #write(transaction: Transaction): void {
    applyTransaction(this.#current, transaction);
    this.#unsynced.push(transaction);
  }

  /** Applies the writes of `transaction` before a seeded cut; the write at the cut lands damaged or not at all. */
  #applyCut(state: DiskState, transaction: Transaction, random: () => number, report: CrashReport): void {
    const cut = Math.floor(random() * transaction.length);
    const before = transaction.slice(0, cut);
    applyTransaction(state, before);
    const atCut = transaction[cut];
    if (atCut?.op !== "save" || state.chunks.has(encodeKey(atCut.key))) return;
    const torn = random() < 0.5;
    const data = torn ? atCut.data.slice(0, Math.floor(random() * atCut.data.byteLength)) : garble(atCut.data, random);
    state.chunks.set(encodeKey(atCut.key), { key: atCut.key, data, size: atCut.data.byteLength, checksum: sha256(atCut.data), damage: torn ? "torn" : "garbled" });
    (torn ? report.torn : report.garbled).push(atCut.key);
  }

  /** The chunk's bytes, or (with checksums on) undefined once a damaged chunk is set aside and reported. */
  #verified(chunk: StoredChunk): Uint8Array | undefined {
    if (!this.#options.checksums) return Uint8Array.from(chunk.data);
    const reason = chunk.data.byteLength === 0 ? "empty" : chunk.data.byteLength !== chunk.size ? "length" : !sha256(chunk.data).equals(chunk.checksum) ? "checksum" : undefined;
    if (reason === undefined) return Uint8Array.from(chunk.data);
    const damaged: DamagedChunk = { key: chunk.key, reason, detectedAt: new Date().toISOString() };
    // Set aside at once and for good, as the adapter's quarantine transaction does.
    const encoded = encodeKey(chunk.key);
    for (const state of [this.#current, this.#durable]) {
      if (state.chunks.get(encoded) !== chunk) continue;
      state.chunks.delete(encoded);
      state.damaged.push(damaged);
    }
    this.#options.onDamage?.(damaged);
    return undefined;
  }

  #assertPowered(): void {
    if (this.#poweredOff) throw new Error("the power is off: this storage lost its unsynced writes");
  }
}

export interface PowerLossOptions {
  /** Verify each chunk's SHA-256 on read and set damaged ones aside, as the SQLite adapter does. */
  checksums: boolean;
  /** Called once per chunk set aside (only with `checksums`). */
  onDamage?: (chunk: DamagedChunk) => void;
}

export type CrashModel = "transactions" | "torn-writes";

/** What a crash did to the unsynced transactions. */
export interface CrashReport {
  model: CrashModel;
  unsynced: number;
  kept: number;
  lost: number;
  cut: number;
  torn: StorageKey[];
  garbled: StorageKey[];
}

interface StoredChunk {
  key: StorageKey;
  data: Uint8Array;
  /** The size and checksum of the bytes that were written (a damaged chunk's no longer match). */
  size: number;
  checksum: Buffer;
  /** How a crash damaged it: known to the model (for checks), never consulted by reads. */
  damage?: "torn" | "garbled";
}

export interface DiskState {
  /** By encoded key, in insertion order: an overwrite keeps its place, as the adapter's upsert does. */
  chunks: Map<string, StoredChunk>;
  records: Map<DocumentId, DocRecord>;
  damaged: DamagedChunk[];
  generation: number;
}

type Write = { op: "save"; key: StorageKey; data: Uint8Array } | { op: "remove"; key: StorageKey } | { op: "removeRange"; prefix: StorageKey } | { op: "record"; record: DocRecord };
type Transaction = Write[];

function applyTransaction(state: DiskState, transaction: Transaction): void {
  for (const write of transaction) {
    if (write.op === "save") state.chunks.set(encodeKey(write.key), { key: write.key, data: write.data, size: write.data.byteLength, checksum: sha256(write.data) });
    else if (write.op === "remove") state.chunks.delete(encodeKey(write.key));
    else if (write.op === "record") state.records.set(write.record.id, write.record);
    else for (const [encoded, chunk] of state.chunks) if (hasPrefix(chunk.key, write.prefix)) state.chunks.delete(encoded);
  }
  state.generation++;
}

/** Chunks and records are never mutated in place, so sharing them between states is safe. */
function cloneState(state: DiskState): DiskState {
  return { chunks: new Map(state.chunks), records: new Map(state.records), damaged: [...state.damaged], generation: state.generation };
}

/** Changes one to three bytes, each at its own place, so the damage never cancels out. */
function garble(data: Uint8Array, random: () => number): Uint8Array {
  const out = Uint8Array.from(data);
  const places = new Set(Array.from({ length: 1 + Math.floor(random() * 3) }, () => Math.floor(random() * out.byteLength)));
  for (const at of places) out[at] = out[at]! ^ (1 + Math.floor(random() * 255));
  return out;
}

function encodeKey(key: StorageKey): string {
  return key.join("\u001f");
}

function hasPrefix(key: StorageKey, prefix: StorageKey): boolean {
  return prefix.every((part, i) => key[i] === part);
}

function sha256(data: Uint8Array): Buffer {
  return createHash("sha256").update(data).digest();
}
