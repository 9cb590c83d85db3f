import { EventEmitter } from "node:events";
import { WebSocket, type ClientOptions } from "ws";
import { systemClock, type Clock } from "../util/clock.js";
import { OrdoError } from "../util/errors.js";
import { silentLogger, type Logger } from "../util/logger.js";
import { CloseCode } from "./close-codes.js";
import { HandshakeGuard } from "./handshake.js";
import { CHALLENGE_HEADER, isNonce, joinProofBytes, newNonce, peerProofBytes, withoutHandshakeFields, type ExtraMetadata, type LinkIdentity } from "./holder-proof.js";
import { resolveLimits, type LinkLimits } from "./limits.js";
import type { PeerLink } from "./peer-link.js";
import { TokenError, type Principal, type TokenVerifier } from "./principal.js";
import { verifyHolderSignature } from "./tokens.js";
import { PROTOCOL_VERSION, type ClientOrServerMessage, type PeerMessage } from "./wire.js";
import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from "./backoff.js";

export { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from "./backoff.js";
import { describeError, errorCode, INTERNAL_ERROR } from "./socket-utils.js";
import { WsLink } from "./ws-link.js";

/** `waiting`: between attempts, until `nextRetryAt`. */
export type DialerState = "connecting" | "connected" | "waiting" | "stopped";

/** Emitted as `retry` each time an attempt or a link ended and another is scheduled. */
export interface RetryScheduled {
  /** 1 for the first retry after a failure or a lost link. */
  attempt: number;
  delayMs: number;
  /** When the next attempt starts, in milliseconds since the epoch. */
  at: number;
  reason: string;
}

/** Events of a `PeerDialer`: `state` on every change, `retry` when a redial is scheduled. */
export interface PeerDialerEvents {
  state: [DialerState];
  retry: [RetryScheduled];
}

/** What a `PeerDialer` needs; everything that touches the world is passed in. */
export interface PeerDialerOptions {
  /** ws:// or wss:// URL of a `SyncServer` (no token in it: the token goes in a header). */
  url: string;
  /**
   * Who we are: `identity.token()` is read before each attempt and sent as
   * `Authorization: Bearer` (to whatever server the URL names, so it should be bound to our
   * key); `identity.sign`, when given, proves we hold that key. A dialer without `sign`
   * still joins servers that take its token as a bearer token.
   */
  identity: LinkIdentity;
  peerId: string;
  /**
   * Further fields for our `join` message (storageId, ...), read at each attempt; the
   * handshake adds its own (`ordoSeq`, `ordoNonce`, `ordoProof`), which cannot be set here.
   */
  metadata?: () => ExtraMetadata;
  /**
   * Checks the server's token (`ordoToken` in its `peer` message). The token must also name
   * a holder key and come with the server's signature over our nonce: a server that cannot
   * prove its token is refused (`unauthenticated`).
   */
  verifier: TokenVerifier;
  /** Called for each joined connection; the link's principal is the server's. */
  onLink: (link: PeerLink) => void;
  /** Defaults: `DEFAULT_BACKOFF`. */
  backoff?: Partial<BackoffOptions>;
  limits?: Partial<LinkLimits>;
  logger?: Logger;
  clock?: Clock;
  random?: () => number;
  createSocket?: (url: string, options: ClientOptions) => WebSocket;
}

/**
 * The client side of the WebSocket transport: dials a `SyncServer`, authenticates both
 * ways, hands each joined connection to `onLink`, and redials with exponential backoff and
 * full jitter whenever the connection ends, until `stop()`.
 *
 * @example
 * const identity = { token: () => authority.selfToken("laptop", DAY), sign: (bytes) => authority.sign(bytes) };
 * const dialer = new PeerDialer({ url: "ws://relay:8080/", identity, peerId, verifier, onLink });
 * dialer.start();
 * // ...
 * await dialer.stop();
 */
export class PeerDialer extends EventEmitter<PeerDialerEvents> {
  readonly #options: PeerDialerOptions;
  readonly #limits: Readonly<LinkLimits>;
  readonly #backoff: BackoffOptions;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #context: Record<string, unknown>;
  #state: DialerState = "stopped";
  #attempt = 0;
  #generation = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #nextRetryAt: number | undefined;
  #socket: WebSocket | undefined;
  #guard: HandshakeGuard | undefined;
  #link: WsLink | undefined;
  #errorsSeen = 0;

  constructor(options: PeerDialerOptions) {
    super();
    if (!/^wss?:$/.test(parseUrl(options.url)?.protocol ?? "")) {
      throw new OrdoError("ORDO_NET_URL", `not a ws:// or wss:// URL: ${urlForLogs(options.url)}`);
    }
    this.#options = options;
    this.#limits = resolveLimits(options.limits);
    this.#backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.#logger = options.logger ?? silentLogger;
    this.#clock = options.clock ?? systemClock;
    this.#context = { server: urlForLogs(options.url) };
  }

  get state(): DialerState {
    return this.#state;
  }

  /** When the next attempt starts (ms since the epoch), while `waiting`. */
  get nextRetryAt(): number | undefined {
    return this.#nextRetryAt;
  }

  /** The joined link, while `connected`. */
  get link(): PeerLink | undefined {
    return this.#link;
  }

  start(): void {
    if (this.#state !== "stopped") return;
    this.#attempt = 0;
    this.#connect();
  }

  /** Closes the link (`goingAway`) or abandons the attempt; resolves once the socket is closed. */
  async stop(): Promise<void> {
    this.#generation += 1;
    this.#setState("stopped");
    clearTimeout(this.#retryTimer);
    this.#nextRetryAt = undefined;
    const socket = this.#socket;
    this.#socket = undefined;
    if (this.#link !== undefined) this.#link.close(CloseCode.goingAway, "dialer stopped");
    else if (this.#guard !== undefined) this.#guard.fail(CloseCode.goingAway, "dialer stopped");
    else socket?.terminate();
    this.#link = undefined;
    this.#guard = undefined;
    if (socket !== undefined && socket.readyState !== socket.CLOSED) {
      await new Promise<void>((resolve) => socket.once("close", () => resolve()));
    }
  }

  #connect(): void {
    const generation = ++this.#generation;
    this.#errorsSeen = 0;
    this.#setState("connecting");
    let socket: WebSocket;
    try {
      const { identity, url, createSocket } = this.#options;
      const options: ClientOptions = {
        headers: { authorization: `Bearer ${identity.token()}` },
        perMessageDeflate: false,
        maxPayload: this.#limits.maxFrameBytes,
        handshakeTimeout: this.#limits.handshakeTimeoutMs,
      };
      socket = createSocket ? createSocket(url, options) : new WebSocket(url, options);
    } catch (error) {
      this.#logger.warn({ ...this.#context, error: describeError(error) }, "could not dial");
      return this.#scheduleRetry("dial failed");
    }
    this.#socket = socket;
    // Set once the attempt became a link or failed: one retry per attempt, however it failed.
    let settled = false;
    const ended = (reason: string) => {
      if (settled || generation !== this.#generation) return;
      settled = true;
      this.#socket = undefined;
      this.#guard = undefined;
      this.#scheduleRetry(reason);
    };

    socket.on("error", (error) => {
      this.#logger.info({ ...this.#context, error: error.message, code: errorCode(error) }, "connection failed");
    });
    socket.once("close", (code) => ended(`closed (${code})`));
    // The server's challenge arrives on the 101 response, before `open`.
    let challenge: string | undefined;
    socket.once("upgrade", (response) => {
      const header = response.headers[CHALLENGE_HEADER];
      challenge = isNonce(header) ? header : undefined;
    });
    socket.on("unexpected-response", (_request, response) => {
      const status = response.statusCode ?? 0;
      if (status === 401) this.#logger.warn(this.#context, "server refused our token (401)");
      else this.#logger.warn({ ...this.#context, status }, "server refused the upgrade");
      response.resume();
      socket.terminate();
    });
    socket.once("open", () => {
      if (generation !== this.#generation) return;
      // Fresh per attempt: the server's signature over it proves the server, not a replay.
      const nonce = newNonce();
      const guard: HandshakeGuard = new HandshakeGuard({
        socket,
        limits: this.#limits,
        logger: this.#logger,
        context: this.#context,
        onMessage: (message) => {
          const link = this.#onHandshakeMessage(guard, socket, nonce, message);
          if (link === undefined) return;
          settled = true;
          guard.release();
          this.#onJoined(link, generation);
        },
        onEnd: (end) => ended(`handshake ended (${end.code} ${end.reason})`),
      });
      this.#guard = guard;
      const { peerId, metadata, identity } = this.#options;
      // No challenge (a server that asks for no proof): no proof, and a bound token is refused there.
      const proof = challenge !== undefined && identity.sign !== undefined ? { ordoProof: identity.sign(joinProofBytes(challenge, peerId)) } : {};
      guard.send({
        type: "join",
        senderId: peerId,
        peerMetadata: { ...withoutHandshakeFields(metadata?.()), ordoSeq: true, ordoNonce: nonce, ...proof },
        supportedProtocolVersions: [PROTOCOL_VERSION],
      });
    });
  }

  /** The link, once the server's `peer` message checks out; undefined to keep waiting. */
  #onHandshakeMessage(guard: HandshakeGuard, socket: WebSocket, nonce: string, message: ClientOrServerMessage): WsLink | undefined {
    if (message.type === "error") {
      // The server closes right after its error (with a code that says why); a second
      // error instead is a server flooding our log.
      this.#logger.warn({ ...this.#context, message: message.message }, "server refused our join");
      if (this.#errorsSeen++ > 0) guard.fail(CloseCode.malformedMessage, "repeated error messages", true);
      return undefined;
    }
    if (message.type !== "peer") {
      guard.fail(CloseCode.malformedMessage, `expected peer, got ${message.type}`, true);
      return undefined;
    }
    if (message.targetId !== this.#options.peerId || message.selectedProtocolVersion !== PROTOCOL_VERSION) {
      guard.fail(CloseCode.malformedMessage, "peer message for another peer or protocol", true);
      return undefined;
    }
    const principal = this.#verifyServer(message, nonce);
    if (principal === undefined) {
      guard.fail(CloseCode.unauthenticated, "server presented no valid token");
      return undefined;
    }
    return new WsLink({
      socket,
      direction: "outbound",
      localPeerId: this.#options.peerId,
      remotePeerId: message.senderId,
      principal,
      remoteMetadata: message.peerMetadata,
      sequenced: message.peerMetadata["ordoSeq"] === true,
      limits: this.#limits,
      logger: this.#logger,
      clock: this.#clock,
    });
  }

  /** The server's principal, if its token verifies, names a holder key, and comes with that key's signature over our nonce. */
  #verifyServer(message: PeerMessage, nonce: string): Principal | undefined {
    const token = message.peerMetadata["ordoToken"];
    if (typeof token !== "string") {
      this.#logger.warn(this.#context, "server sent no ordoToken");
      return undefined;
    }
    let principal: Principal;
    try {
      principal = this.#options.verifier.verify(token, this.#clock().getTime());
    } catch (error) {
      const problem = error instanceof TokenError ? error.problem : describeError(error);
      this.#logger.warn({ ...this.#context, problem }, "server token refused");
      return undefined;
    }
    // A token without a holder key, or without its holder's signature, may have been lifted from any `peer` message.
    if (principal.holderKey === undefined) {
      this.#logger.warn({ ...this.#context, user: principal.user }, "server token names no holder key");
      return undefined;
    }
    const proof = message.peerMetadata["ordoProof"];
    if (typeof proof !== "string" || !verifyHolderSignature(principal.holderKey, peerProofBytes(nonce, message.senderId, this.#options.peerId), proof)) {
      this.#logger.warn({ ...this.#context, user: principal.user, proof: typeof proof === "string" ? "invalid" : "missing" }, "server did not prove it holds its token's key");
      return undefined;
    }
    return principal;
  }

  #onJoined(link: WsLink, generation: number): void {
    const joinedAt = this.#clock().getTime();
    this.#guard = undefined;
    this.#link = link;
    this.#setState("connected");
    this.#logger.info({ ...this.#context, link: link.id, peer: link.remotePeerId }, "joined");
    link.once("close", ({ code, reason }) => {
      if (generation !== this.#generation) return;
      this.#link = undefined;
      this.#socket = undefined;
      if (this.#clock().getTime() - joinedAt >= this.#backoff.resetAfterMs) this.#attempt = 0;
      this.#scheduleRetry(`link closed (${code} ${reason})`);
    });
    try {
      this.#options.onLink(link);
    } catch (error) {
      this.#logger.error({ ...this.#context, error: describeError(error) }, "onLink threw");
      link.close(INTERNAL_ERROR, "internal error");
    }
  }

  #scheduleRetry(reason: string): void {
    if (this.#state === "stopped") return;
    const delayMs = backoffDelay(this.#attempt, this.#backoff, this.#options.random ?? Math.random);
    this.#attempt += 1;
    const at = this.#clock().getTime() + delayMs;
    this.#nextRetryAt = at;
    this.#setState("waiting");
    this.#logger.info({ ...this.#context, reason, delayMs, attempt: this.#attempt }, "will redial");
    this.#retryTimer = setTimeout(() => {
      this.#nextRetryAt = undefined;
      this.#connect();
    }, delayMs);
    this.#emitSafely("retry", { attempt: this.#attempt, delayMs, at, reason });
  }

  #setState(state: DialerState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.#emitSafely("state", state);
  }

  #emitSafely<K extends keyof PeerDialerEvents>(event: K, ...args: PeerDialerEvents[K]): void {
    try {
      (this.emit as (event: K, ...args: PeerDialerEvents[K]) => boolean)(event, ...args);
    } catch (error) {
      this.#logger.error({ ...this.#context, event, error: describeError(error) }, "a dialer listener threw");
    }
  }
}

/** The URL without query or credentials, for logs. */
function urlForLogs(url: string): string {
  const parsed = parseUrl(url);
  return parsed === undefined ? "(unparseable url)" : `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
}

function parseUrl(url: string): URL | undefined {
  try {
    return new URL(url);
  } catch {
    return undefined;
  }
}
