import * as A from "@automerge/automerge";
import { decodeFrame, type ClientOrServerMessage } from "../net/wire.js";
import { decodeBatch } from "../replication/collection-codec.js";

/**
 * Reads the binary messages out of bytes a WebSocket server sent (unmasked frames, as a
 * TCP proxy records them), so a test can see what travelled, not just search raw bytes:
 * Automerge deflates the columns of larger changes, which a byte search would miss.
 */
export function serverMessages(bytes: Uint8Array): ClientOrServerMessage[] {
  const start = httpHeaderEnd(bytes);
  const messages: ClientOrServerMessage[] = [];
  let offset = start;
  let fragments: Uint8Array[] = [];
  while (offset + 2 <= bytes.length) {
    const fin = (bytes[offset]! & 0x80) !== 0;
    const opcode = bytes[offset]! & 0x0f;
    let length = bytes[offset + 1]! & 0x7f;
    let header = 2;
    if (length === 126) {
      length = (bytes[offset + 2]! << 8) | bytes[offset + 3]!;
      header = 4;
    } else if (length === 127) {
      length = Number(new DataView(bytes.buffer, bytes.byteOffset + offset + 2, 8).getBigUint64(0));
      header = 10;
    }
    if (offset + header + length > bytes.length) break;
    const payload = bytes.subarray(offset + header, offset + header + length);
    offset += header + length;
    if (opcode === 0x2 || opcode === 0x0) fragments.push(payload);
    if (!fin || fragments.length === 0) continue;
    const whole = fragments.length === 1 ? fragments[0]! : Buffer.concat(fragments);
    fragments = [];
    try {
      messages.push(decodeFrame(whole));
    } catch {
      // Not a protocol message: nothing a document could hide in.
    }
  }
  return messages;
}

/**
 * Every Automerge change carried among `messages`, decoded (ops and values in the clear): in
 * sync messages, and in the whole documents of collection sync (`ordo-docs`).
 */
export function changesCarried(messages: readonly ClientOrServerMessage[]): A.DecodedChange[] {
  const changes: A.DecodedChange[] = [];
  for (const message of messages) {
    if (message.type === "ordo-docs") for (const doc of decodeBatch(message.data)) changes.push(...decodeChunk(doc.data));
    if ((message.type !== "sync" && message.type !== "request") || !("data" in message)) continue;
    for (const chunk of A.decodeSyncMessage(message.data).changes) changes.push(...decodeChunk(chunk));
  }
  return changes;
}

/** A sync message carries single changes, or a whole saved document to a peer that has none of it. */
function decodeChunk(chunk: Uint8Array): A.DecodedChange[] {
  try {
    return [A.decodeChange(chunk)];
  } catch {
    const doc = A.load(chunk);
    try {
      return A.getAllChanges(doc).map((change) => A.decodeChange(change));
    } finally {
      A.free(doc);
    }
  }
}

function httpHeaderEnd(bytes: Uint8Array): number {
  for (let i = 0; i + 3 < bytes.length; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) return i + 4;
  }
  return 0;
}
