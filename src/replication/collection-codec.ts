import { createHash } from "node:crypto";
import { isDocUrl, isVerifiedDocUrl, type DocumentId } from "../crdt/ids.js";
import { OrdoError } from "../util/errors.js";

/**
 * The two payloads of collection sync between Ordo peers, as bytes: a summary (what a peer
 * holds) and a batch of documents (each one's saved bytes). Decoding is strict: a truncated
 * entry, a length past the end or an id that is not a document id refuses the whole payload
 * (`ORDO_BAD_COLLECTION`). A summary's ids are only looked up, never stored, so they are
 * checked for shape; a batch's are stored, so their checksum is checked too.
 *
 * A summary comes in two steps. First a digest: the documents fall into `BUCKETS` buckets by
 * id, and each bucket is summed up in 12 bytes. Two peers that hold the same documents at the
 * same heads send equal digests and are done, whatever the number of documents. Otherwise
 * each lists its entries in the buckets that differ (both sides know which, from the two
 * digests), and only those are compared.
 *
 * Then, for the documents both hold at different heads, each side lists its heads; each sends
 * the other the changes it lacks, in a batch, instead of an Automerge sync session per document.
 *
 * Digest:  [1][per bucket: 8 bytes, the XOR of its entries' hashes][u32 big-endian, its entry count].
 * Entries: [2][per entry: u8 id length][id, ASCII][8 bytes: the entry hash].
 * Heads:   [3][per entry: u8 id length][id, ASCII][u8 head count][32 bytes per head].
 * Batch entry: [u8 id length][id, ASCII][u8 head count][32 bytes per head][u32 big-endian length][the document's bytes].
 * The heads are the sender's once the bytes are applied: a receiver that ends there holds what the sender holds.
 */

const HASH_BYTES = 8;
const MAX_ID_BYTES = 64;
export const BUCKETS = 64;
const BUCKET_BYTES = HASH_BYTES + 4;
const DIGEST = 1;
const ENTRIES = 2;
const HEADS = 3;
const HEAD_BYTES = 32;

export interface SummaryEntry {
  id: DocumentId;
  /** `entryHash` of the document at its heads. */
  hash: string;
}

/** A document's heads as the store keys them: hex hashes, sorted, joined by commas. */
export type HeadsKey = string;

export type Summary =
  | { kind: "digest"; digest: Uint8Array }
  | { kind: "entries"; entries: Map<DocumentId, string> }
  | { kind: "heads"; heads: Map<DocumentId, HeadsKey> };

type SummaryToSend =
  | { kind: "digest"; digest: Uint8Array }
  | { kind: "entries"; entries: Iterable<SummaryEntry> }
  | { kind: "heads"; heads: Iterable<{ id: DocumentId; heads: HeadsKey }> };

/** A short, stable fingerprint of a document at its heads (hex): equal heads, equal hashes. */
export function entryHash(id: DocumentId, heads: string): string {
  return createHash("sha256").update(`${id} ${heads}`).digest().subarray(0, HASH_BYTES).toString("hex");
}

/** An id's bucket, from its last character: a base58check id ends in checksum, which spreads evenly. */
export function bucketOf(id: DocumentId): number {
  return id.charCodeAt(id.length - 1) % BUCKETS;
}

/** Per bucket, the XOR of its entries' hashes and their count: the same for the same entries in any order. */
export function digestOf(entries: Iterable<SummaryEntry>): Uint8Array {
  const digest = Buffer.alloc(BUCKETS * BUCKET_BYTES);
  for (const { id, hash } of entries) {
    const at = bucketOf(id) * BUCKET_BYTES;
    const bytes = Buffer.from(hash, "hex");
    for (let i = 0; i < HASH_BYTES; i++) digest[at + i]! ^= bytes[i]!;
    digest.writeUInt32BE(digest.readUInt32BE(at + HASH_BYTES) + 1, at + HASH_BYTES);
  }
  return digest;
}

/** The buckets two digests disagree on. */
export function differingBuckets(ours: Uint8Array, theirs: Uint8Array): Set<number> {
  const out = new Set<number>();
  for (let bucket = 0; bucket < BUCKETS; bucket++) {
    const at = bucket * BUCKET_BYTES;
    if (!Buffer.from(ours.subarray(at, at + BUCKET_BYTES)).equals(theirs.subarray(at, at + BUCKET_BYTES))) out.add(bucket);
  }
  return out;
}

export function encodeSummary(summary: SummaryToSend): Uint8Array {
  if (summary.kind === "digest") return Buffer.concat([Buffer.from([DIGEST]), summary.digest]);
  if (summary.kind === "heads") {
    const parts: Buffer[] = [Buffer.from([HEADS])];
    for (const { id, heads } of summary.heads) parts.push(idBytes(id), headsBytes(heads));
    return Buffer.concat(parts);
  }
  const parts: Buffer[] = [Buffer.from([ENTRIES])];
  for (const { id, hash } of summary.entries) parts.push(idBytes(id), Buffer.from(hash, "hex"));
  return Buffer.concat(parts);
}

export function decodeSummary(data: Uint8Array): Summary {
  const reader = new Reader(data);
  const kind = reader.done ? -1 : reader.bytes(1)[0];
  if (kind === DIGEST) {
    if (data.byteLength !== 1 + BUCKETS * BUCKET_BYTES) throw bad("a digest of the wrong size");
    return { kind: "digest", digest: data.subarray(1) };
  }
  if (kind === HEADS) {
    const heads = new Map<DocumentId, HeadsKey>();
    while (!reader.done) heads.set(reader.id("shape"), reader.heads());
    return { kind: "heads", heads };
  }
  if (kind !== ENTRIES) throw bad("an unknown summary");
  const entries = new Map<DocumentId, string>();
  while (!reader.done) {
    const id = reader.id("shape");
    entries.set(id, Buffer.from(reader.bytes(HASH_BYTES)).toString("hex"));
  }
  return { kind: "entries", entries };
}

/** A document or changes to one in a batch, with the heads the sender holds it at once they are applied. */
export interface BatchEntry {
  id: DocumentId;
  heads: HeadsKey;
  data: Uint8Array;
}

/** Splits documents into batches of about `maxBytes` each (a document larger than that travels alone). */
export function encodeBatches(documents: Iterable<BatchEntry>, maxBytes: number): Uint8Array[] {
  const batches: Uint8Array[] = [];
  let parts: Buffer[] = [];
  let size = 0;
  for (const { id, heads, data } of documents) {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.byteLength);
    const entry = [idBytes(id), headsBytes(heads), length, Buffer.from(data.buffer, data.byteOffset, data.byteLength)];
    const entrySize = entry.reduce((n, b) => n + b.byteLength, 0);
    if (size > 0 && size + entrySize > maxBytes) {
      batches.push(Buffer.concat(parts));
      parts = [];
      size = 0;
    }
    parts.push(...entry);
    size += entrySize;
  }
  if (size > 0) batches.push(Buffer.concat(parts));
  return batches;
}

export function decodeBatch(data: Uint8Array): BatchEntry[] {
  const out: BatchEntry[] = [];
  const reader = new Reader(data);
  while (!reader.done) {
    const id = reader.id();
    const heads = reader.heads();
    const length = reader.u32();
    if (length === 0) throw bad("an empty document");
    out.push({ id, heads, data: reader.bytes(length) });
  }
  return out;
}

/** [u8 head count][32 bytes per head] */
function headsBytes(heads: HeadsKey): Buffer {
  const hashes = heads === "" ? [] : heads.split(",");
  return Buffer.concat([Buffer.from([hashes.length]), ...hashes.map((hash) => Buffer.from(hash, "hex"))]);
}

function idBytes(id: DocumentId): Buffer {
  const bytes = Buffer.from(id, "ascii");
  if (bytes.byteLength === 0 || bytes.byteLength > MAX_ID_BYTES) throw new OrdoError("ORDO_BAD_COLLECTION", `not a document id: ${id}`);
  return Buffer.concat([Buffer.from([bytes.byteLength]), bytes]);
}

function bad(what: string): OrdoError {
  return new OrdoError("ORDO_BAD_COLLECTION", `malformed collection payload: ${what}`);
}

class Reader {
  #offset = 0;
  constructor(private readonly data: Uint8Array) {}

  get done(): boolean {
    return this.#offset >= this.data.byteLength;
  }

  bytes(n: number): Uint8Array {
    if (this.#offset + n > this.data.byteLength) throw bad("an entry runs past the end");
    const out = this.data.subarray(this.#offset, this.#offset + n);
    this.#offset += n;
    return out;
  }

  heads(): HeadsKey {
    const count = this.bytes(1)[0]!;
    return Array.from({ length: count }, () => Buffer.from(this.bytes(HEAD_BYTES)).toString("hex"))
      .sort()
      .join(",");
  }

  u32(): number {
    const b = this.bytes(4);
    return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
  }

  id(check: "shape" | "checksum" = "checksum"): DocumentId {
    const length = this.bytes(1)[0]!;
    if (length === 0 || length > MAX_ID_BYTES) throw bad("an id of impossible length");
    const id = Buffer.from(this.bytes(length)).toString("ascii");
    const url = `automerge:${id}`;
    if (!(check === "shape" ? isDocUrl(url) : isVerifiedDocUrl(url))) throw bad("an id that is not a document id");
    return id as DocumentId;
  }
}
