import { Decoder, Encoder } from "cbor-x";
import { OrdoError } from "../util/errors.js";
import { scanCbor } from "./cbor-scan.js";
import { DEFAULT_LINK_LIMITS, type LinkLimits } from "./limits.js";
import type { DocMessage } from "./peer-link.js";

/** The only protocol version of automerge-repo's WebSocket protocol. */
export const PROTOCOL_VERSION = "1";

type Metadata = Record<string, unknown>;

/** Client → server: who I am, which protocol versions I speak. */
export interface JoinMessage {
  type: "join";
  senderId: string;
  peerMetadata: Metadata;
  supportedProtocolVersions: string[];
}

/** Server → client: the answer to a `join`. */
export interface PeerMessage {
  type: "peer";
  senderId: string;
  targetId: string;
  peerMetadata: Metadata;
  selectedProtocolVersion: string;
}

/** Either side, just before it closes the connection. */
export interface ErrorMessage {
  type: "error";
  senderId: string;
  targetId: string;
  message: string;
}

/** An older client's goodbye. */
export interface LeaveMessage {
  type: "leave";
  senderId: string;
}

/** Messages a stock repo sends that we check and then drop: we do not act on them. */
export interface IgnoredMessage {
  type: "ephemeral" | "remote-subscription-change" | "remote-heads-changed";
  senderId: string;
  targetId: string;
  documentId?: string;
}

/** A document message as it travels, with its sequence number between Ordo peers. */
/**
 * Between peers that number their messages (both announced `ordoSeq`): "I have sent you
 * `count` numbered messages". Unnumbered itself, it follows a burst once the sender falls
 * quiet, and every ping interval: a message lost at the end of a burst, which no later
 * numbered message would reveal, is noticed then.
 */
export interface SentCountMessage {
  type: "ordo-sent";
  senderId: string;
  targetId: string;
  count: number;
}

export type WireDocMessage = DocMessage & { ordoSeq?: number };

/** Every message of the protocol, after its shape was checked. */
export type ClientOrServerMessage =
  | JoinMessage
  | PeerMessage
  | ErrorMessage
  | LeaveMessage
  | WireDocMessage
  | SentCountMessage
  | IgnoredMessage;

/** Why a frame is not the protocol. */
export type WireProblem = "empty" | "too-large" | "not-binary" | "bad-cbor" | "bad-shape" | "unknown-type";

/** A frame that is not the protocol. The connection that sent it is closed (`malformedMessage`). */
export class WireError extends OrdoError {
  constructor(
    readonly problem: WireProblem,
    message: string,
    options?: { cause?: unknown },
  ) {
    super("ORDO_WIRE_MALFORMED", message, options);
    this.name = "WireError";
  }
}

const MAX_PEER_ID = 128;
const MAX_DOCUMENT_ID = 64;
/** Error texts and protocol version names are short; longer ones are not the protocol. */
const MAX_SHORT_STRING = 1024;
const MAX_VERSIONS = 16;
const BASE58 = /^[1-9A-HJ-NP-Za-km-z]+$/;

// Same settings as automerge-repo's own encoder, so stock peers read what we write.
const encoder = new Encoder({ useRecords: false, tagUint8Array: false });
const decoder = new Decoder({ useRecords: false, mapsAsObjects: true });

/** The limits `decodeFrame` enforces (see `LinkLimits`). */
export type WireLimits = Pick<LinkLimits, "maxFrameBytes" | "maxDepth" | "maxItems">;

/**
 * Decodes and checks one binary frame; throws `WireError` on anything that is not the
 * protocol. The structure is checked (size, depth, items, no tags) before cbor-x runs.
 */
export function decodeFrame(bytes: Uint8Array, limits: WireLimits = DEFAULT_LINK_LIMITS): ClientOrServerMessage {
  if (bytes.byteLength === 0) throw new WireError("empty", "empty frame");
  if (bytes.byteLength > limits.maxFrameBytes) {
    throw new WireError("too-large", `frame of ${bytes.byteLength} bytes over the ${limits.maxFrameBytes} cap`);
  }
  const problem = scanCbor(bytes, limits);
  if (problem !== undefined) throw new WireError("bad-cbor", problem);
  let value: unknown;
  try {
    value = decoder.decode(bytes);
  } catch (cause) {
    throw new WireError("bad-cbor", "CBOR that does not decode", { cause });
  }
  return checkMessage(value);
}

/** Encodes a message as automerge-repo's peers expect it (a CBOR map, byte strings untagged). */
export function encodeFrame(message: ClientOrServerMessage): Uint8Array {
  return encoder.encode(message);
}

/** Checks the shape of a decoded value and returns a message holding only the known fields. */
export function checkMessage(value: unknown): ClientOrServerMessage {
  if (!isPlainObject(value)) throw shape("message is not a map");
  const type = value["type"];
  if (typeof type !== "string") throw shape("type is not a string");
  const senderId = peerId(value, "senderId");
  switch (type) {
    case "join": {
      const versions = value["supportedProtocolVersions"];
      if (!Array.isArray(versions) || versions.length > MAX_VERSIONS || !versions.every(isShortString)) {
        throw shape("supportedProtocolVersions is not an array of strings");
      }
      return { type, senderId, peerMetadata: metadata(value), supportedProtocolVersions: versions as string[] };
    }
    case "peer": {
      const selectedProtocolVersion = value["selectedProtocolVersion"];
      if (!isShortString(selectedProtocolVersion)) throw shape("selectedProtocolVersion is not a string");
      const targetId = peerId(value, "targetId");
      return { type, senderId, targetId, peerMetadata: metadata(value), selectedProtocolVersion };
    }
    case "error": {
      const message = value["message"];
      if (!isShortString(message)) throw shape("error message is not a short string");
      return { type, senderId, targetId: peerId(value, "targetId"), message };
    }
    case "leave":
      return { type, senderId };
    case "sync":
    case "request": {
      const data = value["data"];
      if (!(data instanceof Uint8Array) || data.byteLength === 0) throw shape(`${type} data is not non-empty bytes`);
      return withSeq(value, {
        type,
        senderId,
        targetId: peerId(value, "targetId"),
        documentId: documentId(value),
        data: asPlainBytes(data),
      });
    }
    case "doc-unavailable":
      return withSeq(value, { type, senderId, targetId: peerId(value, "targetId"), documentId: documentId(value) });
    case "ordo-summary":
    case "ordo-docs": {
      const data = value["data"];
      // An empty summary is meaningful: "I hold nothing you may read".
      if (!(data instanceof Uint8Array) || (type === "ordo-docs" && data.byteLength === 0)) throw shape(`${type} data is not bytes`);
      return withSeq(value, { type, senderId, targetId: peerId(value, "targetId"), data: asPlainBytes(data) });
    }
    case "ordo-sent": {
      const count = value["count"];
      if (typeof count !== "number" || !Number.isSafeInteger(count) || count < 0) throw shape("count is not a whole number");
      return { type, senderId, targetId: peerId(value, "targetId"), count };
    }
    case "ordo-offered": {
      const count = value["count"];
      if (typeof count !== "number" || !Number.isSafeInteger(count) || count < 0) throw shape("count is not a whole number");
      return withSeq(value, { type, senderId, targetId: peerId(value, "targetId"), count });
    }
    case "ephemeral": {
      if (!(value["data"] instanceof Uint8Array)) throw shape("ephemeral data is not bytes");
      if (typeof value["count"] !== "number" || !isShortString(value["sessionId"])) {
        throw shape("ephemeral count or sessionId is missing");
      }
      return { type, senderId, targetId: peerId(value, "targetId"), documentId: documentId(value) };
    }
    case "remote-subscription-change": {
      for (const field of ["add", "remove"]) {
        const list = value[field];
        if (list !== undefined && (!Array.isArray(list) || !list.every(isShortString))) {
          throw shape(`${field} is not an array of strings`);
        }
      }
      return { type, senderId, targetId: peerId(value, "targetId") };
    }
    case "remote-heads-changed":
      if (!isPlainObject(value["newHeads"])) throw shape("newHeads is not a map");
      return { type, senderId, targetId: peerId(value, "targetId"), documentId: documentId(value) };
    default:
      throw new WireError("unknown-type", `unknown message type ${JSON.stringify(type.slice(0, 40))}`);
  }
}

/** Document messages are the ones a link hands on; the rest the transport handles or drops. */
export function isDocMessage(message: ClientOrServerMessage): message is WireDocMessage {
  return message.type === "sync" || message.type === "request" || message.type === "doc-unavailable" || message.type === "ordo-offered" || message.type === "ordo-summary" || message.type === "ordo-docs";
}

function withSeq(value: Metadata, message: DocMessage): WireDocMessage {
  const seq = value["ordoSeq"];
  if (seq === undefined) return message;
  if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 1) throw shape("ordoSeq is not a positive integer");
  return { ...message, ordoSeq: seq };
}

function peerId(value: Metadata, field: string): string {
  const id = value[field];
  if (typeof id !== "string" || id.length === 0 || id.length > MAX_PEER_ID) {
    throw shape(`${field} is not a string of 1 to ${MAX_PEER_ID} characters`);
  }
  return id;
}

function documentId(value: Metadata): string {
  const id = value["documentId"];
  if (typeof id !== "string" || id.length > MAX_DOCUMENT_ID || !BASE58.test(id)) {
    throw shape(`documentId is not a base58 string of at most ${MAX_DOCUMENT_ID} characters`);
  }
  return id;
}

function metadata(value: Metadata): Metadata {
  const meta = value["peerMetadata"];
  if (meta === undefined) return {};
  if (!isPlainObject(meta)) throw shape("peerMetadata is not a map");
  return meta;
}

function isPlainObject(value: unknown): value is Metadata {
  if (typeof value !== "object" || value === null) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function isShortString(value: unknown): value is string {
  return typeof value === "string" && value.length <= MAX_SHORT_STRING;
}

/** cbor-x hands out Buffers; consumers compare and store plain Uint8Arrays. */
function asPlainBytes(data: Uint8Array): Uint8Array {
  return data.constructor === Uint8Array ? data : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function shape(message: string): WireError {
  return new WireError("bad-shape", message);
}
