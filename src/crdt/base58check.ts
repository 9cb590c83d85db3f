import { createHash } from "node:crypto";

/**
 * Base58check, as automerge-repo spells document ids: the payload, then the first 4 bytes of
 * its double SHA-256, in base 58. Ours hashes with Node's native SHA-256; the JavaScript one
 * automerge-repo uses cost more than loading the document when a summary named 10,000 ids.
 */
const ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const DIGIT_OF = new Int8Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) DIGIT_OF[ALPHABET.charCodeAt(i)] = i;

const CHECKSUM_BYTES = 4;

function checksum(payload: Uint8Array): Buffer {
  const once = createHash("sha256").update(payload).digest();
  return createHash("sha256").update(once).digest().subarray(0, CHECKSUM_BYTES);
}

export function encodeBase58Check(payload: Uint8Array): string {
  const bytes = Buffer.concat([payload, checksum(payload)]);
  // Base 256 to base 58, least significant digit first.
  const digits: number[] = [];
  for (const byte of bytes) {
    let carry = byte;
    for (let i = 0; i < digits.length; i++) {
      carry += digits[i]! * 256;
      digits[i] = carry % 58;
      carry = Math.floor(carry / 58);
    }
    for (; carry > 0; carry = Math.floor(carry / 58)) digits.push(carry % 58);
  }
  let zeros = 0;
  while (zeros < bytes.length && bytes[zeros] === 0) zeros++;
  let text = "1".repeat(zeros);
  for (let i = digits.length - 1; i >= 0; i--) text += ALPHABET[digits[i]!];
  return text;
}

/** The payload, or undefined if the text is not base58 or its checksum does not match. */
export function decodeBase58Check(text: string): Uint8Array | undefined {
  // Base 58 to base 256, least significant byte first.
  const bytes: number[] = [];
  for (let c = 0; c < text.length; c++) {
    const code = text.charCodeAt(c);
    let carry = code < 128 ? DIGIT_OF[code]! : -1;
    if (carry < 0) return undefined;
    for (let i = 0; i < bytes.length; i++) {
      carry += bytes[i]! * 58;
      bytes[i] = carry & 0xff;
      carry >>= 8;
    }
    for (; carry > 0; carry >>= 8) bytes.push(carry & 0xff);
  }
  let zeros = 0;
  while (zeros < text.length && text[zeros] === "1") zeros++;
  const full = new Uint8Array(zeros + bytes.length);
  for (let i = 0; i < bytes.length; i++) full[full.length - 1 - i] = bytes[i]!;
  if (full.length <= CHECKSUM_BYTES) return undefined;
  const payload = full.subarray(0, full.length - CHECKSUM_BYTES);
  return checksum(payload).equals(full.subarray(full.length - CHECKSUM_BYTES)) ? payload : undefined;
}
