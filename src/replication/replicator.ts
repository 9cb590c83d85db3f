import { EventEmitter } from "node:events";
import * as A from "@automerge/automerge";
import type { DocRecord } from "../crdt/doc-storage.js";
import type { DocChange, DocStore } from "../crdt/doc-store.js";
import { documentIdOf, type DocUrl, type DocumentId } from "../crdt/ids.js";
import type { LinkStats, PeerLink } from "../net/peer-link.js";
import type { Principal } from "../net/principal.js";
import { systemClock, type Clock } from "../util/clock.js";
import { silentLogger, type Logger } from "../util/logger.js";
import { canRead, type CoursesOf } from "./access-policy.js";
import { FORBIDDEN_WRITE_REASON, LinkSync } from "./link-sync.js";
import { CloseCode } from "../net/close-codes.js";
import { Roster } from "./roster.js";

/** Peers whose sync states are kept after they disconnect, so they resume where they left off. */
const MAX_REMEMBERED_PEERS = 256;

export interface ReplicatorOptions {
  store: DocStore;
  /** This node's identity, from its token: what it may hold and what it may forward. */
  identity: Principal;
  clock?: Clock;
  logger?: Logger;
}

/** How this node stands with one peer. */
export interface PeerStatus {
  peerId: string;
  user: string;
  role: Principal["role"];
  direction: PeerLink["direction"];
  connected: boolean;
  connectedAt: string;
  /** The last message from the peer (ISO time), if any. */
  lastSeen: string | null;
  /** Documents with changes for the peer: queued, or sent and not yet taken. */
  pendingOut: number;
  /** Documents where the peer has changes this node lacks. */
  pendingIn: number;
  /** Since when (ISO time) changes have been queued for the peer, or null. */
  pendingSince: string | null;
  /** Documents whose heads differ between the peer and this node, as far as we know. */
  unsettled: number;
  /** Both sides have made their first offers, nothing is queued, and every document exchanged has equal heads on both sides. */
  inSync: boolean;
}

export interface ReplicatorEvents {
  /** A peer connected, disconnected, or its pending counts changed. */
  "peer-status": [PeerStatus];
}

/**
 * Replicates the store with every connected peer, whichever transport brought the link
 * (the node's server, its relay dialer, LAN discovery). Holds the sync states per remote
 * peer across reconnections, so a peer that comes back resumes where it left off: Automerge's
 * shared heads survive, only what was in flight is forgotten.
 */
export class Replicator extends EventEmitter<ReplicatorEvents> {
  readonly #store: DocStore;
  readonly #identity: Principal;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #roster = new Roster();
  readonly #links = new Map<PeerLink, { sync: LinkSync; connectedAt: Date }>();
  readonly #states = new Map<string, Map<DocumentId, A.SyncState>>();
  readonly #refused = new Map<string, Set<DocumentId>>();
  readonly #onChange = (change: DocChange) => void this.#documentChanged(change);
  #started = false;

  constructor(options: ReplicatorOptions) {
    super();
    this.#store = options.store;
    this.#identity = options.identity;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
  }

  get identity(): Principal {
    return this.#identity;
  }

  /** The courses each user is enrolled in, as this node's enrollments say. */
  get coursesOf(): CoursesOf {
    return (user) => this.#roster.coursesOf(user);
  }

  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    for (const record of await this.#store.records({ kind: "enrollment", includeDeleted: true })) this.#roster.note(record);
    this.#store.on("doc-changed", this.#onChange);
  }

  /** Starts replicating over a link that its transport has authenticated. */
  addLink(link: PeerLink): void {
    const states = this.#statesFor(link.remotePeerId);
    const refused = this.#refusedBy(link.remotePeerId);
    const sync = new LinkSync(link, {
      store: this.#store,
      local: this.#identity,
      coursesOf: this.coursesOf,
      states,
      refused,
      clock: this.#clock,
      logger: this.#logger,
      onProgress: () => this.#report(link),
    });
    this.#links.set(link, { sync, connectedAt: this.#clock() });
    link.once("close", ({ code, reason }) => {
      this.#logger.info({ peer: link.remotePeerId, user: link.principal.user, code, reason }, "peer disconnected");
      if (code === CloseCode.forbiddenWrite && reason.startsWith(FORBIDDEN_WRITE_REASON)) refused.add(reason.slice(FORBIDDEN_WRITE_REASON.length) as DocumentId);
      this.#report(link);
      this.#links.delete(link);
    });
    this.#logger.info({ peer: link.remotePeerId, user: link.principal.user, role: link.principal.role, direction: link.direction }, "peer connected");
    this.#report(link);
    void this.#store.records({ includeDeleted: true }).then(
      (records) => sync.announce(records),
      (error: unknown) => this.#logger.error({ err: error }, "could not list documents for a peer"),
    );
  }

  /** The sync of each open link (for status and tests). */
  links(): LinkSync[] {
    return [...this.#links.values()].map((entry) => entry.sync);
  }

  /** Traffic over the links open now. */
  linkStats(): LinkStats {
    const total: LinkStats = { bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0, documentsNamed: 0 };
    for (const link of this.#links.keys()) {
      const stats = link.stats();
      for (const key of Object.keys(total) as Array<keyof LinkStats>) total[key] += stats[key];
    }
    return total;
  }

  peers(): PeerStatus[] {
    return [...this.#links.keys()].map((link) => this.#statusOf(link));
  }

  /** Whether a document's heads on the peer at the other end of `link` equal ours, as far as we know. */
  isSettledOn(link: PeerLink, url: DocUrl): boolean {
    return this.#links.get(link)?.sync.isSettled(documentIdOf(url)) ?? false;
  }

  /** Whether this node may hold a document (the policy applied to its own identity). */
  mayHold(record: DocRecord): boolean {
    return canRead(this.#identity, record, this.coursesOf);
  }

  close(): void {
    this.#store.off("doc-changed", this.#onChange);
  }

  #refusedBy(peerId: string): Set<DocumentId> {
    let refused = this.#refused.get(peerId);
    if (!refused) {
      refused = new Set();
      this.#refused.set(peerId, refused);
    }
    return refused;
  }

  #statesFor(peerId: string): Map<DocumentId, A.SyncState> {
    let states = this.#states.get(peerId);
    if (!states) states = new Map();
    // Most recently connected last; peers long gone are forgotten (stock clients pick a new id each time).
    this.#states.delete(peerId);
    this.#states.set(peerId, states);
    const connected = new Set([...this.#links.keys()].map((link) => link.remotePeerId));
    for (const known of this.#states.keys()) {
      if (this.#states.size <= MAX_REMEMBERED_PEERS) break;
      if (connected.has(known) || known === peerId) continue;
      this.#states.delete(known);
      this.#refused.delete(known);
    }
    // A new connection: keep what both sides are known to share, forget what was in flight.
    for (const [id, state] of states) states.set(id, A.decodeSyncState(A.encodeSyncState(state)));
    return states;
  }

  async #documentChanged(change: DocChange): Promise<void> {
    const record = await this.#store.record(change.url).catch(() => undefined);
    if (!record) return;
    if (record.kind === "enrollment") await this.#enrolled(record);
    // What a peer at the heads before this change lacks: read once, sent alike to every peer in sync.
    let changes: Promise<{ data: Uint8Array; heads: string } | null | undefined> | undefined;
    // A document new here goes whole (the changes since no heads).
    const previous = change.previousHeads ?? "";
    const changesSincePrevious = () => (changes ??= this.#store.changesFor(change.url, previous === "" ? [] : previous.split(",")));
    for (const { sync } of this.#links.values()) sync.documentChanged(record, changesSincePrevious);
  }

  /** Who may see a user follows their enrollments: links already talking about that user pick it up again. */
  async #enrolled(enrollment: DocRecord): Promise<void> {
    this.#roster.note(enrollment);
    if (!enrollment.owner) return;
    const user = await this.#store.record(enrollment.owner as DocUrl).catch(() => undefined);
    if (user) for (const { sync } of this.#links.values()) sync.reconsider(user);
  }

  #report(link: PeerLink): void {
    this.emit("peer-status", this.#statusOf(link));
  }

  #statusOf(link: PeerLink): PeerStatus {
    const entry = this.#links.get(link);
    const progress = entry?.sync.progress() ?? { announced: false, pendingOut: 0, pendingIn: 0, pendingSince: null, unsettled: 0, lastSeen: null, settled: false };
    return {
      peerId: link.remotePeerId,
      user: link.principal.user,
      role: link.principal.role,
      direction: link.direction,
      connected: !link.closed,
      connectedAt: (entry?.connectedAt ?? this.#clock()).toISOString(),
      lastSeen: progress.lastSeen === null ? null : new Date(progress.lastSeen).toISOString(),
      pendingOut: progress.pendingOut,
      pendingIn: progress.pendingIn,
      pendingSince: progress.pendingSince === null ? null : new Date(progress.pendingSince).toISOString(),
      unsettled: progress.unsettled,
      inSync: !link.closed && progress.settled,
    };
  }
}
