import { createHash } from "node:crypto";
import { isDocUrl, isVerifiedDocUrl, type DocumentId } from "../crdt/ids.js";
import { OrdoError } from "../util/errors.js";

/**
 * The two payloads of collection sync between Ordo peers, as bytes: a summary (which
 * documents a peer holds, and a hash of each one's heads) and a batch of documents (each
 * one's saved bytes). Decoding is strict: a truncated entry, a length past the end or an id
 * that is not a document id refuses the whole payload (`ORDO_BAD_COLLECTION`). A summary's ids
 * are only looked up, never stored, so they are checked for shape; a batch's are stored, so
 * their checksum is checked too.
 *
 * Summary entry: [u8 id length][id, ASCII][8 bytes: the heads hash].
 * Batch entry:   [u8 id length][id, ASCII][u32 big-endian length][the document's bytes].
 */

const HASH_BYTES = 8;
const MAX_ID_BYTES = 64;

/** A short, stable fingerprint of a document's heads: equal heads, equal hashes. */
export function headsHash(heads: string): Uint8Array {
  return createHash("sha256").update(heads).digest().subarray(0, HASH_BYTES);
}

export function encodeSummary(entries: Iterable<{ id: DocumentId; heads: string }>): Uint8Array {
  const parts: Buffer[] = [];
  for (const { id, heads } of entries) parts.push(idBytes(id), Buffer.from(headsHash(heads)));
  return Buffer.concat(parts);
}

/** Document id to its heads hash (hex). */
export function decodeSummary(data: Uint8Array): Map<DocumentId, string> {
  const out = new Map<DocumentId, string>();
  const reader = new Reader(data);
  while (!reader.done) {
    const id = reader.id("shape");
    out.set(id, Buffer.from(reader.bytes(HASH_BYTES)).toString("hex"));
  }
  return out;
}

export function hashHex(heads: string): string {
  return Buffer.from(headsHash(heads)).toString("hex");
}

/** Splits documents into batches of about `maxBytes` each (a document larger than that travels alone). */
export function encodeBatches(documents: Iterable<{ id: DocumentId; data: Uint8Array }>, maxBytes: number): Uint8Array[] {
  const batches: Uint8Array[] = [];
  let parts: Buffer[] = [];
  let size = 0;
  for (const { id, data } of documents) {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.byteLength);
    const entry = [idBytes(id), length, Buffer.from(data.buffer, data.byteOffset, data.byteLength)];
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

export function decodeBatch(data: Uint8Array): Array<{ id: DocumentId; data: Uint8Array }> {
  const out: Array<{ id: DocumentId; data: Uint8Array }> = [];
  const reader = new Reader(data);
  while (!reader.done) {
    const id = reader.id();
    const length = reader.u32();
    if (length === 0) throw bad("an empty document");
    out.push({ id, data: reader.bytes(length) });
  }
  return out;
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
