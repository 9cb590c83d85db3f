import { Encoder } from "cbor-x";

/**
 * CBOR made by hand, for what an encoder would never write: lengths that promise more bytes
 * than follow, indefinite lengths, tags, nesting past any limit, invalid UTF-8, map keys
 * that are not text. Everything else goes through the wire's own encoder settings.
 */
const encoder = new Encoder({ useRecords: false, tagUint8Array: false });

export function encodeValue(value: unknown): Uint8Array {
  return encoder.encode(value);
}

/** The head of a CBOR item: major type and argument, in the shortest form (or the 8-byte form when asked). */
export function head(major: number, argument: number | bigint, longForm = false): Uint8Array {
  const value = BigInt(argument);
  const type = major << 5;
  if (!longForm && value < 24n) return new Uint8Array([type | Number(value)]);
  if (!longForm && value < 0x100n) return new Uint8Array([type | 24, Number(value)]);
  if (!longForm && value < 0x10000n) return new Uint8Array([type | 25, Number(value >> 8n), Number(value & 0xffn)]);
  if (!longForm && value < 0x100000000n) {
    const out = Buffer.alloc(5);
    out[0] = type | 26;
    out.writeUInt32BE(Number(value), 1);
    return out;
  }
  const out = Buffer.alloc(9);
  out[0] = type | 27;
  out.writeBigUInt64BE(BigInt.asUintN(64, value), 1);
  return out;
}

/** A text string whose bytes are given as they are, valid UTF-8 or not. */
export function rawText(bytes: Uint8Array): Uint8Array {
  return Buffer.concat([head(3, bytes.byteLength), bytes]);
}

/** A map from text keys to items already encoded: how a message is rebuilt with one field made by hand. */
export function mapOf(entries: Array<[string, Uint8Array]>): Uint8Array {
  return Buffer.concat([head(5, entries.length), ...entries.flatMap(([key, value]) => [encodeValue(key), value])]);
}

/** Items that are not what any field should hold, chosen by `pick` (0 to 1). */
export function craftedItem(pick: number, size: number): { name: string; bytes: Uint8Array } {
  const choices: Array<() => { name: string; bytes: Uint8Array }> = [
    () => ({ name: "byte string declaring 2^63 bytes", bytes: Buffer.concat([head(2, 1n << 63n), Buffer.alloc(size % 16)]) }),
    () => ({ name: "byte string declaring 4 GiB", bytes: Buffer.concat([head(2, 0xffffffff), Buffer.alloc(size % 16)]) }),
    () => ({ name: "text declaring more bytes than follow", bytes: Buffer.concat([head(3, 100 + size), Buffer.from("short")]) }),
    () => ({ name: "array declaring 2^32 items", bytes: Buffer.concat([head(4, 0xffffffff), new Uint8Array([1, 2, 3])]) }),
    () => ({ name: "map declaring 2^62 pairs", bytes: Buffer.concat([head(5, 1n << 62n), encodeValue("a"), encodeValue(1)]) }),
    () => ({ name: "indefinite byte string", bytes: new Uint8Array([0x5f, 0x41, 0x00, 0xff]) }),
    () => ({ name: "indefinite array", bytes: new Uint8Array([0x9f, 0x01, 0x02, 0xff]) }),
    () => ({ name: "indefinite map", bytes: new Uint8Array([0xbf, 0x61, 0x61, 0x01, 0xff]) }),
    () => ({ name: "unterminated indefinite array", bytes: new Uint8Array([0x9f, 0x01]) }),
    () => ({ name: "cbor-x record tag", bytes: new Uint8Array([0xd9, 0xdf, 0xff, 0x82, 0x61, 0x61, 0x01]) }),
    () => ({ name: "shared-reference tag 28 around a cycle", bytes: new Uint8Array([0xd8, 0x1c, 0x81, 0xd8, 0x1d, 0x00]) }),
    () => ({ name: "date tag", bytes: new Uint8Array([0xc1, 0x1a, 0x5f, 0x00, 0x00, 0x00]) }),
    () => ({ name: "bignum tag", bytes: Buffer.concat([new Uint8Array([0xc2]), head(2, 40), Buffer.alloc(40, 0xff)]) }),
    () => ({ name: "typed-array tag", bytes: Buffer.concat([new Uint8Array([0xd8, 0x40]), head(2, 8), Buffer.alloc(8, 1)]) }),
    () => ({ name: `arrays nested ${depth(size)} deep`, bytes: Buffer.concat([Buffer.alloc(depth(size), 0x81), new Uint8Array([0x00])]) }),
    () => ({ name: `maps nested ${depth(size)} deep`, bytes: Buffer.concat([...Array.from({ length: depth(size) }, () => new Uint8Array([0xa1, 0x61, 0x6b])), new Uint8Array([0xf6])]) }),
    () => ({ name: `${10_001 + size} items`, bytes: Buffer.concat([head(4, 10_001 + size), Buffer.alloc(10_001 + size)]) }),
    () => ({ name: "invalid UTF-8 text", bytes: rawText(new Uint8Array([0x61, 0xc3, 0x28, 0xff, 0xfe, 0xed, 0xa0, 0x80])) }),
    () => ({ name: "overlong UTF-8 NUL", bytes: rawText(new Uint8Array([0xc0, 0x80])) }),
    () => ({ name: "map with an integer key", bytes: new Uint8Array([0xa1, 0x01, 0x02]) }),
    () => ({ name: "map with a byte-string key", bytes: new Uint8Array([0xa1, 0x41, 0x61, 0x02]) }),
    () => ({ name: "map with a duplicate key", bytes: Buffer.concat([head(5, 2), encodeValue("k"), encodeValue(1), encodeValue("k"), encodeValue("x")]) }),
    () => ({ name: "map with key __proto__", bytes: Buffer.concat([head(5, 1), encodeValue("__proto__"), encodeValue({ polluted: true })]) }),
    () => ({ name: "reserved simple value", bytes: new Uint8Array([0xf8, 0x20]) }),
    () => ({ name: "reserved additional information", bytes: new Uint8Array([0x1c]) }),
    () => ({ name: "break outside an indefinite item", bytes: new Uint8Array([0xff]) }),
    () => ({ name: "negative integer -2^64", bytes: Buffer.concat([head(1, 0xffffffffffffffffn)]) }),
    () => ({ name: "half float NaN", bytes: new Uint8Array([0xf9, 0x7e, 0x00]) }),
    () => ({ name: "truncated 8-byte head", bytes: new Uint8Array([0x1b, 0x00, 0x00]) }),
    () => ({ name: "nothing at all", bytes: new Uint8Array() }),
  ];
  return choices[Math.floor(pick * choices.length)]!();
}

/** Depths around the wire's limit of 16, and far past it. */
function depth(size: number): number {
  return [15, 16, 17, 32, 1_000, 100_000][size % 6]!;
}
