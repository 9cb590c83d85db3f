import { afterEach } from "vitest";
/**
 * Test-only pieces for the net tests: a token verifier with readable tokens, a SyncServer on
 * a loopback port, a WebSocket client that does the handshake by hand, a raw TCP client for
 * hand-made frames, and a logger that keeps what it is given.
 */
import { once, EventEmitter } from "node:events";
import { createServer, type Server } from "node:http";
import { connect as connectTcp, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { WebSocket, type ClientOptions } from "ws";
import type { DocMessage, PeerLink } from "../../src/net/peer-link.js";
import { CHALLENGE_HEADER } from "../../src/net/holder-proof.js";
import { ROLES, TokenError, type Principal, type Role, type TokenVerifier } from "../../src/net/principal.js";
import { SyncServer, type SyncServerOptions } from "../../src/net/sync-server.js";
import { decodeFrame, encodeFrame, type ClientOrServerMessage, type PeerMessage } from "../../src/net/wire.js";
import type { Logger } from "../../src/util/logger.js";

/**
 * Tokens `ok.<user>.<role>[.<expiresAtMs>[.<holderKey>]]` name a principal (an empty
 * expiry: an hour from now); anything else is forged. A `node` token without a holder key
 * is refused as `unbound`, as `Verifier` does. Dots, not colons: a token offered in
 * `Sec-WebSocket-Protocol` must be an HTTP token.
 */
export const testVerifier: TokenVerifier = {
  verify(token: string, now = Date.now()): Principal {
    const [ok, user, role, expires, holderKey, ...rest] = token.split(".");
    if (ok !== "ok" || !user || rest.length > 0) throw new TokenError("forged", "not a test token");
    if (!ROLES.includes(role as Role)) throw new TokenError("malformed", "unknown role");
    const expiresAt = expires === undefined || expires === "" ? now + 3_600_000 : Number(expires);
    if (!(expiresAt > now)) throw new TokenError("expired", "token expired");
    if (role === "node" && holderKey === undefined) throw new TokenError("unbound", "node token without a holder key");
    return { user, role: role as Role, courses: ["*"], tokenId: token, issuer: "test-issuer", expiresAt, ...(holderKey === undefined ? {} : { holderKey }) };
  },
};

/** An Ed25519 key pair as the transport sees one: the public half as tokens name it, and a signer. */
export interface TestKey {
  publicKey: string;
  sign: (bytes: Uint8Array) => string;
}

export function testKey(): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return { publicKey: publicKey.export({ format: "jwk" }).x!, sign: (bytes) => sign(null, bytes, privateKey).toString("base64url") };
}

/** A test token bound to `key`. */
export function boundToken(user: string, role: Role, key: TestKey): string {
  return `ok.${user}.${role}..${key.publicKey}`;
}

export const SERVER_PEER = "server-peer";
export const SERVER_KEY = testKey();
/** The test server's own token: a node token bound to `SERVER_KEY`. */
export const SERVER_TOKEN = boundToken("relay", "node", SERVER_KEY);
/** Valid base58 document ids. */
export const DOC_A = "4NMNnkMhL8jXrdJ9jamS58PAVdXu";
const BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
/** A distinct valid document id for each `n`. */
export function docId(n: number): string {
  let id = "";
  do {
    id = BASE58[n % 58]! + id;
    n = Math.floor(n / 58);
  } while (n > 0);
  return `Doc${id}`;
}

/** A logger that keeps every line as JSON, to search for what must not be logged. */
export function captureLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const keep = (level: string) => (obj: object, msg?: string) => lines.push(JSON.stringify({ level, ...obj, msg }));
  return { lines, debug: keep("debug"), info: keep("info"), warn: keep("warn"), error: keep("error") };
}

export interface TestServer {
  http: Server;
  sync: SyncServer;
  port: number;
  url: string;
  links: PeerLink[];
  nextLink(): Promise<PeerLink>;
  close(): Promise<void>;
}

/**
 * A SyncServer on 127.0.0.1:0. With `echo`, every sync message a link receives goes back
 * to its sender with the same document and data: an honest exchange to check.
 */
/**
 * A `setup` that starts a test server and closes it (and anything else registered in
 * `cleanups`) after each test. Call once at the top of a test file.
 */
export function serversPerTest(): { setup: (options?: Parameters<typeof startServer>[0]) => Promise<TestServer>; cleanups: Array<() => Promise<void> | void> } {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  const setup = async (options: Parameters<typeof startServer>[0] = {}) => {
    const server = await startServer(options);
    cleanups.push(() => server.close());
    return server;
  };
  return { setup, cleanups };
}

export async function startServer(
  options: Partial<SyncServerOptions> & { echo?: boolean } = {},
): Promise<TestServer> {
  const http = createServer((_request, response) => response.writeHead(404).end());
  const links: PeerLink[] = [];
  const events = new EventEmitter();
  const { echo = true, ...rest } = options;
  const sync = new SyncServer({
    peerId: SERVER_PEER,
    identity: { token: () => SERVER_TOKEN, sign: SERVER_KEY.sign },
    verifier: testVerifier,
    onLink: (link) => {
      links.push(link);
      if (echo) link.on("message", (message) => link.send(reply(message)));
      events.emit("link", link);
    },
    ...rest,
  });
  sync.attach(http);
  http.listen(0, "127.0.0.1");
  await once(http, "listening");
  const port = (http.address() as AddressInfo).port;
  return {
    http,
    sync,
    port,
    url: `ws://127.0.0.1:${port}/sync`,
    links,
    nextLink: async () => (await once(events, "link"))[0] as PeerLink,
    close: async () => {
      await sync.close();
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
    },
  };
}

/** The answer an echoing peer gives. */
export function reply(message: DocMessage): DocMessage {
  return { ...message, senderId: message.targetId, targetId: message.senderId };
}

export function syncMessage(senderId: string, documentId = DOC_A, data = new Uint8Array([1, 2, 3])): DocMessage {
  return { type: "sync", senderId, targetId: SERVER_PEER, documentId, data };
}

export interface OpenClient {
  ws: WebSocket;
  /** The `x-ordo-challenge` of the upgrade response. */
  challenge: string | undefined;
  send(message: object): void;
  /** The next message from the server, decoded. */
  next(): Promise<ClientOrServerMessage>;
  /** The close code and reason the server sent (or 1006). */
  closed: Promise<{ code: number; reason: string }>;
}

export interface TestClient extends OpenClient {
  peer: PeerMessage;
}

export interface TestClientOptions {
  token?: string;
  peerId?: string;
  ordoSeq?: boolean;
  socket?: ClientOptions;
  protocols?: string[];
  /** More join metadata, given the server's challenge (for `ordoNonce`, `ordoProof`). */
  metadata?: (challenge: string | undefined) => Record<string, unknown>;
}

/** A ws client that joins by hand, to send what a well-behaved client would not. */
export async function joinClient(url: string, options: TestClientOptions = {}): Promise<TestClient> {
  const client = await openClient(url, options);
  const peer = await client.next();
  if (peer.type !== "peer") throw new Error(`expected peer, got ${peer.type}`);
  return { ...client, peer };
}

/** A ws client that sends its `join` and waits for nothing: its answer is in `next()` or `closed`. */
export async function openClient(url: string, options: TestClientOptions = {}): Promise<OpenClient> {
  const { token = "ok.alice.student", peerId = "alice-peer", ordoSeq = false } = options;
  const ws = new WebSocket(url, options.protocols ?? [], {
    headers: options.protocols ? {} : { authorization: `Bearer ${token}` },
    ...options.socket,
  });
  let challenge: string | undefined;
  ws.once("upgrade", (response) => {
    const header = response.headers[CHALLENGE_HEADER];
    challenge = typeof header === "string" ? header : undefined;
  });
  const queue: ClientOrServerMessage[] = [];
  const waiters: Array<(message: ClientOrServerMessage) => void> = [];
  ws.on("message", (data: Buffer) => {
    const message = decodeFrame(data);
    const waiter = waiters.shift();
    if (waiter) waiter(message);
    else queue.push(message);
  });
  ws.on("error", () => {});
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  const next = () =>
    new Promise<ClientOrServerMessage>((resolve, reject) => {
      const queued = queue.shift();
      if (queued) return resolve(queued);
      waiters.push(resolve);
      void closed.then(({ code }) => reject(new Error(`closed with ${code} while waiting for a message`)));
    });
  await once(ws, "open");
  const send = (message: object) => ws.send(encodeFrame(message as ClientOrServerMessage));
  const peerMetadata = { ...(ordoSeq ? { ordoSeq: true } : {}), ...options.metadata?.(challenge) };
  send({ type: "join", senderId: peerId, peerMetadata, supportedProtocolVersions: ["1"] });
  return { ws, challenge, send, next, closed };
}

/** Sends a sync message and expects it back: the link is alive and honest. */
export async function expectEcho(client: TestClient, peerId = "alice-peer", seq?: number): Promise<void> {
  const data = new Uint8Array(randomBytes(8));
  client.send({ ...syncMessage(peerId, DOC_A, data), ...(seq === undefined ? {} : { ordoSeq: seq }) });
  const answer = await client.next();
  if (answer.type !== "sync" || Buffer.compare(answer.data, data) !== 0) throw new Error("no echo");
}

export interface RawClient {
  socket: Socket;
  /** The HTTP status line and headers of the upgrade response. */
  head: string;
  sendFrame(frame: FrameSpec): void;
  /** Resolves with the code of the server's close frame, or undefined if the socket ended without one. */
  closed: Promise<number | undefined>;
  /** Binary messages the server sent, decoded. */
  messages: ClientOrServerMessage[];
}

export interface FrameSpec {
  payload: Uint8Array | string;
  opcode?: number;
  mask?: boolean;
  rsv1?: boolean;
  fin?: boolean;
}

/** One WebSocket frame, built by hand so that it can break the rules. */
export function buildFrame({ payload, opcode = 2, mask = true, rsv1 = false, fin = true }: FrameSpec): Buffer {
  const body = typeof payload === "string" ? Buffer.from(payload) : Buffer.from(payload);
  const length = body.length;
  const lengthBytes = length < 126 ? 0 : length < 65536 ? 2 : 8;
  const header = Buffer.alloc(2 + lengthBytes + (mask ? 4 : 0));
  header[0] = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode;
  header[1] = (mask ? 0x80 : 0) | (lengthBytes === 0 ? length : lengthBytes === 2 ? 126 : 127);
  if (lengthBytes === 2) header.writeUInt16BE(length, 2);
  if (lengthBytes === 8) header.writeBigUInt64BE(BigInt(length), 2);
  if (!mask) return Buffer.concat([header, body]);
  const key = randomBytes(4);
  key.copy(header, 2 + lengthBytes);
  const masked = Buffer.from(body.map((byte, i) => byte ^ key[i % 4]!));
  return Buffer.concat([header, masked]);
}

/** A TCP connection that upgrades by hand; with `join`, it also joins as `peerId`. */
export async function rawClient(
  port: number,
  options: { token?: string; path?: string; join?: string } = {},
): Promise<RawClient> {
  const socket = connectTcp(port, "127.0.0.1");
  socket.on("error", () => {});
  await once(socket, "connect");
  const key = randomBytes(16).toString("base64");
  const auth = options.token === undefined ? "" : `Authorization: Bearer ${options.token}\r\n`;
  socket.write(
    `GET ${options.path ?? "/sync"} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${auth}\r\n`,
  );
  let buffer = Buffer.alloc(0);
  let head: string | undefined;
  const messages: ClientOrServerMessage[] = [];
  const events = new EventEmitter();
  let closeCode: number | undefined;
  socket.on("data", (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    if (head === undefined) {
      const end = buffer.indexOf("\r\n\r\n");
      if (end < 0) return;
      head = buffer.subarray(0, end).toString();
      buffer = buffer.subarray(end + 4);
      events.emit("head");
    }
    for (;;) {
      const frame = parseServerFrame(buffer);
      if (frame === undefined) return;
      buffer = buffer.subarray(frame.size);
      if (frame.opcode === 8) {
        closeCode = frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : undefined;
        // Finish the close handshake as a browser would, so the server need not wait it out.
        socket.end(buildFrame({ opcode: 8, payload: frame.payload.subarray(0, 2) }));
      }
      if (frame.opcode === 2) messages.push(decodeFrame(frame.payload));
      events.emit("frame");
    }
  });
  const closed = new Promise<number | undefined>((resolve) => socket.once("close", () => resolve(closeCode)));
  if (head === undefined) await once(events, "head");
  const client: RawClient = {
    socket,
    head: head!,
    closed,
    messages,
    sendFrame: (frame) => socket.write(buildFrame(frame)),
  };
  if (options.join !== undefined) {
    client.sendFrame({
      payload: encodeFrame({ type: "join", senderId: options.join, peerMetadata: {}, supportedProtocolVersions: ["1"] }),
    });
    while (!messages.some((m) => m.type === "peer")) await once(events, "frame");
  }
  return client;
}

function parseServerFrame(buffer: Buffer): { opcode: number; payload: Buffer; size: number } | undefined {
  if (buffer.length < 2) return undefined;
  const opcode = buffer[0]! & 0x0f;
  let length = buffer[1]! & 0x7f;
  let offset = 2;
  if (length === 126) {
    if (buffer.length < 4) return undefined;
    length = buffer.readUInt16BE(2);
    offset = 4;
  } else if (length === 127) {
    if (buffer.length < 10) return undefined;
    length = Number(buffer.readBigUInt64BE(2));
    offset = 10;
  }
  if (buffer.length < offset + length) return undefined;
  return { opcode, payload: buffer.subarray(offset, offset + length), size: offset + length };
}

/** Status and JSON body of an upgrade the server refused. */
export async function refusedUpgrade(url: string, options: ClientOptions = {}): Promise<{ status: number; body: unknown }> {
  const ws = new WebSocket(url, options);
  ws.on("error", () => {});
  const [, response] = (await once(ws, "unexpected-response")) as [unknown, import("node:http").IncomingMessage];
  const chunks: Buffer[] = [];
  for await (const chunk of response) chunks.push(chunk as Buffer);
  ws.terminate();
  return { status: response.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString()) };
}
