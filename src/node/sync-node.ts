import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import WebSocket from "ws";
import type { AddressInfo } from "node:net";
import { readConnectorSettings, type ConnectorSettings } from "../connectors/connector-config.js";
import { connectorDb } from "../connectors/connector-tables.js";
import { docUrlOf, type DocUrl } from "../crdt/ids.js";
import { Engine, type EngineOptions } from "../engine.js";
import { LanDiscovery, type LanPeer } from "../net/discovery.js";
import type { LinkLimits } from "../net/limits.js";
import type { PeerLink } from "../net/peer-link.js";
import { PeerDialer } from "../net/peer-dialer.js";
import { SyncServer } from "../net/sync-server.js";
import { COLLECTION_METADATA } from "../replication/collection-sync.js";
import { Replicator, type PeerStatus } from "../replication/replicator.js";
import { silentLogger, type Logger } from "../util/logger.js";
import { ConnectorService, type ConnectorServiceOptions } from "./connector-service.js";
import { answerHttp } from "./http-endpoints.js";
import { NodeIdentity } from "./identity.js";
import { nodeMetrics } from "./node-metrics.js";

export interface SyncNodeOptions {
  dataDir: string;
  /** Create the data directory if it does not exist. */
  create?: boolean;
  /** `node`: a classroom node (LAN discovery on unless turned off); `relay`: no discovery. */
  mode?: "node" | "relay";
  /**
   * Where the WebSocket server and the HTTP endpoints listen; port 0 picks a free one. With
   * `tls` (PEM certificate and key) the node serves `wss://` and `https://`.
   */
  listen?: { port: number; host?: string; tls?: { cert: string; key: string } };
  /** The token this node presents; none makes the node its own authority (see `NodeIdentity`). */
  token?: string;
  /** Or the file that holds it, read again when it changes (a renewed token needs no restart). */
  tokenFile?: string;
  /** Issuer keys to trust besides the data directory's list. */
  trust?: readonly string[];
  /** An upstream relay to keep a connection to (`ws://` or `wss://`). */
  relay?: string;
  /** Extra certificate authorities (PEM) to accept from `wss://` relays and peers, e.g. a school's own. */
  ca?: string;
  /** LAN discovery (default on for nodes, off for relays); `interface` pins the multicast interface. */
  discovery?: boolean | { interface?: string };
  limits?: Partial<LinkLimits>;
  /**
   * The Canvas and Discourse connectors the data directory's `connectors.json` configures:
   * synced every `intervalMs` (0: only when a webhook asks) and after a webhook. `false` runs
   * none. A node without `connectors.json` runs none either, and lacks nothing else.
   */
  connectors?: false | Pick<ConnectorServiceOptions, "intervalMs" | "debounceMs" | "fetch">;
  logger?: Logger;
  engine?: Pick<EngineOptions, "cacheSize" | "clock" | "wrapStorage">;
}

export interface NodeStatus {
  peerId: string;
  mode: "node" | "relay";
  identity: { user: string; role: string; courses: readonly string[] };
  listening: string | null;
  relay: { url: string; state: string } | null;
  peers: PeerStatus[];
  /** In sync with every connected peer: nothing queued, every carried document at equal heads. */
  inSync: boolean;
}

/**
 * A running node: the engine (documents and projection), a WebSocket server that peers and
 * stock automerge-repo clients join, a dialer to the relay, LAN discovery that dials
 * classmates sharing a course, and the replicator that syncs over every link.
 * This is where the layers meet; none of them knows the others.
 */
export class SyncNode {
  readonly #dialers = new Map<string, PeerDialer>();
  #http: Server | null = null;
  #server: SyncServer | null = null;
  #relay: PeerDialer | null = null;
  #discovery: LanDiscovery | null = null;
  #connectors: ConnectorService | null = null;
  #closed = false;

  private constructor(
    readonly engine: Engine,
    readonly replicator: Replicator,
    readonly identity: NodeIdentity,
    readonly mode: "node" | "relay",
    private readonly options: SyncNodeOptions,
    private readonly logger: Logger,
  ) {}

  static async start(options: SyncNodeOptions): Promise<SyncNode> {
    const logger = options.logger ?? silentLogger;
    const identity = NodeIdentity.open(options.dataDir, { token: options.token, tokenFile: options.tokenFile, trust: options.trust, logger });
    const mode = options.mode ?? "node";
    let replicator: Replicator | undefined;
    const engine = await Engine.open({
      ...options.engine,
      dataDir: options.dataDir,
      create: options.create,
      logger,
      // Decided against the replicator's roster once it exists; catalogs are written only after open.
      maintainsCatalog: (course, audience) => identity.maintainsCatalog(replicator?.coursesOf ?? (() => new Set()))(course, audience),
    });
    replicator = new Replicator({ store: engine.docs, identity: identity.principal, logger });
    const node = new SyncNode(engine, replicator, identity, mode, options, logger);
    try {
      await replicator.start();
      node.#startConnectors();
      if (options.listen) await node.#listen(options.listen);
      if (options.relay) node.#dialRelay(options.relay);
      const discovery = options.discovery ?? mode === "node";
      if (discovery && options.listen) await node.#discover(typeof discovery === "object" ? discovery.interface : undefined);
    } catch (error) {
      await node.close();
      throw error;
    }
    return node;
  }

  /** `ws://host:port` (or `wss://`) of this node's server, once listening. */
  get url(): string | null {
    const address = this.#http?.address() as AddressInfo | null | undefined;
    if (!address) return null;
    const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
    return `${this.options.listen?.tls ? "wss" : "ws"}://${host}:${address.port}`;
  }

  get peerId(): string {
    return this.identity.peerId;
  }

  /** The connected systems' sync schedule and webhook receiver; null when none is configured. */
  get connectors(): ConnectorService | null {
    return this.#connectors;
  }

  /** Starts replicating with a node at `url` (kept up with backoff until `close`). */
  connect(url: string): void {
    if (this.#dialers.has(url)) return;
    const dialer = this.#dialer(url);
    this.#dialers.set(url, dialer);
    dialer.start();
  }

  status(): NodeStatus {
    const principal = this.identity.principal;
    const peers = this.replicator.peers();
    return {
      peerId: this.peerId,
      mode: this.mode,
      identity: { user: principal.user, role: principal.role, courses: principal.courses },
      listening: this.url,
      relay: this.#relay && this.options.relay ? { url: this.options.relay, state: this.#relay.state } : null,
      peers,
      inSync: peers.every((peer) => peer.inSync),
    };
  }

  /**
   * Whether a document is in sync with the relay: `in-sync` when the relay's heads equal
   * ours, `pending` while they differ, `offline` with no relay connection (or no relay).
   */
  documentStatus(url: DocUrl): { relay: "in-sync" | "pending" | "offline" } {
    const link = this.#relay?.link;
    if (!link || link.closed) return { relay: "offline" };
    return { relay: this.replicator.isSettledOn(link, url) ? "in-sync" : "pending" };
  }

  async metrics(): Promise<string> {
    return nodeMetrics({ engine: await this.engine.status(), peers: this.replicator.peers(), server: this.#server?.metrics() ?? null, links: this.replicator.linkStats() });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#connectors?.close();
    await this.#discovery?.stop();
    await Promise.all([...this.#dialers.values(), ...(this.#relay ? [this.#relay] : [])].map((dialer) => dialer.stop()));
    await this.#server?.close();
    if (this.#http) {
      const http = this.#http;
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    }
    this.replicator.close();
    await this.engine.close();
  }

  async #listen(listen: NonNullable<SyncNodeOptions["listen"]>): Promise<void> {
    const answer = (request: IncomingMessage, response: ServerResponse) => void answerHttp(this, request, response);
    const http = listen.tls ? createHttpsServer({ cert: listen.tls.cert, key: listen.tls.key }, answer) : createServer(answer);
    this.#server = new SyncServer(this.#linkOptions());
    this.#server.attach(http);
    await new Promise<void>((resolve, reject) => {
      http.once("error", reject);
      http.listen(listen.port, listen.host ?? "127.0.0.1", () => {
        http.off("error", reject);
        resolve();
      });
    });
    this.#http = http;
    this.logger.info({ url: this.url, mode: this.mode, peerId: this.peerId }, "listening");
  }

  #startConnectors(): void {
    if (this.options.connectors === false) return;
    let settings: ConnectorSettings;
    try {
      settings = readConnectorSettings(this.engine.dataDir);
    } catch (error) {
      // The node's own sync does not depend on its connectors. Only the message is logged: the
      // cause of a JSON error may quote the file, credentials included.
      this.logger.error({ code: (error as { code?: unknown }).code, error: (error as Error).message }, "connector settings unreadable; running without connectors");
      return;
    }
    if (!settings.canvas && !settings.discourse) return;
    this.#connectors = ConnectorService.start({ ...this.options.connectors, store: this.engine.docs, db: connectorDb(this.engine.db), settings, clock: this.options.engine?.clock, logger: this.logger });
    this.logger.info({ systems: this.#connectors.systems, discourseWebhooks: Boolean(settings.discourse?.webhookSecret) }, "connectors running");
  }

  #dialRelay(url: string): void {
    this.#relay = this.#dialer(url);
    this.#relay.start();
  }

  #dialer(url: string): PeerDialer {
    const ca = this.options.ca;
    return new PeerDialer({
      ...this.#linkOptions(),
      url,
      createSocket: ca ? (target, options) => new WebSocket(target, { ...options, ca }) : undefined,
    });
  }

  /** What both ends of a link need: who we are, how to check who they are, and where links go. */
  #linkOptions() {
    return {
      peerId: this.peerId,
      // Our token, and our signature over the other side's challenge with the key it names.
      identity: { token: () => this.identity.token(), sign: (bytes: Uint8Array) => this.identity.sign(bytes) },
      verifier: this.identity.verifier,
      limits: this.options.limits,
      logger: this.logger,
      onLink: (link: PeerLink) => this.#adopt(link),
      // Which collection sync this node speaks: a peer of another version falls back to per-document sync.
      metadata: () => COLLECTION_METADATA,
    };
  }

  #adopt(link: PeerLink): void {
    if (this.#closed) {
      link.close(1001, "node stopping");
      return;
    }
    this.replicator.addLink(link);
  }

  async #discover(networkInterface: string | undefined): Promise<void> {
    const port = (this.#http!.address() as AddressInfo).port;
    const discovery = new LanDiscovery({ peerId: this.peerId, port, courses: await this.#advertisedCourses(), interface: networkInterface, logger: this.logger });
    discovery.on("peer-found", (peer) => this.#lanPeerFound(peer));
    discovery.on("peer-lost", ({ peerId }) => this.#lanPeerLost(peerId));
    discovery.on("error", (error) => this.logger.warn({ err: error }, "LAN discovery error"));
    try {
      await discovery.start();
    } catch (error) {
      // A machine without multicast still syncs through its relay and direct connections.
      this.logger.warn({ err: error }, "LAN discovery could not start; continuing without it");
      return;
    }
    this.#discovery = discovery;
    if (this.identity.courses.length === 0) {
      // An every-course node advertises the courses it holds, which change as courses arrive.
      this.engine.docs.on("doc-changed", (change) => {
        if (change.kind !== "course") return;
        this.#advertisedCourses().then(
          (courses) => this.#discovery?.updateCourses(courses),
          (error: unknown) => this.logger.warn({ err: error }, "could not update the courses advertised on the LAN"),
        ).catch((error: unknown) => this.logger.warn({ err: error }, "could not update the courses advertised on the LAN"));
      });
    }
  }

  async #advertisedCourses(): Promise<string[]> {
    if (this.identity.courses.length > 0) return [...this.identity.courses];
    return (await this.engine.docs.records({ kind: "course" })).map((record) => docUrlOf(record.id));
  }

  /** Both ends see each other: only the one with the smaller peer id dials, so a pair has one link. */
  #lanPeerFound(peer: LanPeer): void {
    if (this.#closed || peer.peerId <= this.peerId) return;
    // A token not bound to this node's key is a secret: it is shown only to servers named on purpose.
    if (!this.identity.keyBound) {
      this.logger.warn({ peer: peer.peerId }, "not dialing a LAN peer with a token not bound to this node's key; it may dial us");
      return;
    }
    this.logger.info({ peer: peer.peerId, host: peer.host, port: peer.port }, "found a classmate on the LAN");
    const url = `ws://${peer.host}:${peer.port}`;
    const key = `lan:${peer.peerId}:${url}`;
    if (this.#dialers.has(key)) return;
    // It moved (a new address or port): the old dialer would only knock on a closed door.
    this.#lanPeerLost(peer.peerId);
    const dialer = this.#dialer(url);
    this.#dialers.set(key, dialer);
    dialer.start();
  }

  #lanPeerLost(peerId: string): void {
    for (const [key, dialer] of this.#dialers) {
      if (!key.startsWith(`lan:${peerId}:`)) continue;
      this.#dialers.delete(key);
      void dialer.stop();
    }
  }
}
