import type { RawData, WebSocket } from "ws";
import type { Logger } from "../util/logger.js";
import { CloseCode } from "./close-codes.js";
import type { LinkLimits } from "./limits.js";
import { decodeFrame, encodeFrame, WireError, type ClientOrServerMessage } from "./wire.js";
import { describeError, errorCode, INTERNAL_ERROR, isSendableCode, statusCodeOf, toBytes, truncateReason } from "./socket-utils.js";

/** How a socket ended before its handshake completed. */
export interface HandshakeEnd {
  code: number;
  reason: string;
  /** We refused a frame that was not the protocol. */
  malformed: boolean;
}

export interface HandshakeGuardOptions {
  socket: WebSocket;
  limits: Readonly<LinkLimits>;
  logger: Logger;
  /** Fields for every log line (never the token). */
  context: Record<string, unknown>;
  /** Each well-formed message, until `release` or the end. */
  onMessage: (message: ClientOrServerMessage) => void;
  /** Once, if the socket ends before `release`, whichever side ended it. */
  onEnd: (end: HandshakeEnd) => void;
  onBytes?: (direction: "in" | "out", bytes: number) => void;
}

/**
 * Watches a fresh socket until its `join`/`peer` exchange is done: a deadline, an `error`
 * listener from the first moment, every frame decoded and checked. `release()` hands the
 * socket over (to a `WsLink`) synchronously, so that a message arriving in the same chunk
 * as the handshake reaches the link's listener and is not lost.
 */
export class HandshakeGuard {
  readonly #options: HandshakeGuardOptions;
  readonly #timer: NodeJS.Timeout;
  #done = false;

  constructor(options: HandshakeGuardOptions) {
    this.#options = options;
    const { socket, limits } = options;
    socket.on("error", this.#onError);
    socket.on("close", this.#onClose);
    socket.on("message", this.#onMessage);
    this.#timer = setTimeout(() => this.fail(CloseCode.handshakeTimeout, "handshake timeout"), limits.handshakeTimeoutMs);
    this.#timer.unref();
  }

  /** Sends a handshake frame; never throws. */
  send(message: ClientOrServerMessage): void {
    try {
      const frame = encodeFrame(message);
      this.#options.socket.send(frame);
      this.#options.onBytes?.("out", frame.byteLength);
    } catch (error) {
      this.#options.logger.warn({ ...this.#options.context, error: describeError(error) }, "handshake send failed");
    }
  }

  /** Stops watching: the socket now belongs to whoever attached their listeners. */
  release(): void {
    if (this.#done) return;
    this.#done = true;
    this.#detach();
  }

  /** Ends the connection with `code`, destroying it if the remote does not finish the close. */
  fail(code: number, reason: string, malformed = false): void {
    if (this.#done) return;
    const { socket, limits, logger, context } = this.#options;
    logger.info({ ...context, code, reason }, "connection refused during the handshake");
    this.#end({ code, reason, malformed });
    try {
      if (isSendableCode(code)) socket.close(code, truncateReason(reason));
      else socket.terminate();
    } catch {
      socket.terminate();
    }
    // Keep an error listener: a socket being closed can still fail.
    socket.on("error", () => {});
    setTimeout(() => socket.terminate(), limits.closeGraceMs).unref();
  }

  #end(end: HandshakeEnd): void {
    this.#done = true;
    this.#detach();
    try {
      this.#options.onEnd(end);
    } catch (error) {
      this.#options.logger.error({ ...this.#options.context, error: describeError(error) }, "handshake end handler threw");
    }
  }

  #detach(): void {
    clearTimeout(this.#timer);
    const { socket } = this.#options;
    socket.off("message", this.#onMessage);
    socket.off("close", this.#onClose);
    socket.off("error", this.#onError);
  }

  #onMessage = (data: RawData, isBinary: boolean): void => {
    if (this.#done) return;
    const { limits, logger, context } = this.#options;
    const bytes = toBytes(data);
    this.#options.onBytes?.("in", bytes.byteLength);
    let message: ClientOrServerMessage;
    try {
      if (!isBinary) throw new WireError("not-binary", "text frame");
      message = decodeFrame(bytes, limits);
    } catch (error) {
      const problem = error instanceof WireError ? error.problem : "bad-cbor";
      logger.warn({ ...context, problem, detail: describeError(error) }, "malformed handshake message");
      return this.fail(CloseCode.malformedMessage, problem, true);
    }
    try {
      this.#options.onMessage(message);
    } catch (error) {
      logger.error({ ...context, error: describeError(error) }, "handshake handler threw");
      this.fail(INTERNAL_ERROR, "internal error");
    }
  };

  #onError = (error: Error): void => {
    const { logger, context, socket, limits } = this.#options;
    logger.warn({ ...context, error: error.message, code: errorCode(error) }, "socket error during the handshake");
    const code = statusCodeOf(error);
    this.#end({ code, reason: errorCode(error) ?? "socket error", malformed: code !== 1006 });
    socket.on("error", () => {});
    setTimeout(() => socket.terminate(), limits.closeGraceMs).unref();
  };

  #onClose = (code: number, reason: Buffer): void => {
    this.#end({ code, reason: reason.toString("utf8"), malformed: false });
  };
}
