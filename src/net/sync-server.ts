import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";
import { systemClock, type Clock } from "../util/clock.js";
import { silentLogger, type Logger } from "../util/logger.js";
import { CloseCode } from "./close-codes.js";
import { HandshakeGuard, type HandshakeEnd } from "./handshake.js";
import { CHALLENGE_HEADER, isNonce, joinProofBytes, newNonce, peerProofBytes, withoutHandshakeFields, type ExtraMetadata, type LinkIdentity } from "./holder-proof.js";
import { resolveLimits, type LinkLimits } from "./limits.js";
import type { PeerLink } from "./peer-link.js";
import { TokenError, type Principal, type TokenVerifier } from "./principal.js";
import { verifyHolderSignature } from "./tokens.js";
import { readBearerToken, refuseUpgrade, safeRequestPath } from "./upgrade-auth.js";
import { PROTOCOL_VERSION, type ClientOrServerMessage } from "./wire.js";
import { describeError, INTERNAL_ERROR } from "./socket-utils.js";
import { WsLink } from "./ws-link.js";

/** What a `SyncServer` needs; everything that touches the world is passed in. */
export interface SyncServerOptions {
  /** Our peer id, sent in every `peer` message. */
  peerId: string;
  /**
   * Who we are. Our token goes only to clients that send a nonce, with our signature over
   * it; without `identity.sign`, or with a token not bound to the signing key, we send no
   * token at all, and Ordo dialers refuse us.
   */
  identity: LinkIdentity;
  /**
   * Further fields for our `peer` message, read at each handshake. The handshake's own
   * fields (`ordoSeq`, `ordoToken`, `ordoProof`, `ordoNonce`) cannot be set here.
   */
  metadata?: () => ExtraMetadata;
  /** Checks each client's token, and our own before we present it. */
  verifier: TokenVerifier;
  /** Called once per joined connection; the link is open and authenticated. */
  onLink: (link: PeerLink) => void;
  limits?: Partial<LinkLimits>;
  logger?: Logger;
  clock?: Clock;
}

/** Counters for `/metrics`; totals include closed connections. */
export interface SyncServerMetrics {
  /** Sockets open now, in their handshake or joined. */
  connectionsOpen: number;
  /** Joined links open now. */
  linksOpen: number;
  /** Upgrades accepted (101). */
  accepted: number;
  /** Upgrades refused, by reason: a token problem, `no-token`, `bad-request`, `shutting-down`, `internal`. */
  refused: Record<string, number>;
  /** Frames refused as not the protocol (each closed its connection). */
  messagesRefused: number;
  bytesIn: number;
  bytesOut: number;
  /** Connections ended, by close code (ours, or the remote's when it ended them). */
  closedByCode: Record<string, number>;
}

/**
 * The server side of the WebSocket transport, attached to an HTTP server the caller owns.
 * It authenticates each upgrade by token, runs the `join`/`peer` handshake, requires a
 * client whose token names a holder key to prove it holds that key (a signature over a
 * challenge sent on the 101 response), proves its own token to clients that ask (see
 * `holder-proof.ts`), binds the peer id to the principal, and hands each joined connection
 * to `onLink` as a `PeerLink`. Bearer tokens (no holder key) are accepted as they are.
 *
 * @example
 * const http = createServer(handleHealthAndMetrics);
 * const identity = { token: () => authority.selfToken("relay", DAY), sign: (bytes) => authority.sign(bytes) };
 * const sync = new SyncServer({ peerId, identity, verifier, onLink });
 * sync.attach(http);
 * http.listen(8080);
 */
export class SyncServer {
  readonly #options: SyncServerOptions;
  readonly #limits: Readonly<LinkLimits>;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #wss: WebSocketServer;
  readonly #sockets = new Set<WebSocket>();
  readonly #pending = new Set<HandshakeGuard>();
  readonly #links = new Map<string, WsLink>();
  readonly #metrics = { accepted: 0, messagesRefused: 0, bytesIn: 0, bytesOut: 0 };
  readonly #refused = new Map<string, number>();
  /** Sockets open now per remote address, upgrades under way included. */
  readonly #perAddress = new Map<string, number>();
  readonly #closedByCode = new Map<string, number>();
  /** Each upgrade's challenge, from `#authenticate` to the `headers` event that writes it out. */
  readonly #challenges = new WeakMap<IncomingMessage, string>();
  /** Whether our current token is bound to our signing key, checked once per token. */
  #ownToken: { token: string; bound: boolean } | undefined;
  #server: Server | undefined;
  #closing = false;

  constructor(options: SyncServerOptions) {
    this.#options = options;
    this.#limits = resolveLimits(options.limits);
    this.#logger = options.logger ?? silentLogger;
    const clock = options.clock ?? systemClock;
    this.#now = () => clock().getTime();
    this.#wss = new WebSocketServer({
      noServer: true,
      // We keep our own set; ws's would be a second one.
      clientTracking: false,
      maxPayload: this.#limits.maxFrameBytes,
      perMessageDeflate: false,
      // A token offered as `Sec-WebSocket-Protocol: bearer, <token>` selects `bearer`.
      handleProtocols: (protocols) => (protocols.has("bearer") ? "bearer" : false),
    });
    // ws found the upgrade request itself invalid (bad key, version or subprotocol list).
    this.#wss.on("wsClientError", (error, socket) => {
      this.#logger.info({ error: error.message }, "upgrade refused by ws");
      this.#count(this.#refused, "bad-request");
      refuseUpgrade(socket, 400, { error: "bad request" });
    });
    this.#wss.on("headers", (headers, request) => {
      const challenge = this.#challenges.get(request);
      if (challenge !== undefined) headers.push(`${CHALLENGE_HEADER}: ${challenge}`);
    });
  }

  /** Starts answering WebSocket upgrades on `server`. */
  attach(server: Server): void {
    if (this.#server !== undefined) throw new Error("SyncServer is already attached");
    this.#server = server;
    server.on("upgrade", this.#onUpgrade);
  }

  /** Joined links open now. */
  links(): PeerLink[] {
    return [...this.#links.values()];
  }

  metrics(): SyncServerMetrics {
    let bytesOut = this.#metrics.bytesOut;
    let messagesRefused = this.#metrics.messagesRefused;
    for (const link of this.#links.values()) {
      const stats = link.stats();
      bytesOut += stats.bytesOut;
      messagesRefused += stats.messagesRefused;
    }
    return {
      connectionsOpen: this.#sockets.size,
      linksOpen: this.#links.size,
      accepted: this.#metrics.accepted,
      refused: Object.fromEntries(this.#refused),
      messagesRefused,
      bytesIn: this.#metrics.bytesIn,
      bytesOut,
      closedByCode: Object.fromEntries(this.#closedByCode),
    };
  }

  /** Closes every connection (`goingAway`) and stops answering upgrades; resolves when all are gone. */
  async close(): Promise<void> {
    this.#closing = true;
    this.#server?.off("upgrade", this.#onUpgrade);
    const sockets = [...this.#sockets];
    for (const guard of [...this.#pending]) guard.fail(CloseCode.goingAway, "server shutting down");
    for (const link of [...this.#links.values()]) link.close(CloseCode.goingAway, "server shutting down");
    await Promise.all(
      sockets.map((socket) =>
        socket.readyState === socket.CLOSED ? undefined : new Promise<void>((resolve) => socket.once("close", () => resolve())),
      ),
    );
    this.#wss.close();
  }

  #onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    // Errors on the raw socket before ws owns it must not become uncaught exceptions.
    socket.on("error", () => socket.destroy());
    if (!this.#admitFromAddress(request.socket.remoteAddress ?? "", socket)) {
      this.#logger.info({ remote: request.socket.remoteAddress }, "upgrade refused: too many connections from one address");
      this.#count(this.#refused, "too-many-connections");
      return refuseUpgrade(socket, 429, { error: "too many connections" });
    }
    try {
      this.#authenticate(request, socket, head);
    } catch (error) {
      this.#logger.error({ path: safeRequestPath(request), error: describeError(error) }, "upgrade failed");
      this.#count(this.#refused, "internal");
      refuseUpgrade(socket, 500, { error: "internal" });
    }
  };

  /** Counts the socket against its address until it closes, unless the address is at its cap. */
  #admitFromAddress(address: string, socket: Duplex): boolean {
    const open = this.#perAddress.get(address) ?? 0;
    if (open >= this.#limits.maxConnectionsPerAddress) return false;
    this.#perAddress.set(address, open + 1);
    socket.once("close", () => {
      const left = (this.#perAddress.get(address) ?? 1) - 1;
      if (left > 0) this.#perAddress.set(address, left);
      else this.#perAddress.delete(address);
    });
    return true;
  }

  #authenticate(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const context = { path: safeRequestPath(request), remote: request.socket.remoteAddress };
    if (this.#closing) {
      this.#count(this.#refused, "shutting-down");
      return refuseUpgrade(socket, 503, { error: "shutting down" });
    }
    const token = readBearerToken(request);
    if (token === undefined) {
      this.#logger.info(context, "upgrade without a token");
      this.#count(this.#refused, "no-token");
      return refuseUpgrade(socket, 401, { error: "unauthorized", problem: "no-token" });
    }
    let principal: Principal;
    try {
      principal = this.#options.verifier.verify(token, this.#now());
    } catch (error) {
      if (!(error instanceof TokenError)) throw error;
      // The problem only: a verifier's message might quote the token.
      this.#logger.info({ ...context, problem: error.problem }, "upgrade with a refused token");
      this.#count(this.#refused, error.problem);
      return refuseUpgrade(socket, 401, { error: "unauthorized", problem: error.problem });
    }
    // Fresh per connection: a proof signed for one connection is worthless on any other.
    const challenge = newNonce();
    this.#challenges.set(request, challenge);
    this.#wss.handleUpgrade(request, socket, head, (ws) => this.#onConnection(ws, principal, challenge, context));
  }

  #onConnection(socket: WebSocket, principal: Principal, challenge: string, context: Record<string, unknown>): void {
    this.#metrics.accepted += 1;
    this.#sockets.add(socket);
    socket.once("close", () => this.#sockets.delete(socket));
    socket.on("message", (data: Buffer | ArrayBuffer | Buffer[]) => {
      this.#metrics.bytesIn += Array.isArray(data) ? data.reduce((n, b) => n + b.byteLength, 0) : data.byteLength;
    });
    const logContext = { ...context, user: principal.user };
    this.#logger.debug(logContext, "connection open");
    const guard: HandshakeGuard = new HandshakeGuard({
      socket,
      limits: this.#limits,
      logger: this.#logger,
      context: logContext,
      onBytes: (direction, bytes) => {
        if (direction === "out") this.#metrics.bytesOut += bytes;
      },
      onMessage: (message) => this.#onHandshakeMessage(guard, socket, principal, challenge, message),
      onEnd: (end) => this.#onHandshakeEnd(guard, end),
    });
    this.#pending.add(guard);
  }

  #onHandshakeMessage(guard: HandshakeGuard, socket: WebSocket, principal: Principal, challenge: string, message: ClientOrServerMessage): void {
    if (message.type !== "join") return guard.fail(CloseCode.malformedMessage, `expected join, got ${message.type}`, true);
    const { peerId } = this.#options;
    const remotePeerId = message.senderId;
    const refuse = (code: number, text: string) => {
      guard.send({ type: "error", senderId: peerId, targetId: remotePeerId, message: text });
      guard.fail(code, text);
    };
    if (!message.supportedProtocolVersions.includes(PROTOCOL_VERSION)) {
      return refuse(CloseCode.malformedMessage, "unsupported protocol version");
    }
    const nonce = message.peerMetadata["ordoNonce"];
    if (nonce !== undefined && !isNonce(nonce)) return refuse(CloseCode.malformedMessage, "ordoNonce is not 32 bytes of base64url");
    // Before the peer id check: a client that cannot prove its token must not displace the holder's link.
    if (principal.holderKey !== undefined) {
      const proof = message.peerMetadata["ordoProof"];
      if (typeof proof !== "string" || !verifyHolderSignature(principal.holderKey, joinProofBytes(challenge, remotePeerId), proof)) {
        this.#logger.warn({ peer: remotePeerId, user: principal.user, proof: typeof proof === "string" ? "invalid" : "missing" }, "join without proof of the token's holder key");
        return refuse(CloseCode.unauthenticated, "token holder proof missing or invalid");
      }
    }
    const holder = this.#links.get(remotePeerId);
    if (remotePeerId === peerId || (holder !== undefined && !samePrincipal(holder.principal, principal))) {
      this.#logger.warn({ peer: remotePeerId, user: principal.user }, "join with a peer id another principal holds");
      return refuse(CloseCode.peerIdTaken, "peer id taken");
    }
    // The same principal again (a reconnect the old socket has not noticed): the new one wins.
    holder?.close(CloseCode.normal, "replaced");

    guard.send({
      type: "peer",
      senderId: peerId,
      targetId: remotePeerId,
      peerMetadata: { ...withoutHandshakeFields(this.#options.metadata?.()), ordoSeq: true, ...(nonce === undefined ? {} : this.#presentSelf(nonce, remotePeerId)) },
      selectedProtocolVersion: PROTOCOL_VERSION,
    });
    const link = new WsLink({
      socket,
      direction: "inbound",
      localPeerId: peerId,
      remotePeerId,
      principal,
      remoteMetadata: message.peerMetadata,
      sequenced: message.peerMetadata["ordoSeq"] === true,
      limits: this.#limits,
      logger: this.#logger,
    });
    guard.release();
    this.#pending.delete(guard);
    this.#links.set(remotePeerId, link);
    link.once("close", ({ code }) => this.#onLinkClose(link, code));
    this.#logger.info({ link: link.id, peer: remotePeerId, user: principal.user }, "peer joined");
    try {
      this.#options.onLink(link);
    } catch (error) {
      this.#logger.error({ link: link.id, error: describeError(error) }, "onLink threw");
      link.close(INTERNAL_ERROR, "internal error");
    }
  }

  /**
   * Our token and our signature over the client's nonce, for a client that asked; nothing
   * when our token is not bound to our signing key: a token we cannot prove is a bearer
   * token, and handing it to every client is the very leak proofs exist to stop.
   */
  #presentSelf(nonce: string, remotePeerId: string): { ordoToken?: string; ordoProof?: string } {
    const { identity, peerId } = this.#options;
    const token = identity.token();
    const sign = identity.sign;
    if (sign === undefined || !this.#isBound(token, sign)) return {};
    return { ordoToken: token, ordoProof: sign(peerProofBytes(nonce, peerId, remotePeerId)) };
  }

  #isBound(token: string, sign: (bytes: Uint8Array) => string): boolean {
    if (this.#ownToken?.token === token) return this.#ownToken.bound;
    let bound = false;
    try {
      const { holderKey } = this.#options.verifier.verify(token, this.#now());
      const probe = Buffer.from(`ordo-self-check\n${newNonce()}`, "utf8");
      bound = holderKey !== undefined && verifyHolderSignature(holderKey, probe, sign(probe));
    } catch (error) {
      this.#logger.warn({ error: error instanceof TokenError ? error.problem : describeError(error) }, "our own token does not verify");
    }
    if (!bound) this.#logger.warn({}, "our token is not bound to our signing key: we send it to no client, and Ordo dialers refuse this server");
    this.#ownToken = { token, bound };
    return bound;
  }

  #onHandshakeEnd(guard: HandshakeGuard, end: HandshakeEnd): void {
    this.#pending.delete(guard);
    if (end.malformed) this.#metrics.messagesRefused += 1;
    this.#count(this.#closedByCode, String(end.code));
  }

  #onLinkClose(link: WsLink, code: number): void {
    if (this.#links.get(link.remotePeerId) === link) this.#links.delete(link.remotePeerId);
    const stats = link.stats();
    this.#metrics.bytesOut += stats.bytesOut;
    this.#metrics.messagesRefused += stats.messagesRefused;
    this.#count(this.#closedByCode, String(code));
    this.#logger.info({ link: link.id, peer: link.remotePeerId, code }, "link closed");
  }

  #count(counts: Map<string, number>, key: string): void {
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
}

/** The same identity from the same authority: only then may a peer id change hands. */
function samePrincipal(a: Principal, b: Principal): boolean {
  return a.user === b.user && a.issuer === b.issuer;
}
