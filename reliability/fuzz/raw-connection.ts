import { randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";
import { CHALLENGE_HEADER } from "../../src/net/holder-proof.js";
import { decodeFrame, encodeFrame, type ClientOrServerMessage, type PeerMessage } from "../../src/net/wire.js";
import { binaryFrame, buildFrame, readServerFrames } from "./ws-frame.js";

/** How a connection stood when a fuzz case stopped watching it. */
export type Settled = { state: "closed"; code: number | undefined } | { state: "open" } | { state: "timeout" };

/**
 * A WebSocket client on a bare TCP socket: a real HTTP upgrade with a token, then whatever
 * bytes a case writes. It reads the server's frames (answering its pings, as any client
 * must), keeps the binary messages it can decode and the code of the close frame, if any.
 */
export class RawConnection {
  readonly messages: ClientOrServerMessage[] = [];
  /** The code in the server's close frame; undefined until one arrives (or if none does). */
  closeCode: number | undefined;
  closed = false;
  challenge = "";
  #buffer: Buffer = Buffer.alloc(0);
  #head = false;
  #pongs = new Set<string>();
  #waiters: Array<() => void> = [];

  private constructor(readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("close", () => {
      this.closed = true;
      this.#wake();
    });
    socket.on("error", () => undefined);
  }

  /** Connects and upgrades with `token` as a bearer header; rejects with the HTTP status if refused. */
  static async open(port: number, token: string, timeoutMs = 10_000): Promise<RawConnection> {
    const socket = connect(port, "127.0.0.1");
    const connection = new RawConnection(socket);
    const key = randomBytes(16).toString("base64");
    socket.write(
      `GET /sync HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer ${token}\r\n\r\n`,
    );
    const upgraded = await connection.#until(() => connection.#head, timeoutMs);
    if (!upgraded) {
      connection.destroy();
      throw new Error(connection.closed ? "the relay dropped an upgrade with a valid token" : "no answer to an upgrade");
    }
    return connection;
  }

  /** Sends a `join` and waits for the `peer` answer; rejects if the server closes or errors instead. */
  async join(message: { senderId: string; peerMetadata: Record<string, unknown> }, timeoutMs = 10_000): Promise<PeerMessage> {
    this.write(binaryFrame(encodeFrame({ type: "join", supportedProtocolVersions: ["1"], ...message })));
    let peer: ClientOrServerMessage | undefined;
    await this.#until(() => (peer = this.messages.find((m) => m.type === "peer" || m.type === "error")) !== undefined || this.closed, timeoutMs);
    if (peer?.type !== "peer") throw new Error(`an honest join was refused (${peer?.type === "error" ? peer.message : this.closed ? `closed ${String(this.closeCode)}` : "no answer"})`);
    return peer;
  }

  write(bytes: Uint8Array): void {
    if (!this.closed && this.socket.writable) this.socket.write(bytes);
  }

  /**
   * Sends a ping after whatever was written and waits for its pong (the server read every
   * frame before it and kept the connection) or for the connection to close.
   */
  async settle(timeoutMs: number): Promise<Settled> {
    const token = randomBytes(8).toString("hex");
    this.write(buildFrame({ opcode: 9, payload: Buffer.from(token) }));
    const done = await this.#until(() => this.closed || this.#pongs.has(token), timeoutMs);
    if (!done) return { state: "timeout" };
    return this.closed ? { state: "closed", code: this.closeCode } : { state: "open" };
  }

  /** Ends our side and waits for the server to close too. */
  async endAndWait(timeoutMs: number): Promise<Settled> {
    if (!this.closed) this.socket.end();
    const done = await this.#until(() => this.closed, timeoutMs);
    return done ? { state: "closed", code: this.closeCode } : { state: "timeout" };
  }

  /** Waits until `condition` holds, the connection closes, or the time is up. */
  async until(condition: () => boolean, timeoutMs: number): Promise<boolean> {
    return this.#until(() => condition() || this.closed, timeoutMs).then(() => condition());
  }

  destroy(): void {
    this.socket.destroy();
  }

  async #until(condition: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return true;
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }

  #onData(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    if (!this.#head) {
      const end = this.#buffer.indexOf("\r\n\r\n");
      if (end < 0) return;
      const head = this.#buffer.subarray(0, end).toString("latin1");
      this.#buffer = this.#buffer.subarray(end + 4);
      if (!head.startsWith("HTTP/1.1 101")) {
        this.socket.destroy();
        return;
      }
      this.challenge = new RegExp(`^${CHALLENGE_HEADER}: (\\S+)`, "im").exec(head)?.[1] ?? "";
      this.#head = true;
    }
    const { frames, rest } = readServerFrames(this.#buffer);
    this.#buffer = rest;
    for (const frame of frames) {
      if (frame.opcode === 2) {
        try {
          this.messages.push(decodeFrame(frame.payload));
        } catch {
          // A server message we cannot read is the server's business; the case watches the connection.
        }
      } else if (frame.opcode === 8) {
        this.closeCode = frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : 1005;
        // Answer the close as a browser would, so the server need not wait out its grace.
        this.write(buildFrame({ opcode: 8, payload: frame.payload.subarray(0, 2) }));
        this.socket.end();
      } else if (frame.opcode === 9) {
        this.write(buildFrame({ opcode: 10, payload: frame.payload }));
      } else if (frame.opcode === 10) {
        this.#pongs.add(frame.payload.toString());
      }
    }
    this.#wake();
  }
}
