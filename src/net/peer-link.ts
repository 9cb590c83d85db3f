import type { EventEmitter } from "node:events";
import type { Principal } from "./principal.js";

/**
 * Document messages of automerge-repo's protocol (version 1), as a link delivers them after
 * checking their shape. `request` is a sync message from a peer that does not have the
 * document yet; `doc-unavailable` answers a request for a document one does not have
 * (or may not read: the two answers are the same).
 */
export type DocMessage =
  | { type: "sync" | "request"; senderId: string; targetId: string; documentId: string; data: Uint8Array }
  | { type: "doc-unavailable"; senderId: string; targetId: string; documentId: string }
  | OfferedMessage
  | CollectionMessage;

/**
 * Between Ordo peers only: collection sync. `ordo-summary` lists the documents a peer holds
 * that the other may read, with a hash of each one's heads; `ordo-docs` carries whole
 * documents, many to a frame. The bytes are the replication layer's to read; the transport
 * checks only that they are bytes.
 */
export type CollectionMessage = CollectionPayload<"ordo-summary"> | CollectionPayload<"ordo-docs">;

interface CollectionPayload<T extends string> {
  type: T;
  senderId: string;
  targetId: string;
  data: Uint8Array;
}

/** Messages only Ordo peers (both announced `ordoSeq`) understand; never sent to a stock peer. */
export function isOrdoOnly(message: DocMessage): boolean {
  return message.type === "ordo-offered" || message.type === "ordo-summary" || message.type === "ordo-docs";
}

/**
 * Between Ordo peers only (both announced `ordoSeq`): "I have offered you every document I
 * had for you when we connected; there were `count`". It lets the other side tell "in sync"
 * from "nothing has arrived yet". Never sent to a stock peer.
 */
export interface OfferedMessage {
  type: "ordo-offered";
  senderId: string;
  targetId: string;
  count: number;
}

export interface LinkStats {
  bytesIn: number;
  bytesOut: number;
  messagesIn: number;
  messagesOut: number;
  /** Distinct documents the remote has named in its messages. */
  documentsNamed: number;
}

export interface PeerLinkEvents {
  message: [DocMessage];
  /** Once, when the link is gone, whichever side ended it. */
  close: [{ code: number; reason: string }];
}

/**
 * One authenticated, joined connection to another peer, whichever side dialled. The
 * transport (WebSocket today) has already verified the remote's token, bound its peer id
 * to that principal, and checked every message's shape; what arrives here is well-formed.
 */
export interface PeerLink extends EventEmitter<PeerLinkEvents> {
  /** Unique within the process, for logs and maps. */
  readonly id: number;
  readonly direction: "inbound" | "outbound";
  readonly localPeerId: string;
  readonly remotePeerId: string;
  /** The remote's identity, from its verified token. */
  readonly principal: Principal;
  /** What the remote announced in its `join` or `peer` message (storageId, isEphemeral, ...). */
  readonly remoteMetadata: Readonly<Record<string, unknown>>;
  readonly closed: boolean;
  /** Queues a message; never throws. A remote that stops reading is dropped (`slowConsumer`). */
  send(message: DocMessage): void;
  /** Ends the link with a code from `CloseCode`; idempotent. */
  close(code: number, reason: string): void;
  stats(): LinkStats;
}
