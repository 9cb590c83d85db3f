import { createHash } from "node:crypto";
import { inflateRawSync } from "node:zlib";

/**
 * Whether `data` is whole Automerge data: one or more Automerge chunks (a document, a change,
 * a compressed change), back to back to its last byte, each with a matching checksum.
 *
 * Automerge's `loadIncremental` does not fail on damaged bytes: it applies the changes before
 * the damage and drops the rest without a word (a torn or garbled chunk loads as no change at
 * all). A stored chunk that loads that way would count as loaded cleanly, and compaction would
 * then delete it. Checking the frames first lets the loader set such a chunk aside, whether or
 * not the storage checks its own checksums.
 *
 * A chunk is `magic (4) | checksum (4) | type (1) | uLEB128 length | body`; the checksum is the
 * first 4 bytes of the SHA-256 of `type | length | body`, of the uncompressed change for a
 * compressed one.
 */
export function isWholeAutomergeData(data: Uint8Array): boolean {
  if (data.byteLength === 0) return false;
  for (let at = 0; at < data.byteLength; ) {
    const end = verifiedChunkEnd(data, at);
    if (end === undefined) return false;
    at = end;
  }
  return true;
}

const MAGIC = [0x85, 0x6f, 0x4a, 0x83] as const;
const HEADER_BYTES = MAGIC.length + 4 + 1;
const CHANGE_TYPE = 1;
const COMPRESSED_CHANGE_TYPE = 2;

/** Where the chunk starting at `at` ends, or undefined if it is cut short or fails its checksum. */
function verifiedChunkEnd(data: Uint8Array, at: number): number | undefined {
  if (at + HEADER_BYTES > data.byteLength) return undefined;
  if (MAGIC.some((byte, i) => data[at + i] !== byte)) return undefined;
  const type = data[at + 8]!;
  const length = readUleb(data, at + HEADER_BYTES);
  if (!length) return undefined;
  const end = length.next + length.value;
  if (end > data.byteLength) return undefined;
  const expected = data.subarray(at + 4, at + 8);
  let hashed: Uint8Array = data.subarray(at + 8, end);
  if (type === COMPRESSED_CHANGE_TYPE) {
    try {
      const change = inflateRawSync(data.subarray(length.next, end));
      hashed = Buffer.concat([Uint8Array.of(CHANGE_TYPE), encodeUleb(change.byteLength), change]);
    } catch {
      return undefined;
    }
  }
  const actual = createHash("sha256").update(hashed).digest();
  return expected.every((byte, i) => actual[i] === byte) ? end : undefined;
}

function readUleb(data: Uint8Array, at: number): { value: number; next: number } | undefined {
  let value = 0;
  // A length beyond 2^53 is damage anyway; stopping at 8 bytes keeps the arithmetic exact.
  for (let shift = 0, i = at; i < data.byteLength && shift < 56; shift += 7, i++) {
    const byte = data[i]!;
    value += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return { value, next: i + 1 };
  }
  return undefined;
}

function encodeUleb(value: number): Uint8Array {
  const bytes: number[] = [];
  do {
    const low = value % 128;
    value = Math.floor(value / 128);
    bytes.push(value > 0 ? low | 0x80 : low);
  } while (value > 0);
  return Uint8Array.from(bytes);
}
