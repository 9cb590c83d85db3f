import { EventEmitter } from "node:events";
import type { RawData, WebSocket } from "ws";
import { systemClock, type Clock } from "../util/clock.js";
import { silentLogger, type Logger } from "../util/logger.js";
import { CloseCode } from "./close-codes.js";
import { DEFAULT_LINK_LIMITS, TokenBucket, type LinkLimits } from "./limits.js";
import { isOrdoOnly, type DocMessage, type LinkStats, type PeerLink, type PeerLinkEvents } from "./peer-link.js";
import type { Principal } from "./principal.js";
import { describeError, errorCode, INTERNAL_ERROR, isSendableCode, statusCodeOf, toBytes, truncateReason } from "./socket-utils.js";
import { checkMessage, decodeFrame, encodeFrame, isDocMessage, WireError, type WireDocMessage } from "./wire.js";

/** How long after its last numbered message a link tells the peer how many it sent. */
export const SENT_COUNT_AFTER_MS = 1_000;

/** `LinkStats` plus what the transport refused. */
export interface WsLinkStats extends LinkStats {
  /** Frames refused as not the protocol (the first one also closed the link). */
  messagesRefused: number;
}

/** What a `WsLink` is built from, once the handshake is done. */
export interface WsLinkOptions {
  /** An open socket whose handshake (`join`/`peer`) is done. */
  socket: WebSocket;
  direction: "inbound" | "outbound";
  localPeerId: string;
  remotePeerId: string;
  principal: Principal;
  remoteMetadata: Readonly<Record<string, unknown>>;
  /** Both sides announced `ordoSeq: true`: document messages are numbered and checked. */
  sequenced: boolean;
  limits?: Readonly<LinkLimits>;
  logger?: Logger;
  clock?: Clock;
}

/** setTimeout's longest delay; a later expiry re-arms the timer. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * The delay of a link's token-expiry timer, `remainingMs` before the token expires. Node keeps
 * a list for each distinct delay until that delay has passed, even when every timer on it was
 * cleared: a delay to the millisecond per link left one list per connection ever made, for the
 * life of a token (hours), and a relay taking connections all day grew without bound. Waits of
 * a minute or more are cut to whole minutes (the timer re-arms for the rest); shorter ones are
 * rounded up to a tenth of a second. So a relay holds at most a few thousand distinct delays,
 * however many links come and go, and a link still closes within 100 ms of its token's expiry.
 */
export function expiryTimerDelay(remainingMs: number): number {
  const remaining = Math.min(Math.max(remainingMs, 0), MAX_TIMER_MS);
  return remaining >= 60_000 ? Math.floor(remaining / 60_000) * 60_000 : Math.ceil(remaining / 100) * 100;
}

let nextLinkId = 1;

/**
 * A `PeerLink` over a `ws` WebSocket. Every inbound frame is rate-limited, decoded and
 * checked; only document messages reach `message` listeners, and anything that is not the
 * protocol closes the link. Sends never throw; a remote that stops reading is dropped.
 */
export class WsLink extends EventEmitter<PeerLinkEvents> implements PeerLink {
  readonly id = nextLinkId++;
  readonly direction: "inbound" | "outbound";
  readonly localPeerId: string;
  readonly remotePeerId: string;
  readonly principal: Principal;
  readonly remoteMetadata: Readonly<Record<string, unknown>>;
  readonly sequenced: boolean;
  /** Settles once the socket itself is closed, which may be after `close` was emitted. */
  readonly socketClosed: Promise<void>;

  readonly #socket: WebSocket;
  readonly #limits: Readonly<LinkLimits>;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #bucket: TokenBucket;
  readonly #documents = new Set<string>();
  readonly #stats: WsLinkStats = {
    bytesIn: 0,
    bytesOut: 0,
    messagesIn: 0,
    messagesOut: 0,
    documentsNamed: 0,
    messagesRefused: 0,
  };
  #closed = false;
  #sendSeq = 0;
  #receiveSeq = 0;
  #awaitingPong = false;
  #sentCountTimer: NodeJS.Timeout | undefined;
  #expiryTimer: NodeJS.Timeout | undefined;
  #pingTimer: NodeJS.Timeout | undefined;
  #graceTimer: NodeJS.Timeout | undefined;

  constructor(options: WsLinkOptions) {
    super();
    this.direction = options.direction;
    this.localPeerId = options.localPeerId;
    this.remotePeerId = options.remotePeerId;
    this.principal = options.principal;
    this.remoteMetadata = options.remoteMetadata;
    this.sequenced = options.sequenced;
    this.#socket = options.socket;
    this.#limits = options.limits ?? DEFAULT_LINK_LIMITS;
    this.#logger = options.logger ?? silentLogger;
    const clock = options.clock ?? systemClock;
    this.#now = () => clock().getTime();
    this.#bucket = new TokenBucket(this.#limits.messagesPerSecond, this.#limits.messageBurst, this.#now);

    const socket = this.#socket;
    this.socketClosed =
      socket.readyState === socket.CLOSED ? Promise.resolve() : new Promise((resolve) => socket.once("close", () => resolve()));
    socket.on("error", this.#onError);
    socket.on("close", this.#onClose);
    socket.on("message", this.#onMessage);
    socket.on("pong", this.#onPong);
    // ws answers every ping by itself: a ping flood counts against the rate limit too.
    socket.on("ping", this.#onPing);
    this.#pingTimer = setInterval(this.#ping, this.#limits.pingIntervalMs).unref();
    this.#armExpiry();
    if (socket.readyState !== socket.OPEN) {
      // Closed during the handover: report it once listeners can hear it.
      setImmediate(() => this.#finish(1006, "socket closed before the link opened"));
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  stats(): WsLinkStats {
    return { ...this.#stats, documentsNamed: this.#closed ? this.#stats.documentsNamed : this.#documents.size };
  }

  send(message: DocMessage): void {
    if (this.#closed || this.#socket.readyState !== this.#socket.OPEN) return;
    // A stock peer would take an Ordo-only message for a malformed one.
    if (isOrdoOnly(message) && !this.sequenced) return;
    try {
      if (message.senderId !== this.localPeerId || message.targetId !== this.remotePeerId) {
        throw new Error(`message from ${message.senderId} to ${message.targetId} sent on the wrong link`);
      }
      const outgoing: WireDocMessage = copyDocMessage(message);
      if (this.sequenced) outgoing.ordoSeq = this.#sendSeq + 1;
      // Our own bug must not look like the remote's: a message the remote would refuse is
      // dropped here, with an error in the log, rather than sent to end the link there.
      checkMessage(outgoing);
      const frame = encodeFrame(outgoing);
      if (frame.byteLength > this.#limits.maxFrameBytes) {
        this.#logger.warn(this.#context({ bytes: frame.byteLength }), "sending a frame over the frame cap");
      }
      this.#socket.send(frame);
      this.#sendSeq += 1;
      if (this.sequenced) {
        clearTimeout(this.#sentCountTimer);
        this.#sentCountTimer = setTimeout(this.#sendSentCount, SENT_COUNT_AFTER_MS).unref();
      }
      this.#stats.messagesOut += 1;
      this.#stats.bytesOut += frame.byteLength;
      if (this.#socket.bufferedAmount > this.#limits.maxBufferedBytes) {
        this.#logger.warn(this.#context({ buffered: this.#socket.bufferedAmount }), "remote stopped reading");
        this.close(CloseCode.slowConsumer, "slow consumer");
        // The close frame would wait behind the backlog: drop the backlog now.
        this.#socket.terminate();
      }
    } catch (error) {
      this.#logger.error(this.#context({ error: describeError(error) }), "could not send a message; dropped");
    }
  }

  close(code: number, reason: string): void {
    if (this.#closed) return;
    this.#finish(code, reason);
    try {
      if (isSendableCode(code)) this.#socket.close(code, truncateReason(reason));
      else this.#socket.terminate();
    } catch {
      this.#socket.terminate();
    }
    this.#graceTimer = setTimeout(() => this.#socket.terminate(), this.#limits.closeGraceMs).unref();
  }

  #onMessage = (data: RawData, isBinary: boolean): void => {
    try {
      this.#receive(toBytes(data), isBinary);
    } catch (error) {
      this.#logger.error(this.#context({ error: describeError(error) }), "failed to handle a message");
      this.close(INTERNAL_ERROR, "internal error");
    }
  };

  #receive(bytes: Uint8Array, isBinary: boolean): void {
    if (this.#closed) return;
    this.#stats.bytesIn += bytes.byteLength;
    this.#stats.messagesIn += 1;
    this.#awaitingPong = false;
    if (!this.#bucket.take()) return this.close(CloseCode.rateLimited, "rate limit");
    let message;
    try {
      if (!isBinary) throw new WireError("not-binary", "text frame");
      message = decodeFrame(bytes, this.#limits);
    } catch (error) {
      if (!(error instanceof WireError)) throw error;
      this.#stats.messagesRefused += 1;
      this.#logger.warn(this.#context({ problem: error.problem, detail: error.message }), "malformed message");
      return this.close(CloseCode.malformedMessage, error.problem);
    }
    if (message.senderId !== this.remotePeerId || ("targetId" in message && message.targetId !== this.localPeerId)) {
      this.#stats.messagesRefused += 1;
      return this.close(CloseCode.malformedMessage, "wrong senderId or targetId");
    }
    if ("documentId" in message && message.documentId !== undefined) {
      this.#documents.add(message.documentId);
      if (this.#documents.size > this.#limits.maxDocuments) {
        return this.close(CloseCode.tooManyDocuments, "too many documents");
      }
    }
    if (isDocMessage(message)) {
      if (!this.sequenced && isOrdoOnly(message)) {
        this.#stats.messagesRefused += 1;
        return this.close(CloseCode.malformedMessage, `${message.type} from a peer that did not announce Ordo`);
      }
      if (this.sequenced) {
        if (message.ordoSeq !== this.#receiveSeq + 1) {
          this.#logger.warn(this.#context({ expected: this.#receiveSeq + 1, got: message.ordoSeq }), "out of sequence");
          return this.close(CloseCode.outOfSequence, "out of sequence");
        }
        this.#receiveSeq += 1;
      }
      this.#deliver(copyDocMessage(message));
    } else if (message.type === "ordo-sent") {
      if (!this.sequenced) return this.close(CloseCode.malformedMessage, "ordo-sent from a peer that did not announce Ordo");
      // Every message sent before the count has arrived by now: fewer means some were lost on the way.
      if (message.count > this.#receiveSeq) {
        this.#logger.warn(this.#context({ sent: message.count, received: this.#receiveSeq }), "messages lost");
        return this.close(CloseCode.outOfSequence, "messages lost");
      }
    } else if (message.type === "leave") {
      this.close(CloseCode.normal, "leave");
    } else if (message.type === "error") {
      this.#logger.warn(this.#context({ message: message.message }), "remote sent an error");
    }
    // join, peer, ephemeral, remote-subscription-change, remote-heads-changed: checked, dropped.
  }

  #deliver(message: DocMessage): void {
    try {
      this.emit("message", message);
    } catch (error) {
      this.#logger.error(this.#context({ error: describeError(error) }), "a message listener threw");
    }
  }

  #onError = (error: Error): void => {
    this.#logger.warn(this.#context({ error: error.message, code: errorCode(error) }), "socket error");
    // ws has already answered a protocol error with a close frame (1002 bad frame, 1007 bad
    // UTF-8, 1009 too big); 1006 means the connection itself failed.
    const code = statusCodeOf(error);
    if (code !== 1006 && !this.#closed) this.#stats.messagesRefused += 1;
    this.#finish(code, errorCode(error) ?? "socket error");
    this.#graceTimer ??= setTimeout(() => this.#socket.terminate(), this.#limits.closeGraceMs).unref();
  };

  #onClose = (code: number, reason: Buffer): void => {
    clearTimeout(this.#graceTimer);
    this.#finish(code, reason.toString("utf8"));
  };

  #onPing = (): void => {
    if (!this.#closed && !this.#bucket.take()) this.close(CloseCode.rateLimited, "rate limit");
  };

  #onPong = (): void => {
    this.#awaitingPong = false;
  };

  /** Tells the peer how many numbered messages it should have had from us (see `SentCountMessage`). */
  #sendSentCount = (): void => {
    if (this.#closed || !this.sequenced || this.#sendSeq === 0 || this.#socket.readyState !== this.#socket.OPEN) return;
    const frame = encodeFrame({ type: "ordo-sent", senderId: this.localPeerId, targetId: this.remotePeerId, count: this.#sendSeq });
    this.#socket.send(frame);
    this.#stats.messagesOut += 1;
    this.#stats.bytesOut += frame.byteLength;
  };

  #ping = (): void => {
    if (this.#awaitingPong) {
      this.#logger.warn(this.#context({}), "no pong: remote is gone");
      this.#finish(1006, "no pong");
      this.#socket.terminate();
      return;
    }
    this.#awaitingPong = true;
    // Again each interval: the count that followed the last burst may itself have been lost.
    this.#sendSentCount();
    try {
      this.#socket.ping();
    } catch {
      // Not open any more: the close event follows.
    }
  };

  #armExpiry(): void {
    this.#expiryTimer = setTimeout(() => {
      if (this.principal.expiresAt > this.#now()) return this.#armExpiry();
      this.#logger.info(this.#context({}), "token expired");
      this.close(CloseCode.tokenExpired, "token expired");
    }, expiryTimerDelay(this.principal.expiresAt - this.#now())).unref();
  }

  /** Marks the link closed and tells listeners, once. */
  #finish(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#expiryTimer);
    clearTimeout(this.#sentCountTimer);
    clearInterval(this.#pingTimer);
    this.#stats.documentsNamed = this.#documents.size;
    this.#documents.clear();
    try {
      this.emit("close", { code, reason });
    } catch (error) {
      this.#logger.error(this.#context({ error: describeError(error) }), "a close listener threw");
    }
  }

  #context(extra: Record<string, unknown>): Record<string, unknown> {
    return { link: this.id, peer: this.remotePeerId, user: this.principal.user, ...extra };
  }
}

function copyDocMessage(message: DocMessage): WireDocMessage {
  const { senderId, targetId } = message;
  switch (message.type) {
    case "doc-unavailable":
      return { type: "doc-unavailable", senderId, targetId, documentId: message.documentId };
    case "ordo-offered":
      return { type: "ordo-offered", senderId, targetId, count: message.count };
    case "ordo-summary":
    case "ordo-docs":
      return { type: message.type, senderId, targetId, data: message.data };
    default:
      return { type: message.type, senderId, targetId, documentId: message.documentId, data: message.data };
  }
}
