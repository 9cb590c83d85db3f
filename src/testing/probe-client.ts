import * as A from "@automerge/automerge";
import WebSocket from "ws";
import { decodeFrame, encodeFrame, type ClientOrServerMessage } from "../net/wire.js";

export type TokenCarrier = "header" | "query" | "subprotocol";

/** What a probe saw of one document it asked for. */
export type ReadResult = { status: "unavailable" } | { status: "ok"; doc: A.Doc<Record<string, unknown>> };

/**
 * A bare protocol client for tests: it speaks automerge-repo's WebSocket protocol by hand,
 * so a test can do exactly what a hostile or stock peer would (ask for any document, send
 * any changes) and see exactly what the server answers.
 */
export class ProbeClient {
  /** Every message the server sent, in order. */
  readonly received: ClientOrServerMessage[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  #waiters: Array<() => void> = [];
  #remotePeerId = "";

  private constructor(
    readonly socket: WebSocket,
    readonly peerId: string,
  ) {
    this.closed = new Promise((resolve) => socket.once("close", (code, reason) => resolve({ code, reason: reason.toString() })));
    socket.on("message", (data) => {
      try {
        this.received.push(decodeFrame(new Uint8Array(data as Buffer)));
      } catch {
        // A probe only records what it can read.
      }
      for (const wake of this.#waiters.splice(0)) wake();
    });
    socket.on("close", () => {
      for (const wake of this.#waiters.splice(0)) wake();
    });
    socket.on("error", () => undefined);
  }

  /**
   * Connects and joins. Resolves with the client once the server's `peer` message arrived;
   * rejects with the HTTP status when the upgrade is refused, or the close code when the
   * join is.
   */
  static async connect(url: string, options: { token?: string; carrier?: TokenCarrier; peerId?: string; joinMetadata?: Record<string, unknown> } = {}): Promise<ProbeClient> {
    const peerId = options.peerId ?? `probe-${Math.random().toString(36).slice(2)}`;
    const carrier = options.carrier ?? "header";
    const target = new URL(url);
    if (options.token && carrier === "query") target.searchParams.set("token", options.token);
    const headers = options.token && carrier === "header" ? { authorization: `Bearer ${options.token}` } : undefined;
    const protocols = options.token && carrier === "subprotocol" ? ["bearer", options.token] : undefined;
    const socket = new WebSocket(target, protocols, { headers });
    await new Promise<void>((resolve, reject) => {
      socket.once("open", () => resolve());
      socket.once("unexpected-response", (_request, response) => reject(Object.assign(new Error(`upgrade refused: ${response.statusCode}`), { status: response.statusCode })));
      socket.once("error", reject);
    });
    const client = new ProbeClient(socket, peerId);
    client.send({ type: "join", senderId: peerId, peerMetadata: options.joinMetadata ?? {}, supportedProtocolVersions: ["1"] });
    const peer = await client.waitFor((m) => m.type === "peer" || m.type === "error", 5_000);
    if (peer?.type !== "peer") {
      const closed = await client.closed;
      throw Object.assign(new Error(`join refused: ${closed.code}`), { code: closed.code });
    }
    client.#remotePeerId = peer.senderId;
    return client;
  }

  send(message: ClientOrServerMessage): void {
    this.socket.send(encodeFrame(message));
  }

  /** Document ids the server named in any message so far. */
  documentsNamed(): Set<string> {
    return new Set(this.received.flatMap((m) => ("documentId" in m && typeof m.documentId === "string" ? [m.documentId] : [])));
  }

  /** Waits for a message matching `match` (among those not yet seen) or undefined on timeout or close. */
  async waitFor(match: (m: ClientOrServerMessage) => boolean, timeoutMs = 5_000, from = 0): Promise<ClientOrServerMessage | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.received.slice(from).find(match);
      if (found || this.socket.readyState >= WebSocket.CLOSING || Date.now() >= deadline) return found;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Asks for a document as a peer that has none of it, and syncs until the server has nothing more to say. */
  async read(documentId: string, timeoutMs = 5_000): Promise<ReadResult> {
    let doc = A.init<Record<string, unknown>>();
    let state = A.initSyncState();
    let message: Uint8Array | null;
    [state, message] = A.generateSyncMessage(doc, state);
    let seen = this.received.length;
    this.send({ type: "request", senderId: this.peerId, targetId: this.#remotePeerId, documentId, data: message! });
    for (;;) {
      const reply = await this.waitFor((m) => "documentId" in m && m.documentId === documentId && (m.type === "sync" || m.type === "doc-unavailable"), timeoutMs, seen);
      if (!reply) return A.getHeads(doc).length > 0 ? { status: "ok", doc } : { status: "unavailable" };
      seen = this.received.indexOf(reply) + 1;
      if (reply.type === "doc-unavailable") return { status: "unavailable" };
      if (reply.type !== "sync") continue;
      [doc, state] = A.receiveSyncMessage(doc, state, reply.data);
      [state, message] = A.generateSyncMessage(doc, state);
      if (message) this.send({ type: "sync", senderId: this.peerId, targetId: this.#remotePeerId, documentId, data: message });
      const ours = [...A.getHeads(doc)].sort().join(",");
      // Done once we hold what the server says it has.
      if (ours !== "" && ours === [...(state.theirHeads ?? [])].sort().join(",")) return { status: "ok", doc };
    }
  }

  /** Sends every change of `doc` for `documentId` in one sync message, as a peer pushing its edits would. */
  pushChanges(documentId: string, doc: A.Doc<unknown>): void {
    const data = A.encodeSyncMessage({ heads: A.getHeads(doc), need: [], have: [], changes: A.getAllChanges(doc) });
    this.send({ type: "sync", senderId: this.peerId, targetId: this.#remotePeerId, documentId, data });
  }

  close(): void {
    this.socket.close();
  }
}
