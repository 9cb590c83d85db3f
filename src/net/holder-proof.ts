import { randomBytes } from "node:crypto";

/**
 * Proof of possession in the `join`/`peer` handshake. A token that names a holder key
 * (`cnf`) is worth nothing without that key, because each side proves it holds the key over
 * bytes the other side chose fresh for this connection:
 *
 * 1. server, on the 101 response: `x-ordo-challenge: <32 random bytes, base64url>`;
 * 2. client `join` metadata: `ordoNonce` (32 random bytes, base64url) and, when its token is
 *    key-bound, `ordoProof` = sign(`joinProofBytes(challenge, clientPeerId)`);
 * 3. server `peer` metadata, only when the join carried `ordoNonce`: `ordoToken` (its
 *    key-bound token) and `ordoProof` = sign(`peerProofBytes(nonce, serverPeerId, clientPeerId)`).
 *
 * The `ordo-join` / `ordo-peer` prefixes keep one side's signature from being replayed as
 * the other's. What this does not stop: an active man in the middle relaying both
 * handshakes live on an unencrypted `ws://` link (it could read the traffic anyway); use
 * `wss://` where the network is hostile.
 */

/** The upgrade response header that carries the server's challenge. */
export const CHALLENGE_HEADER = "x-ordo-challenge";

/** Challenge and nonce size: 32 bytes makes a repeat, and so a replayable proof, impossible in practice. */
export const NONCE_BYTES = 32;

/** How a transport end presents itself; read at every handshake, so a renewed token is picked up. */
export interface LinkIdentity {
  /** Our token: sent as `Authorization: Bearer` when dialing, and as `ordoToken` to clients that ask. */
  token: () => string;
  /**
   * Our Ed25519 signature (base64url) over `bytes`, made with the key our token's `cnf`
   * names (`Authority.prototype.sign` for a self-issued token). Without it we cannot prove
   * our token: servers that bound it refuse us, and as a server we send no token, so Ordo
   * dialers refuse us (stock clients, which check nothing, still join).
   */
  sign?: (bytes: Uint8Array) => string;
}

/** 32 fresh random bytes, base64url: a server's challenge or a client's nonce. */
export function newNonce(): string {
  return randomBytes(NONCE_BYTES).toString("base64url");
}

/** Whether `value` is a challenge or nonce as `newNonce` makes them (canonical base64url of 32 bytes). */
export function isNonce(value: unknown): value is string {
  return typeof value === "string" && /^[A-Za-z0-9_-]{43}$/.test(value) && Buffer.from(value, "base64url").toString("base64url") === value;
}

/**
 * What a client signs in its `join`: the server's challenge (fixed length, so the fields
 * cannot be shifted) and its own peer id. It cannot name the server's peer id: it learns it
 * only from the `peer` reply.
 */
export function joinProofBytes(challenge: string, clientPeerId: string): Uint8Array {
  return Buffer.from(`ordo-join\n${challenge}\n${clientPeerId}`, "utf8");
}

/** What a server signs in its `peer` reply: the client's nonce, then both peer ids. */
export function peerProofBytes(clientNonce: string, serverPeerId: string, clientPeerId: string): Uint8Array {
  return Buffer.from(`ordo-peer\n${clientNonce}\n${serverPeerId}\n${clientPeerId}`, "utf8");
}

/** Handshake metadata with the handshake's own fields ruled out: a token must never leave by this road. */
export type ExtraMetadata = Record<string, unknown> & { ordoToken?: never; ordoProof?: never; ordoNonce?: never; ordoSeq?: never };

/** `metadata` without the fields the handshake owns, however the caller typed it. */
export function withoutHandshakeFields(metadata: Record<string, unknown> | undefined): Record<string, unknown> {
  if (metadata === undefined) return {};
  const { ordoToken: _token, ordoProof: _proof, ordoNonce: _nonce, ordoSeq: _seq, ...rest } = metadata;
  return rest;
}
