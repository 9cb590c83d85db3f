import * as A from "@automerge/automerge";
import type { DocRecord } from "../crdt/doc-storage.js";
import type { DocStore } from "../crdt/doc-store.js";
import { docUrlOf, documentIdOf, isVerifiedDocUrl, type DocUrl, type DocumentId } from "../crdt/ids.js";
import { CloseCode } from "../net/close-codes.js";
import type { DocMessage, PeerLink } from "../net/peer-link.js";
import type { Principal } from "../net/principal.js";
import type { Clock } from "../util/clock.js";
import { OrdoError } from "../util/errors.js";
import type { Logger } from "../util/logger.js";
import { canRead, canWrite, type CoursesOf } from "./access-policy.js";
import { CollectionSync, speaksCollectionSync } from "./collection-sync.js";

export interface LinkSyncContext {
  store: DocStore;
  /** This node's own identity: it holds only what this principal may read. */
  local: Principal;
  coursesOf: CoursesOf;
  /** Sync states with this remote peer, kept across its reconnections (reset in flight by the caller). */
  states: Map<DocumentId, A.SyncState>;
  /**
   * Documents this remote refused our changes to (it closed a link with `forbiddenWrite`
   * naming them): say, a submission since given to another student. Not offered to it again,
   * or every reconnection would end the same way.
   */
  refused: ReadonlySet<DocumentId>;
  clock: Clock;
  logger: Logger;
  /** Called when the link's pending counts or settledness change. */
  onProgress: () => void;
}

export interface LinkProgress {
  announced: boolean;
  /** Documents with changes queued for this peer. */
  pendingOut: number;
  /** When the oldest queued document was queued (ms since the epoch), or null. */
  pendingSince: number | null;
  /** Documents whose heads, as this peer last told us, differ from ours. */
  unsettled: number;
  /** Of those, documents where the peer has changes we lack. */
  pendingIn: number;
  lastSeen: number | null;
  /**
   * Both sides have made their first offers, nothing is queued, and every document exchanged
   * has equal heads on both sides.
   */
  settled: boolean;
}

/**
 * How long a link to a stock peer must be still before it counts as in sync: a stock peer
 * never says when it has made its first offers, and until they arrive an empty queue proves nothing.
 */
export const QUIET_MS = 300;

/** The close reason of a `forbiddenWrite` close, followed by the document's id. */
export const FORBIDDEN_WRITE_REASON = "forbidden write: ";

/**
 * Automerge's per-document sync over one authenticated link, with the access policy applied
 * before anything reaches the store:
 * - nothing is sent about a document the remote may not read, and a request for one gets
 *   the same `doc-unavailable` as a document that does not exist;
 * - the sync state of a document the remote may not write is read-only, so an Automerge 3
 *   peer never sends changes for it; changes that come anyway close the link
 *   (`forbiddenWrite`) and are never applied;
 * - what arrives must be readable by this node's own principal, or it is not stored.
 * Work on a link runs one step at a time, in arrival order.
 */
export class LinkSync {
  readonly #link: PeerLink;
  readonly #ctx: LinkSyncContext;
  readonly #dirty = new Set<DocumentId>();
  /** Documents whose remote heads (last we heard) differ from ours. */
  readonly #unsettled = new Set<DocumentId>();
  /** Documents where the peer, as it last said, has changes we lack. */
  readonly #behind = new Set<DocumentId>();
  #chain: Promise<void> = Promise.resolve();
  #draining = false;
  /** The first offer of every document has been sent. */
  #announced = false;
  /** The remote said it has made its first offers (Ordo peers only). */
  #remoteOffered = false;
  #lastSeen: number | null = null;
  /** Collection sync, with an Ordo peer. */
  readonly #collection: CollectionSync;
  /** The last message either way (or the link's opening). */
  #lastActivity: number;
  readonly #quietTimer: NodeJS.Timeout;
  #pendingSince: number | null = null;

  constructor(link: PeerLink, ctx: LinkSyncContext) {
    this.#link = link;
    this.#ctx = ctx;
    this.#collection = new CollectionSync({
      store: ctx.store,
      remote: link.principal,
      coursesOf: ctx.coursesOf,
      closed: () => link.closed,
      send: (message) => this.#send(message),
      travels: (record) => this.#travels(record),
      mayHold: (record) => this.#mayHold(record),
      refuseWrite: (url) => this.#refuseWrite(url),
      settled: (id) => this.#unsettled.delete(id),
      offered: (count) => this.#offered(count),
      syncDocument: (id) => {
        this.#dirty.add(id);
        this.#drainSoon();
      },
      enqueue: (step) => this.#enqueue(step),
    });
    this.#lastActivity = ctx.clock().getTime();
    // Reports progress once the link has been still for QUIET_MS, so "in sync" is heard, not only polled.
    this.#quietTimer = setTimeout(() => ctx.onProgress(), QUIET_MS + 25);
    this.#quietTimer.unref();
    link.on("message", (message) => {
      this.#lastSeen = ctx.clock().getTime();
      this.#active();
      // Documents sent whole start loading in the store's worker now, while earlier ones are still being stored.
      this.#enqueue(message.type === "ordo-docs" ? this.#collection.prepareDocuments(message.data) : () => this.#receive(message));
    });
    link.once("close", () => clearTimeout(this.#quietTimer));
  }

  get remote(): Principal {
    return this.#link.principal;
  }

  progress(): LinkProgress {
    const unsettled = this.#unsettled.size;
    const pendingIn = this.#behind.size;
    // Queued, or offered and not yet taken: the peer lacks something of ours.
    const pendingOut = this.#dirty.size + this.#collection.pushing + [...this.#unsettled].filter((id) => !this.#behind.has(id) && !this.#dirty.has(id)).length;
    // A stock peer never says it has made its offers: for it, a still link is the best sign.
    const offersIn = this.#speaksOrdo ? this.#remoteOffered : this.#ctx.clock().getTime() - this.#lastActivity >= QUIET_MS;
    return { announced: this.#announced, pendingOut, pendingIn, pendingSince: this.#pendingSince, unsettled, lastSeen: this.#lastSeen, settled: this.#announced && offersIn && pendingOut === 0 && unsettled === 0 };
  }

  /** Whether this peer's heads for a document equal ours, as far as we know. */
  isSettled(id: DocumentId): boolean {
    // Collection sync keeps no per-document state: in sync is nothing pending either way.
    if (this.#collection.started) return this.progress().settled && !this.#unsettled.has(id) && !this.#collection.pending(id);
    return this.#ctx.states.has(id) && !this.#unsettled.has(id);
  }

  /**
   * Offers every document that may travel on this link, then says so to an Ordo peer. With an
   * Ordo peer the collection is reconciled at once (see `#reconcileCollection`); a stock peer
   * gets one Automerge sync session per document.
   */
  announce(records: readonly DocRecord[]): void {
    if (this.#speaksOrdo && speaksCollectionSync(this.#link.remoteMetadata)) {
      // Only what the peer may read takes part: a student's link to a relay of 50,000 documents holds hundreds, not all.
      const readable = records.filter((record) => canRead(this.remote, record, this.#ctx.coursesOf));
      this.#enqueue(() => this.#collection.start(readable));
      return;
    }
    let count = 0;
    for (const record of records) {
      if (!this.#travels(record)) continue;
      this.#dirty.add(record.id);
      count++;
    }
    this.#drainSoon();
    this.#enqueue(async () => {
      this.#announced = true;
      if (this.#speaksOrdo) this.#link.send({ type: "ordo-offered", senderId: this.#link.localPeerId, targetId: this.#link.remotePeerId, count });
      this.#ctx.onProgress();
    });
  }

  /** The remote is an Ordo node (it numbers its messages), so it sends and understands `ordo-offered`. */
  get #speaksOrdo(): boolean {
    return this.#link.remoteMetadata["ordoSeq"] === true;
  }

  /**
   * A document changed here: offer it to the peer if it may have it. An Ordo peer in its
   * steady state gets the change itself (`changes`, the same bytes for every peer); any other
   * peer gets an Automerge sync session.
   */
  documentChanged(record: DocRecord, changes?: () => Promise<{ data: Uint8Array; heads: string } | null | undefined>): void {
    // A document this peer just sent, which made ours what the peer holds: nothing to offer back.
    if (this.#collection.peerHolds(record)) return;
    if (this.#link.closed || !this.#travels(record)) return;
    if (changes && this.#collection.pushChange(record.id, changes)) return;
    this.#dirty.add(record.id);
    this.#drainSoon();
  }

  /**
   * A document the policy may now judge differently (a user whose enrollment just arrived):
   * if this link is already talking about it, pick the conversation up again.
   */
  reconsider(record: DocRecord): void {
    if (this.#link.closed || !this.#ctx.states.has(record.id)) return;
    this.#dirty.add(record.id);
    this.#drainSoon();
  }

  /**
   * What this node offers the peer: what the peer may read and this node may write. A node
   * never offers what it may not write, so it is never asked for changes it could not send
   * (a student's device does not pass a classmate's post on); the peer that may write a
   * document offers it, and the receiving side's read-only sync state keeps the rest one-way.
   */
  #travels(record: DocRecord): boolean {
    const { local, coursesOf, refused } = this.#ctx;
    return !refused.has(record.id) && canRead(this.remote, record, coursesOf) && canWrite(local, record, coursesOf);
  }

  #active(): void {
    this.#lastActivity = this.#ctx.clock().getTime();
    if (!this.#link.closed) this.#quietTimer.refresh();
  }

  #enqueue(step: () => Promise<void>): void {
    this.#chain = this.#chain.then(step).catch((error: unknown) => this.#fail(error));
  }

  #fail(error: unknown): void {
    const code = (error as { code?: string }).code;
    if (code === "ORDO_BAD_CHANGES" || code === "ORDO_BAD_COLLECTION") {
      this.#link.close(CloseCode.malformedMessage, code === "ORDO_BAD_CHANGES" ? "unreadable sync message" : "unreadable collection message");
      return;
    }
    if (code === "ORDO_CLOSED") return;
    this.#ctx.logger.error({ err: error, peer: this.#link.remotePeerId }, "sync step failed; resyncing the link");
    this.#link.close(CloseCode.goingAway, "internal error");
  }

  #drainSoon(): void {
    if (this.#dirty.size > 0) this.#pendingSince ??= this.#ctx.clock().getTime();
    if (this.#draining) return;
    this.#draining = true;
    this.#enqueue(async () => {
      this.#draining = false;
      // Take the whole set: documents that change meanwhile join the next drain.
      const batch = [...this.#dirty];
      this.#dirty.clear();
      for (const id of batch) {
        if (this.#link.closed) return;
        await this.#sendSync(docUrlOf(id));
      }
      this.#pendingSince = this.#dirty.size > 0 ? this.#ctx.clock().getTime() : null;
      this.#ctx.onProgress();
    });
  }

  /** The sync state for a document, read-only when the remote may not write it. */
  #stateFor(id: DocumentId, record: DocRecord | undefined): A.SyncState {
    const readOnly = record ? !canWrite(this.remote, record, this.#ctx.coursesOf) : false;
    const state = this.#ctx.states.get(id) ?? A.initSyncState({ readOnly });
    return state.readOnly === readOnly ? state : ({ ...state, readOnly } as A.SyncState);
  }

  /**
   * Sends the next sync message for a document, if there is one. A document this node does
   * not have is answered only as a reply (the peer offered it): from an empty document, the
   * reply asks for all of it.
   */
  async #sendSync(url: DocUrl, asReply = false): Promise<void> {
    const { store, states } = this.#ctx;
    const id = documentIdOf(url);
    const record = await store.record(url);
    if (record && !canRead(this.remote, record, this.#ctx.coursesOf)) {
      // Not the peer's to see (perhaps not yet: see `reconsider`): nothing to wait for meanwhile.
      this.#unsettled.delete(id);
      this.#behind.delete(id);
      return;
    }
    if (!record && !asReply) return;
    const { state, message, behind } = await store.generateSyncMessage(url, this.#stateFor(id, record));
    // A link replaced meanwhile must not overwrite the states its successor resumed from.
    if (this.#link.closed) return;
    states.set(id, state);
    // A document we do not have yet, offered by the peer, is unsettled until it arrives.
    this.#noteHeads(id, state, record?.heads ?? "", behind);
    if (message) this.#send({ type: "sync", documentId: id, data: message });
  }

  async #receive(message: Exclude<DocMessage, { type: "ordo-docs" }>): Promise<void> {
    if (this.#link.closed) return;
    if (message.type === "ordo-offered") {
      // Every offer before this one has been handled: the link is in its steady state.
      this.#remoteOffered = true;
      await this.#collection.peerOffered();
      this.#ctx.onProgress();
      return;
    }
    if (message.type === "ordo-summary") {
      if (!(await this.#collection.receiveSummary(message.data))) this.#link.close(CloseCode.malformedMessage, "a summary out of turn");
      return;
    }
    const url = `automerge:${message.documentId}`;
    if (!isVerifiedDocUrl(url)) {
      this.#link.close(CloseCode.malformedMessage, "not a document id");
      return;
    }
    const id = message.documentId as DocumentId;
    // The peer will not hold it: nothing to wait for.
    if (message.type === "doc-unavailable") return this.#forget(id);
    const { store, coursesOf } = this.#ctx;
    const record = await store.record(url);
    const carriesChanges = decodedChanges(message.data) > 0;
    if (carriesChanges && record && !canWrite(this.remote, record, coursesOf)) {
      this.#refuseWrite(url);
      return;
    }
    if (message.type === "request" && !(record && canRead(this.remote, record, coursesOf))) {
      this.#send({ type: "doc-unavailable", documentId: id });
      return;
    }
    if (record && !canRead(this.remote, record, coursesOf)) {
      this.#answerAsIfAbsent(id, message.data);
      return;
    }
    let refused: "write" | "read" | null = null;
    const receipt = await store.receiveSyncMessage(
      url,
      this.#stateFor(id, record),
      message.data,
      (next, previous) => {
        if ((previous && !canWrite(this.remote, previous, coursesOf)) || !canWrite(this.remote, next, coursesOf)) refused = "write";
        else if (!this.#mayHold(next)) refused = "read";
        return refused === null;
      },
      carriesChanges,
    );
    if (refused === "write") return this.#refuseWrite(url);
    if (refused === "read") {
      // Not for this node's user: it is never stored, even in transit.
      this.#forget(id);
      this.#send({ type: "doc-unavailable", documentId: id });
      return;
    }
    if (this.#link.closed) return;
    this.#ctx.states.set(id, receipt.state);
    await this.#sendSync(url, true);
  }

  /** Collection sync has offered the peer everything: say so, once what it queued is sent. */
  #offered(count: number): void {
    this.#drainSoon();
    this.#enqueue(async () => {
      this.#announced = true;
      this.#link.send({ type: "ordo-offered", senderId: this.#link.localPeerId, targetId: this.#link.remotePeerId, count });
      this.#ctx.onProgress();
    });
  }

  /**
   * Answers a sync message about a document the peer may not read exactly as for one this
   * node does not have (from an empty document), so the answer tells nothing of it.
   */
  #answerAsIfAbsent(id: DocumentId, data: Uint8Array): void {
    let doc = A.init();
    let reply: Uint8Array | null;
    try {
      let state: A.SyncState;
      [doc, state] = A.receiveSyncMessage(doc, A.initSyncState(), data);
      [, reply] = A.generateSyncMessage(doc, state);
    } catch (cause) {
      throw new OrdoError("ORDO_BAD_CHANGES", "unreadable sync message", { cause });
    } finally {
      A.free(doc);
    }
    if (reply) this.#send({ type: "sync", documentId: id, data: reply });
  }

  /**
   * Whether this node may keep a document. A user document counts as readable when a peer
   * that may write it sends it: the enrollments that make a classmate visible may not have
   * arrived yet, and user documents carry no coursework.
   */
  #mayHold(next: DocRecord): boolean {
    const { local, coursesOf } = this.#ctx;
    if (canRead(local, next, coursesOf)) return true;
    return next.kind === "user" && next.course === null && canWrite(this.remote, next, coursesOf);
  }

  /** Closes the link over changes the peer may not write, naming the document so an honest peer stops offering it. */
  #refuseWrite(url: DocUrl): void {
    this.#ctx.logger.warn({ peer: this.#link.remotePeerId, user: this.remote.user, doc: url }, "refused changes the peer may not write");
    this.#link.close(CloseCode.forbiddenWrite, `${FORBIDDEN_WRITE_REASON}${documentIdOf(url)}`);
  }

  /** Tracks whether the peer's heads, as its last message said, are ours. */
  #noteHeads(id: DocumentId, state: A.SyncState, ours: string, behind: boolean): void {
    const theirs = state.theirHeads ? [...state.theirHeads].sort().join(",") : null;
    const before = `${this.#unsettled.size}/${this.#behind.size}`;
    if (theirs === ours) this.#unsettled.delete(id);
    else this.#unsettled.add(id);
    if (behind) this.#behind.add(id);
    else this.#behind.delete(id);
    if (before !== `${this.#unsettled.size}/${this.#behind.size}`) this.#ctx.onProgress();
  }

  /** Stops tracking a document on this link: neither side will hold it through the other. */
  #forget(id: DocumentId): void {
    this.#ctx.states.delete(id);
    const wasUnsettled = this.#unsettled.delete(id);
    const wasBehind = this.#behind.delete(id);
    if (wasUnsettled || wasBehind) this.#ctx.onProgress();
  }

  #send(message: { type: "sync"; documentId: string; data: Uint8Array } | { type: "doc-unavailable"; documentId: string } | { type: "ordo-summary" | "ordo-docs"; data: Uint8Array }): void {
    this.#active();
    this.#link.send({ ...message, senderId: this.#link.localPeerId, targetId: this.#link.remotePeerId });
  }
}

/** How many changes a sync message carries; unreadable bytes surface as ORDO_BAD_CHANGES. */
function decodedChanges(data: Uint8Array): number {
  try {
    return A.decodeSyncMessage(data).changes.length;
  } catch (cause) {
    throw new OrdoError("ORDO_BAD_CHANGES", "unreadable sync message", { cause });
  }
}
