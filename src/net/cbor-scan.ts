/**
 * A walk over untrusted CBOR before any decoder sees it. It accepts only the subset the sync
 * protocol's encoders produce (cbor-x with `useRecords: false, tagUint8Array: false`):
 * integers, byte and text strings, arrays, maps with text keys, false/true/null/undefined
 * and floats, all of definite length. It rejects tags (cbor-x gives them meaning: records,
 * shared references that build cycles, packed tables, calls to global constructors),
 * indefinite lengths, nesting past `maxDepth` and more than `maxItems` items, so the decoder
 * that runs next can neither recurse deeply nor build large structures from a small frame.
 * Iterative: a hostile frame cannot overflow the stack here either.
 */
export interface CborScanLimits {
  maxDepth: number;
  maxItems: number;
}

interface Container {
  /** Items still expected (a map counts keys and values). */
  remaining: number;
  isMap: boolean;
}

/** Returns why `bytes` is not one acceptable CBOR item, or undefined if it is. */
export function scanCbor(bytes: Uint8Array, limits: CborScanLimits): string | undefined {
  const stack: Container[] = [];
  let position = 0;
  let items = 0;

  for (;;) {
    if (position >= bytes.length) return "truncated CBOR";
    const parent = stack[stack.length - 1];
    const isKey = parent !== undefined && parent.isMap && parent.remaining % 2 === 0;
    const initial = bytes[position]!;
    const major = initial >> 5;
    const info = initial & 0x1f;
    position += 1;
    if (++items > limits.maxItems) return `more than ${limits.maxItems} CBOR items`;
    if (isKey && major !== 3) return "map key is not a text string";

    let argument: number;
    if (info < 24) {
      argument = info;
    } else if (info <= 27) {
      const size = 1 << (info - 24);
      if (position + size > bytes.length) return "truncated CBOR";
      argument = readUint(bytes, position, size);
      position += size;
    } else if (info === 31) {
      return "indefinite-length CBOR item";
    } else {
      return "reserved CBOR additional information";
    }

    switch (major) {
      case 0:
      case 1:
        break;
      case 2:
      case 3:
        if (argument > bytes.length - position) return "CBOR string longer than the frame";
        position += argument;
        break;
      case 4:
      case 5: {
        const count = major === 5 ? argument * 2 : argument;
        // Each item takes at least one byte: a count the frame cannot hold is a lie.
        if (count > bytes.length - position) return "CBOR container longer than the frame";
        if (count > 0) {
          if (stack.length >= limits.maxDepth) return `CBOR nested deeper than ${limits.maxDepth}`;
          stack.push({ remaining: count, isMap: major === 5 });
          continue;
        }
        break;
      }
      case 6:
        return "CBOR tag";
      case 7:
        // 20-23: false, true, null, undefined; 25-27: half, single and double floats.
        if (!(info >= 20 && info <= 23) && !(info >= 25 && info <= 27)) return "CBOR simple value";
        break;
    }

    // One item complete: close every container it completes.
    for (;;) {
      const top = stack[stack.length - 1];
      if (top === undefined) {
        return position === bytes.length ? undefined : "trailing bytes after the CBOR item";
      }
      top.remaining -= 1;
      if (top.remaining > 0) break;
      stack.pop();
    }
  }
}

function readUint(bytes: Uint8Array, offset: number, size: number): number {
  let value = 0;
  for (let i = 0; i < size; i++) value = value * 256 + bytes[offset + i]!;
  // Above 2^53 the value is imprecise, but only its magnitude matters here: every use
  // compares it with the bytes left in the frame.
  return value;
}
