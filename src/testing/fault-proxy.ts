import { CHALLENGE_HEADER } from "../net/holder-proof.js";
import { EventEmitter } from "node:events";
import { createServer, STATUS_CODES, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { WebSocket, WebSocketServer, type RawData } from "ws";
import { isSendableCode, toBytes, truncateReason } from "../net/socket-utils.js";
import { decodeFrame, isDocMessage } from "../net/wire.js";

/** `up`: from the client that dialled the proxy towards the upstream server; `down`: back. */
export type ProxyDirection = "up" | "down";

/**
 * What happens to the chosen message: `drop` loses it, `duplicate` delivers it twice,
 * `reorder` holds it back and delivers it right after the message that follows it.
 */
export type ProxyFault = "drop" | "duplicate" | "reorder";

/** One socket of a proxied connection closed; `side` says which end closed it first. */
export interface ProxyClose {
  /** 1 for the first connection the proxy accepted. */
  connection: number;
  /** `client`: the dialler's socket; `upstream`: the proxy's own socket to the server. */
  side: "client" | "upstream";
  code: number;
  reason: string;
}

export interface FaultProxyEvents {
  /** A client's upgrade went through to the upstream server. */
  connection: [number];
  /** A fault was applied to a message of this connection. */
  fault: [{ connection: number; direction: ProxyDirection; fault: ProxyFault }];
  close: [ProxyClose];
  /** Every message as it arrived at the proxy, before any fault. */
  message: [{ connection: number; direction: ProxyDirection; data: Buffer; isBinary: boolean }];
}

interface PendingFault {
  fault: ProxyFault;
  /** Document messages still to let through before the faulty one. */
  skip: number;
}

interface Frame {
  data: Buffer;
  isBinary: boolean;
}

/**
 * A message-level WebSocket proxy for tests: it accepts a client's upgrade, opens its own
 * connection to `upstream` (same path and query, same `Authorization` header; subprotocols
 * are not forwarded) and relays every message both ways, frame for frame, mirroring close
 * codes. On request it drops, duplicates or reorders one document message (`sync`,
 * `request`, `doc-unavailable`; handshake and ephemeral messages are never touched), to
 * show what the ends make of a transport that is not reliable and ordered.
 */
export class FaultProxy extends EventEmitter<FaultProxyEvents> {
  /** Every socket close, in order. */
  readonly closes: ProxyClose[] = [];
  readonly #http: Server;
  readonly #wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  readonly #upstream: string;
  readonly #sockets = new Set<WebSocket>();
  readonly #pending = new Map<ProxyDirection, PendingFault>();
  readonly #held = new Map<ProxyDirection, Frame>();
  #connections = 0;
  #offline = false;

  private constructor(upstream: string, http: Server) {
    super();
    this.#upstream = upstream;
    this.#http = http;
    http.on("upgrade", (request: IncomingMessage, socket: Duplex, head: Buffer) => this.#onUpgrade(request, socket, head));
  }

  /** A proxy to `upstream` (a `ws://` URL) listening on a free loopback port. */
  static async start(upstream: string): Promise<FaultProxy> {
    const http = createServer((_request, response) => response.writeHead(404).end());
    await new Promise<void>((resolve, reject) => {
      http.once("error", reject);
      http.listen(0, "127.0.0.1", () => resolve());
    });
    return new FaultProxy(upstream, http);
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.#http.address() as AddressInfo).port}`;
  }

  /** Connections accepted so far. */
  get connections(): number {
    return this.#connections;
  }

  /**
   * Applies `fault` to the `nth` document message (1 for the next one) that travels in
   * `direction` from now on, on whichever connection carries it; once.
   */
  inject(direction: ProxyDirection, fault: ProxyFault, nth = 1): void {
    if (!(nth >= 1)) throw new RangeError("nth counts from 1");
    this.#pending.set(direction, { fault, skip: nth - 1 });
  }

  /** Ends every connection and stops listening. */
  async close(): Promise<void> {
    const sockets = [...this.#sockets];
    for (const socket of sockets) socket.terminate();
    await Promise.all(sockets.map((socket) => (socket.readyState === socket.CLOSED ? undefined : new Promise((resolve) => socket.once("close", resolve)))));
    this.#wss.close();
    this.#http.closeAllConnections();
    await new Promise<void>((resolve) => this.#http.close(() => resolve()));
  }

  /** Whether the line is down (`offline`): no connection gets through. */
  get isOffline(): boolean {
    return this.#offline;
  }

  /** A partition: every connection ends abruptly and new ones are refused until `online()`. */
  offline(): void {
    this.#offline = true;
    this.#held.clear();
    for (const socket of this.#sockets) socket.terminate();
  }

  online(): void {
    this.#offline = false;
  }

  #onUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on("error", () => socket.destroy());
    if (this.#offline) return void socket.destroy();
    const target = new URL(request.url ?? "/", this.#upstream);
    const authorization = request.headers.authorization;
    const upstream = new WebSocket(target, { headers: authorization === undefined ? {} : { authorization }, perMessageDeflate: false });
    this.#track(upstream);
    const refuse = () => socket.destroy();
    upstream.on("error", refuse);
    // The server refused the upgrade: so does the proxy, with the same status.
    upstream.on("unexpected-response", (_request, response) => {
      const status = response.statusCode ?? 502;
      response.resume();
      upstream.terminate();
      socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    });
    // The server's challenge must reach the client, which signs it in its join.
    let challenge: string | undefined;
    upstream.once("upgrade", (response) => {
      const value = response.headers[CHALLENGE_HEADER];
      challenge = typeof value === "string" ? value : undefined;
    });
    upstream.once("open", () => {
      upstream.off("error", refuse);
      if (socket.destroyed) return upstream.terminate();
      const passChallenge = (headers: string[], upgraded: IncomingMessage) => {
        if (upgraded === request && challenge) headers.push(`${CHALLENGE_HEADER}: ${challenge}`);
      };
      this.#wss.on("headers", passChallenge);
      this.#wss.handleUpgrade(request, socket, head, (client) => this.#pair(client, upstream));
      this.#wss.off("headers", passChallenge);
    });
  }

  #pair(client: WebSocket, upstream: WebSocket): void {
    const connection = ++this.#connections;
    this.#track(client);
    // A held-back message belongs to the connection it came on.
    this.#held.clear();
    client.on("message", (data, isBinary) => this.#forward(connection, "up", data, isBinary, upstream));
    upstream.on("message", (data, isBinary) => this.#forward(connection, "down", data, isBinary, client));
    const onClose = (side: ProxyClose["side"], other: WebSocket) => (code: number, reason: Buffer) => {
      this.#closed({ connection, side, code, reason: reason.toString("utf8") });
      if (other.readyState === other.CLOSED || other.readyState === other.CLOSING) return;
      // The other end hears the code this end closed with, as if there were no proxy.
      if (isSendableCode(code)) other.close(code, truncateReason(reason.toString("utf8")));
      else other.terminate();
    };
    client.on("close", onClose("client", upstream));
    upstream.on("close", onClose("upstream", client));
    this.emit("connection", connection);
  }

  #forward(connection: number, direction: ProxyDirection, data: RawData, isBinary: boolean, to: WebSocket): void {
    const frame: Frame = { data: Buffer.from(toBytes(data)), isBinary };
    this.emit("message", { connection, direction, ...frame });
    for (const out of this.#apply(connection, direction, frame)) {
      if (to.readyState === to.OPEN) to.send(out.data, { binary: out.isBinary });
    }
  }

  /** The frames to send now for one frame received. */
  #apply(connection: number, direction: ProxyDirection, frame: Frame): Frame[] {
    if (!isDocFrame(frame)) return [frame];
    const held = this.#held.get(direction);
    if (held !== undefined) {
      this.#held.delete(direction);
      return [frame, held];
    }
    const pending = this.#pending.get(direction);
    if (pending === undefined) return [frame];
    if (pending.skip > 0) {
      pending.skip -= 1;
      return [frame];
    }
    this.#pending.delete(direction);
    this.emit("fault", { connection, direction, fault: pending.fault });
    switch (pending.fault) {
      case "drop":
        return [];
      case "duplicate":
        return [frame, frame];
      case "reorder":
        this.#held.set(direction, frame);
        return [];
    }
  }

  #closed(close: ProxyClose): void {
    this.closes.push(close);
    this.emit("close", close);
  }

  #track(socket: WebSocket): void {
    this.#sockets.add(socket);
    // A socket of a test proxy may fail in any way the test provokes; that is not an error here.
    socket.on("error", () => undefined);
    socket.once("close", () => this.#sockets.delete(socket));
  }
}

function isDocFrame(frame: Frame): boolean {
  if (!frame.isBinary) return false;
  try {
    return isDocMessage(decodeFrame(frame.data));
  } catch {
    return false;
  }
}
