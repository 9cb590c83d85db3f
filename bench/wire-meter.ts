import { connect, createServer, type Socket } from "node:net";

/**
 * What crossed the wire since the last `mark()`: WebSocket messages and their bytes each way,
 * counted from the frames themselves, so ours and stock are counted the same way whatever
 * their libraries say about themselves. "Up" is from the joining side to the server.
 */
export interface WireWindow {
  /** Connections that reached the server in this window. */
  connections: number;
  /** Of those, connections the server ended (not `cut()`): a stock server drops a client that misses its pings. */
  serverCloses: number;
  /** When the first of them was accepted (`performance.now()` of the child). */
  connectedAt: number | null;
  messagesUp: number;
  messagesDown: number;
  /** Payload bytes of those messages (frame headers and the HTTP upgrade left out). */
  bytesUp: number;
  bytesDown: number;
  /** When the last data message of the window was complete, either way. */
  lastMessageAt: number | null;
}

/**
 * A loopback TCP proxy between a joining node and its server that counts WebSocket messages
 * and can take the joining side offline: `cut()` drops every connection, as a network that
 * goes away would; `setOnline(false)` also turns new connections away until it is set back.
 */
export interface WireMeter {
  /** `ws://127.0.0.1:<port>`: dial this instead of the server. */
  readonly url: string;
  /** Starts a new window: counts from zero, and `connectedAt` is the next connection's. */
  mark(): void;
  window(): WireWindow;
  cut(): void;
  /**
   * Offline stops listening (after cutting every connection), so dials are refused as by a
   * machine with no network: the stock client adapter survives a refused dial, not a
   * connection dropped during its upgrade. Online listens again on the same port.
   */
  setOnline(online: boolean): Promise<void>;
  /**
   * Resolves with the window once a connection was made in it and is open, at least one message
   * crossed, and no message has crossed for `quietMs`; with undefined at `deadline` (`performance.now()`).
   * A joining side that lost its connection is not done: it is waiting to redial.
   * With `lastBusyAt` (the last moment, in `performance.now()` time, when either end was busy
   * working), both ends must also have been idle for `quietMs`.
   */
  whenQuiet(quietMs: number, deadline: number, lastBusyAt?: () => Promise<number | null>): Promise<WireWindow | undefined>;
  close(): Promise<void>;
}

/** Opcodes of data frames: a continuation, text and binary. Control frames (close, ping, pong) are not messages. */
const DATA_OPCODES = new Set([0x0, 0x1, 0x2]);
const HEADER_END = Buffer.from("\r\n\r\n");

/**
 * Counts the messages in one direction of one WebSocket connection: skips the HTTP upgrade,
 * then reads frame headers and skips payloads without copying them. A connection whose
 * upgrade was refused carries no frames, and nothing of it is counted.
 */
class FrameCounter {
  #upgraded = false;
  #dead = false;
  #pending: Buffer = Buffer.alloc(0);
  /** Payload bytes of the current frame not yet seen. */
  #skip = 0;
  #fin = false;
  #opcode = 0;
  /** Payload bytes of the message being assembled (it may span fragments). */
  #messageBytes = 0;
  /** The current frame is an `ordo-sent`, not counted (see `isSentCount`). */
  #sentCount = false;

  constructor(
    private readonly fromServer: boolean,
    private readonly onMessage: (bytes: number) => void,
  ) {}

  push(chunk: Buffer): void {
    if (this.#dead) return;
    const buf = this.#pending.length > 0 ? Buffer.concat([this.#pending, chunk]) : chunk;
    this.#pending = Buffer.alloc(0);
    let offset = 0;
    if (!this.#upgraded) {
      const end = buf.indexOf(HEADER_END);
      if (end === -1) {
        this.#pending = Buffer.from(buf);
        return;
      }
      // A refused upgrade (401, 403...) is an HTTP answer with no frames after it.
      if (this.fromServer && !buf.subarray(0, end).toString("latin1").startsWith("HTTP/1.1 101")) {
        this.#dead = true;
        return;
      }
      this.#upgraded = true;
      offset = end + HEADER_END.length;
    }
    while (offset < buf.length) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, buf.length - offset);
        this.#skip -= n;
        offset += n;
        if (this.#skip === 0) this.#frameDone();
        continue;
      }
      const available = buf.length - offset;
      if (available < 2) break;
      const b0 = buf[offset]!;
      const b1 = buf[offset + 1]!;
      let length = b1 & 0x7f;
      let header = 2;
      if (length === 126) {
        if (available < 4) break;
        length = buf.readUInt16BE(offset + 2);
        header = 4;
      } else if (length === 127) {
        if (available < 10) break;
        length = Number(buf.readBigUInt64BE(offset + 2));
        header = 10;
      }
      // A client's frames carry a 4-byte mask key.
      if (b1 & 0x80) header += 4;
      if (available < header) break;
      this.#fin = (b0 & 0x80) !== 0;
      this.#opcode = b0 & 0x0f;
      this.#sentCount = this.#fin && this.#opcode === 0x2 && available >= header + length && isSentCount(buf.subarray(offset, offset + header + length), header, length);
      offset += header;
      this.#skip = length;
      if (DATA_OPCODES.has(this.#opcode)) this.#messageBytes += length;
      if (length === 0) this.#frameDone();
    }
    if (offset < buf.length) this.#pending = Buffer.from(buf.subarray(offset));
  }

  #frameDone(): void {
    if (!DATA_OPCODES.has(this.#opcode) || !this.#fin) return;
    if (!this.#sentCount) this.onMessage(this.#messageBytes);
    this.#messageBytes = 0;
  }
}

const SENT_COUNT_TYPE = Buffer.from("ordo-sent");

/**
 * Whether a whole single frame is an Ordo link's `ordo-sent`: the count of messages it sent,
 * which a link adds a second after each burst to notice a lost one. It is transport
 * bookkeeping, like a ping, not part of any exchange: counted, it would stretch every
 * measured exchange to a second. A tiny frame split across reads is counted, to be safe.
 */
function isSentCount(frame: Buffer, header: number, length: number): boolean {
  if (length > 128) return false;
  const payload = Buffer.from(frame.subarray(header, header + length));
  const masked = (frame[1]! & 0x80) !== 0;
  if (masked) {
    const key = frame.subarray(header - 4, header);
    for (let i = 0; i < payload.length; i++) payload[i]! ^= key[i % 4]!;
  }
  return payload.includes(SENT_COUNT_TYPE);
}

function emptyWindow(): WireWindow {
  return { connections: 0, serverCloses: 0, connectedAt: null, messagesUp: 0, messagesDown: 0, bytesUp: 0, bytesDown: 0, lastMessageAt: null };
}

/** Starts a meter in front of the WebSocket server at `target` (`ws://host:port`). */
export async function startWireMeter(target: string): Promise<WireMeter> {
  const upstreamUrl = new URL(target);
  const upstreamPort = Number(upstreamUrl.port);
  const upstreamHost = upstreamUrl.hostname;
  const sockets = new Set<Socket>();
  /** The joining side's end of each connection open now. */
  const clients = new Set<Socket>();
  /** Sockets `cut()` destroyed: their closes are ours, not the server's. */
  const cutSockets = new WeakSet<Socket>();
  let window = emptyWindow();

  const server = createServer((client) => {
    const upstream = connect(upstreamPort, upstreamHost);
    // Counted against the window open when the connection came: a cut connection's stragglers
    // must not land in the next window.
    const own = window;
    own.connections++;
    own.connectedAt ??= performance.now();
    const up = new FrameCounter(false, (bytes) => {
      own.messagesUp++;
      own.bytesUp += bytes;
      own.lastMessageAt = performance.now();
    });
    const down = new FrameCounter(true, (bytes) => {
      own.messagesDown++;
      own.bytesDown += bytes;
      own.lastMessageAt = performance.now();
    });
    clients.add(client);
    let closed = false;
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.setNoDelay(true);
      socket.on("error", () => socket.destroy());
      socket.on("close", () => {
        sockets.delete(socket);
        clients.delete(client);
        // Whichever end closes first ended the connection.
        if (!closed && socket === upstream && !cutSockets.has(upstream)) own.serverCloses++;
        closed = true;
        client.destroy();
        upstream.destroy();
      });
    }
    client.on("data", (chunk: Buffer) => up.push(chunk));
    upstream.on("data", (chunk: Buffer) => down.push(chunk));
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;

  const cut = () => {
    for (const socket of sockets) {
      cutSockets.add(socket);
      socket.destroy();
    }
  };
  return {
    url: `ws://127.0.0.1:${port}`,
    mark: () => {
      window = emptyWindow();
    },
    window: () => ({ ...window }),
    cut,
    setOnline: async (online) => {
      if (online === server.listening) return;
      if (online) {
        await new Promise<void>((resolve, reject) => {
          server.once("error", reject);
          server.listen(port, "127.0.0.1", () => {
            server.off("error", reject);
            resolve();
          });
        });
        return;
      }
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      cut();
      await closed;
    },
    whenQuiet: async (quietMs, deadline, lastBusyAt) => {
      const watched = window;
      for (;;) {
        const now = performance.now();
        if (watched.connections > 0 && clients.size > 0 && watched.lastMessageAt !== null && now - watched.lastMessageAt >= quietMs) {
          const busy = lastBusyAt ? await lastBusyAt() : null;
          if (busy === null || performance.now() - busy >= quietMs) return { ...watched };
        }
        if (now >= deadline) return undefined;
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
    close: async () => {
      const closed = server.listening ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
      cut();
      await closed;
    },
  };
}
