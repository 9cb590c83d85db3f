import { craftedItem, encodeValue, mapOf } from "./cbor-craft.js";
import type { Message } from "./corpus.js";

type Random = () => number;

/** One message as a fuzz case sends it: a binary frame's payload, and what was done to it. */
export interface MessageAttack {
  what: string;
  payload: Uint8Array;
}

const int = (random: Random, below: number) => Math.floor(random() * below);
const pick = <T>(random: Random, items: readonly T[]): T => items[int(random, items.length)]!;

/**
 * A mutation of one of the real `messages`: its bytes damaged, a field of the wrong shape, a
 * field replaced by hand-made CBOR, its Automerge payload damaged, or its sequence number
 * wrong. Everything comes from `random`, so the case number decides it all.
 */
export function messageAttack(random: Random, messages: ReadonlyArray<{ name: string; message: Message }>): MessageAttack {
  const { name, message } = pick(random, messages);
  const roll = random();
  if (roll < 0.22) {
    const { what, bytes } = damageBytes(random, encodeValue(message));
    return { what: `${name}, CBOR bytes ${what}`, payload: bytes };
  }
  if (roll < 0.44) return wrongShape(random, name, message);
  if (roll < 0.6) {
    const field = pick(random, [...Object.keys(message), "type", "senderId", "data", "extra"]);
    const item = craftedItem(random(), int(random, 1_000));
    const entries: Array<[string, Uint8Array]> = Object.entries(message).map(([key, value]) => [key, key === field ? item.bytes : encodeValue(value)]);
    if (!(field in message)) entries.push([field, item.bytes]);
    return { what: `${name}, ${field} = ${item.name}`, payload: mapOf(entries) };
  }
  if (roll < 0.9 && message["data"] instanceof Uint8Array) {
    const { what, bytes } = damagePayload(random, name, message["data"]);
    return { what: `${name}, data ${what}`, payload: encodeValue({ ...message, data: bytes }) };
  }
  if (roll < 0.95) {
    const item = craftedItem(random(), int(random, 1_000));
    return { what: `a whole message that is ${item.name}`, payload: item.bytes };
  }
  const seq = pick(random, [0, -1, 2, 1.5, 2 ** 53, "1", null, true]);
  return { what: `${name}, ordoSeq ${JSON.stringify(seq)}`, payload: encodeValue({ ...message, ordoSeq: seq }) };
}

/** Bytes with a bit flipped, a byte set, a range cut, inserted, doubled, or the end cut off. */
export function damageBytes(random: Random, original: Uint8Array): { what: string; bytes: Uint8Array } {
  const bytes = Buffer.from(original);
  const at = int(random, Math.max(1, bytes.length));
  const span = 1 + int(random, 16);
  switch (int(random, 7)) {
    case 0: {
      const bit = int(random, 8);
      if (bytes.length > 0) bytes[at] = bytes[at]! ^ (1 << bit);
      return { what: `bit ${bit} of byte ${at} flipped`, bytes };
    }
    case 1: {
      const value = int(random, 256);
      if (bytes.length > 0) bytes[at] = value;
      return { what: `byte ${at} set to ${value}`, bytes };
    }
    case 2:
      return { what: `bytes ${at}..${at + span} cut`, bytes: Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + span)]) };
    case 3:
      return { what: `${span} random bytes inserted at ${at}`, bytes: Buffer.concat([bytes.subarray(0, at), randomBytes(random, span), bytes.subarray(at)]) };
    case 4:
      return { what: `bytes ${at}..${at + span} doubled`, bytes: Buffer.concat([bytes.subarray(0, at + span), bytes.subarray(at)]) };
    case 5:
      return { what: `cut to ${at} bytes`, bytes: bytes.subarray(0, at) };
    default:
      return { what: `${span} random bytes appended`, bytes: Buffer.concat([bytes, randomBytes(random, span)]) };
  }
}

const WRONG_VALUES: Array<[string, () => unknown]> = [
  ["0", () => 0],
  ["-1", () => -1],
  ["1.5", () => 1.5],
  ["NaN", () => NaN],
  ["Infinity", () => Infinity],
  ["2^53", () => 2 ** 53],
  ["2^64-1", () => 2n ** 64n - 1n],
  ["-2^63", () => -(2n ** 63n)],
  ["true", () => true],
  ["null", () => null],
  ["undefined", () => undefined],
  ['""', () => ""],
  ["129 characters", () => "x".repeat(129)],
  ["5,000 characters", () => "y".repeat(5_000)],
  ["not base58", () => "0OIl0OIl0OIl"],
  ["a NUL", () => "\u0000"],
  ["lone surrogates", () => "\ud800\udfff\ud800"],
  ["empty bytes", () => new Uint8Array()],
  ["300 bytes", () => new Uint8Array(300).fill(7)],
  ["[]", () => []],
  ['[1,"a",null]', () => [1, "a", null]],
  ["{}", () => ({})],
  ["a map holding a join", () => ({ type: "join", senderId: "x" })],
  ["arrays 20 deep", () => nest(20)],
  ["a Map with integer keys", () => new Map([[1, 2]])],
  ["a Date", () => new Date(0)],
  ["a Set", () => new Set([1])],
];

function nest(depth: number): unknown {
  let value: unknown = 0;
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

/** A field removed, set to a value of the wrong kind, or added; or the type renamed. */
function wrongShape(random: Random, name: string, message: Message): MessageAttack {
  const keys = Object.keys(message);
  const roll = random();
  if (roll < 0.15) {
    const field = pick(random, keys);
    const { [field]: _removed, ...rest } = message;
    return { what: `${name} without ${field}`, payload: encodeValue(rest) };
  }
  if (roll < 0.25) {
    const type = pick(random, ["", "JOIN", "sync ", "peer", "ordo-docs", "ordo-summary", "ordo-unknown", "constructor", "__proto__", "toString", "x".repeat(200)]);
    return { what: `${name} with type ${JSON.stringify(type.slice(0, 20))}`, payload: encodeValue({ ...message, type }) };
  }
  const field = roll < 0.9 ? pick(random, keys) : pick(random, ["peerMetadata", "count", "sessionId", "newHeads", "add", "targetId", "documentId", "supportedProtocolVersions"]);
  const [valueName, value] = pick(random, WRONG_VALUES);
  if (field === "peerMetadata" && random() < 0.5) {
    const key = pick(random, ["ordoSeq", "ordoCollection", "ordoNonce", "ordoProof", "ordoToken"]);
    return { what: `${name} with peerMetadata.${key} = ${valueName}`, payload: encodeValue({ ...message, peerMetadata: { ordoSeq: true, [key]: value() } }) };
  }
  return { what: `${name} with ${field} = ${valueName}`, payload: encodeValue({ ...message, [field]: value() }) };
}

/**
 * The Automerge sync message, saved document or collection payload inside a message,
 * damaged: the relay hands these to Automerge's decoders and to the collection codec.
 */
function damagePayload(random: Random, name: string, data: Uint8Array): { what: string; bytes: Uint8Array } {
  const roll = random();
  if (roll < 0.6) return damageBytes(random, data);
  if (roll < 0.7) return { what: "random bytes", bytes: randomBytes(random, 1 + int(random, 400)) };
  if (roll < 0.8) return { what: "random bytes after a sync message's first byte", bytes: Buffer.concat([data.subarray(0, 1), randomBytes(random, 1 + int(random, 200))]) };
  if (roll < 0.9 && name.startsWith("ordo-docs")) {
    // A batch entry: [u8 id length][id][u8 head count][32 bytes per head][u32 length][bytes].
    const bytes = Buffer.from(data);
    const idLength = bytes[0] ?? 0;
    const headCountAt = 1 + idLength;
    const lengthAt = headCountAt + 1 + 32 * (bytes[headCountAt] ?? 0);
    if (random() < 0.5 && lengthAt + 4 <= bytes.length) {
      const lie = pick(random, [0, 1, 0xffffffff, bytes.length, bytes.length - lengthAt]);
      bytes.writeUInt32BE(lie, lengthAt);
      return { what: `batch length set to ${lie}`, bytes };
    }
    const count = pick(random, [0, 2, 255]);
    bytes[headCountAt] = count;
    return { what: `batch head count set to ${count}`, bytes };
  }
  // Many copies of the payload back to back: larger, and wrong in a repeating way.
  const copies = 2 + int(random, 50);
  return { what: `${copies} copies end to end`, bytes: Buffer.concat(Array.from({ length: copies }, () => data)) };
}

function randomBytes(random: Random, length: number): Buffer {
  const bytes = Buffer.alloc(length);
  for (let i = 0; i < length; i++) bytes[i] = int(random, 256);
  return bytes;
}
