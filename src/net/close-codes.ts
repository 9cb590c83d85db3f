/**
 * WebSocket close codes a connection ends with, so the other side (and its logs) can tell
 * why. 4000-4999 is the range the WebSocket standard leaves to applications.
 */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  /** A frame or message that is not the protocol: bad CBOR, wrong shape, unknown type. */
  malformedMessage: 4400,
  /** The token expired or was revoked during the session. */
  tokenExpired: 4401,
  /** Changes to a document the principal may not write. */
  forbiddenWrite: 4403,
  /** No `join`/`peer` within the handshake timeout. */
  handshakeTimeout: 4408,
  /** The peer id is held by another principal's live connection. */
  peerIdTaken: 4409,
  /** A message arrived out of sequence (lost, duplicated or reordered): resync from scratch. */
  outOfSequence: 4412,
  /** More distinct documents asked for than one connection may. */
  tooManyDocuments: 4413,
  /** Messages faster than the rate limit allows. */
  rateLimited: 4429,
  /** The peer stopped reading and its unsent data passed the cap. */
  slowConsumer: 4430,
  /** The other end presented no valid identity. */
  unauthenticated: 4431,
} as const;

export type CloseCodeName = keyof typeof CloseCode;
