import type * as A from "@automerge/automerge";
import { CATALOG_KIND } from "../crdt/catalog.js";
import type { DocRecord } from "../crdt/doc-storage.js";
import type { DocStore, WholeBatch } from "../crdt/doc-store.js";
import { docUrlOf, type DocUrl, type DocumentId } from "../crdt/ids.js";
import type { Principal } from "../net/principal.js";
import { canRead, canWrite, type CoursesOf } from "./access-policy.js";
import {
  bucketOf,
  decodeBatch,
  decodeSummary,
  differingBuckets,
  digestOf,
  encodeBatches,
  encodeSummary,
  entryHash,
  type BatchEntry,
  type HeadsKey,
} from "./collection-codec.js";

/**
 * The version of collection sync this node speaks, announced in the join's metadata
 * (`ordoCollection`). Ordo peers that announce another version, or none, get per-document sync.
 */
export const COLLECTION_SYNC_VERSION = 2;
export const COLLECTION_METADATA = { ordoCollection: COLLECTION_SYNC_VERSION } as const;

/** Whether a peer's join metadata says it speaks this node's collection sync. */
export function speaksCollectionSync(remoteMetadata: Readonly<Record<string, unknown>>): boolean {
  return remoteMetadata["ordoCollection"] === COLLECTION_SYNC_VERSION;
}

/** Documents read from the store at once when sending a collection: bounds memory, keeps reads batched. */
const DOCS_PER_READ = 200;
/** Bytes of documents per `ordo-docs` frame, well under the link's frame cap. */
const BATCH_BYTES = 1 << 20;

/** What collection sync needs of the link it runs on (see `LinkSync`). */
export interface CollectionLink {
  readonly store: DocStore;
  readonly remote: Principal;
  readonly coursesOf: CoursesOf;
  closed(): boolean;
  send(message: { type: "ordo-summary" | "ordo-docs"; data: Uint8Array }): void;
  /** Whether this node offers a document to the peer. */
  travels(record: DocRecord): boolean;
  /** Whether this node may keep a document the peer sends. */
  mayHold(record: DocRecord): boolean;
  /** Closes the link over a document the peer may not write. */
  refuseWrite(url: DocUrl): void;
  /** The peer now holds a document as we do (it arrived from it, or it stopped being a question). */
  settled(id: DocumentId): void;
  /** Every document that travels has been offered: `count` of them. */
  offered(count: number): void;
  /** Leaves a document to an Automerge sync session. */
  syncDocument(id: DocumentId): void;
  /** Runs a step in turn with the link's other work. */
  enqueue(step: () => Promise<void>): void;
}

/**
 * Collection sync with an Ordo peer, in steps that both sides take at once:
 * 1. each sends a digest of what it holds that the other may read; equal digests end it;
 * 2. otherwise each lists its entries in the buckets that differ;
 * 3. each sends, whole and many to a frame, the documents the other lacks, and lists its
 *    heads for the documents both hold at different heads;
 * 4. each sends the changes the other lacks of those, in the same frames.
 * Then `offered`. A reconnection with nothing new is one exchange of digests, whatever the
 * number of documents; with a few changes, a few round trips and a frame of changes.
 */
export class CollectionSync {
  readonly #link: CollectionLink;
  /** What this node held when the link opened, until compared. */
  #records: Map<DocumentId, DocRecord> | null = null;
  /** What this node holds that the peer may read: id to entry hash. */
  #ownEntries: Map<DocumentId, string> | null = null;
  #ownDigest: Uint8Array | null = null;
  #remoteDigest: Uint8Array | null = null;
  /** The buckets the two digests disagree on: only their documents are compared. */
  #differing: Set<number> | null = null;
  #remoteEntries: Map<DocumentId, string> | null = null;
  #remoteHeads: Map<DocumentId, HeadsKey> | null = null;
  #step: "digests" | "entries" | "heads" | "done" = "digests";
  #offeredCount = 0;
  /** The heads the peer holds a document at, as far as this exchange showed: a change that only brings us there is not offered back. */
  readonly #peerHeads = new Map<DocumentId, HeadsKey>();
  /** Documents with a pushed change not yet sent. */
  readonly #pushing = new Set<DocumentId>();
  /** Documents where the peer has changes we lack: if its own batch does not bring us to its heads, both changed them. */
  #waitingForPeer = new Map<DocumentId, HeadsKey>();

  constructor(link: CollectionLink) {
    this.#link = link;
  }

  /** Step 1, with this node's records that the peer may read. */
  async start(readable: readonly DocRecord[]): Promise<void> {
    const { remote, coursesOf } = this.#link;
    // Only what the peer may read is summed up, listed or named, so a summary tells it nothing else.
    const records = readable.filter((record) => canRead(remote, record, coursesOf));
    this.#records = new Map(records.map((record) => [record.id, record]));
    const entries = new Map<DocumentId, string>();
    for (const record of records) entries.set(record.id, entryHash(record.id, record.heads));
    this.#ownEntries = entries;
    this.#ownDigest = digestOf([...entries].map(([id, hash]) => ({ id, hash })));
    this.#link.send({ type: "ordo-summary", data: encodeSummary({ kind: "digest", digest: this.#ownDigest }) });
    await this.#advance();
  }

  /** A summary from the peer; false if it came out of turn (the link should close). */
  async receiveSummary(data: Uint8Array): Promise<boolean> {
    const summary = decodeSummary(data);
    if (summary.kind === "digest") {
      if (this.#remoteDigest) return false;
      this.#remoteDigest = summary.digest;
    } else if (summary.kind === "entries") {
      if (this.#remoteEntries || !this.#remoteDigest) return false;
      this.#remoteEntries = summary.entries;
    } else {
      if (this.#remoteHeads || !this.#remoteEntries) return false;
      this.#remoteHeads = summary.heads;
    }
    await this.#advance();
    return true;
  }

  /** Whether a change that brought a document here only made it what the peer holds already. */
  peerHolds(record: DocRecord): boolean {
    const theirs = this.#peerHeads.get(record.id);
    if (theirs === undefined) return false;
    this.#peerHeads.delete(record.id);
    return theirs === record.heads;
  }

  /**
   * Decodes a frame of documents and starts describing the new ones in the store's worker
   * at once; the returned step stores them, in turn with the link's other messages.
   */
  prepareDocuments(data: Uint8Array): () => Promise<void> {
    let entries: BatchEntry[];
    let batch: WholeBatch;
    try {
      entries = decodeBatch(data);
      batch = this.#link.store.prepareWhole(entries.map(({ id, data: bytes }) => ({ url: docUrlOf(id), data: bytes })));
    } catch (error) {
      // Refused in turn, after what came before it.
      return () => Promise.reject(error);
    }
    return () => this.#receiveDocuments(batch, entries);
  }

  /**
   * Pushes a change made here to the peer as a collection frame: the changes since the heads
   * before it, which the peer holds if it was in sync, to every peer alike. False if the
   * link is not in its steady state yet, and the document takes the per-document path.
   */
  pushChange(id: DocumentId, changes: () => Promise<{ data: Uint8Array; heads: HeadsKey } | null | undefined>): boolean {
    if (this.#step !== "done") return false;
    this.#pushing.add(id);
    this.#link.enqueue(async () => {
      try {
        const pending = await changes();
        if (!pending || pending.data.byteLength === 0 || this.#link.closed()) return;
        for (const data of encodeBatches([{ id, ...pending }], BATCH_BYTES)) this.#link.send({ type: "ordo-docs", data });
      } finally {
        this.#pushing.delete(id);
      }
    });
    return true;
  }

  /** Collection sync runs on this link (the peer speaks it, and this node has started it). */
  get started(): boolean {
    return this.#ownDigest !== null;
  }

  /** Pushed changes not yet sent. */
  get pushing(): number {
    return this.#pushing.size;
  }

  /** Something of this document is still on its way out, or due from the peer. */
  pending(id: DocumentId): boolean {
    return this.#pushing.has(id) || this.#waitingForPeer.has(id);
  }

  /**
   * Documents or changes from the peer, judged one by one as sync messages are: changes to a
   * document the peer may not write close the link, and what this node's user may not read is
   * never stored. They are stored together, so the store commits them in one transaction.
   * Where they leave a document short of the peer's heads (it sent changes we cannot place),
   * an Automerge sync session works out what is missing.
   */
  async #receiveDocuments(batch: WholeBatch, entries: readonly BatchEntry[]): Promise<void> {
    if (this.#link.closed()) return;
    const { store, remote, coursesOf } = this.#link;
    const senderHeads = new Map(entries.map((entry) => [entry.id, entry.heads]));
    let forbidden: DocUrl | null = null;
    const outcomes = await store.receiveWhole(batch, (next, previous) => {
      if ((previous && !canWrite(remote, previous, coursesOf)) || !canWrite(remote, next, coursesOf)) forbidden ??= docUrlOf(next.id);
      else if (this.#link.mayHold(next)) {
        // Now exactly what the peer holds: not offered back.
        if (next.heads === senderHeads.get(next.id)) this.#peerHeads.set(next.id, next.heads);
        return true;
      }
      return false;
    });
    for (const [i, outcome] of outcomes.entries()) {
      const { id, heads } = entries[i]!;
      if (outcome.status === "refused" || outcome.status === "unchanged") this.#peerHeads.delete(id);
      if (outcome.status === "refused") continue;
      this.#link.settled(id);
      if (outcome.heads !== heads && !(await store.holdsHeads(docUrlOf(id), headsOf(heads)))) this.#link.syncDocument(id);
    }
    if (forbidden) this.#link.refuseWrite(forbidden);
  }

  /** Takes every step whose inputs are in. */
  async #advance(): Promise<void> {
    if (!this.#ownDigest || !this.#remoteDigest) return;
    if (this.#step === "digests") {
      this.#differing = differingBuckets(this.#ownDigest, this.#remoteDigest);
      this.#offeredCount = [...this.#records!.values()].filter((record) => this.#link.travels(record)).length;
      if (this.#differing.size === 0) return this.#finish();
      this.#step = "entries";
      const entries = [...this.#ownEntries!].filter(([id]) => this.#differing!.has(bucketOf(id))).map(([id, hash]) => ({ id, hash }));
      this.#link.send({ type: "ordo-summary", data: encodeSummary({ kind: "entries", entries }) });
    }
    if (this.#step === "entries" && this.#remoteEntries) {
      this.#step = "heads";
      await this.#compareEntries(this.#remoteEntries);
    }
    if (this.#step === "heads" && this.#remoteHeads) await this.#sendChanges(this.#remoteHeads);
  }

  /** Step 3: sends whole what the peer lacks, and lists our heads where both hold a document at different heads. */
  async #compareEntries(theirs: ReadonlyMap<DocumentId, string>): Promise<void> {
    const missing: DocRecord[] = [];
    const differ: Array<{ id: DocumentId; heads: HeadsKey }> = [];
    for (const [id, hash] of this.#ownEntries!) {
      if (!this.#differing!.has(bucketOf(id))) continue;
      const record = this.#records!.get(id)!;
      const their = theirs.get(id);
      if (their === undefined) {
        if (this.#link.travels(record)) missing.push(record);
      } else if (their !== hash) differ.push({ id, heads: record.heads });
    }
    // Catalog partitions first: a peer that already holds them finds every later document listed, with nothing to add.
    missing.sort((a, b) => Number(b.kind === CATALOG_KIND) - Number(a.kind === CATALOG_KIND));
    await this.#sendInBatches(missing, async (record) => {
      const data = await this.#link.store.exportStored(docUrlOf(record.id));
      return data && { data, heads: record.heads };
    });
    // Always sent, even empty: the peer waits for it.
    this.#link.send({ type: "ordo-summary", data: encodeSummary({ kind: "heads", heads: differ }) });
  }

  /**
   * Step 4: for each document the peer listed, the changes it lacks, if this node offers it
   * that document and holds every change the peer does. Where the peer has changes we lack,
   * its own batch brings them; see `peerOffered`.
   */
  async #sendChanges(theirs: ReadonlyMap<DocumentId, HeadsKey>): Promise<void> {
    const changed: DocRecord[] = [];
    for (const [id, heads] of theirs) {
      const record = this.#records!.get(id);
      if (record && record.heads !== heads && this.#link.travels(record)) changed.push(record);
    }
    await this.#sendInBatches(changed, async (record) => {
      const heads = theirs.get(record.id)!;
      const changes = await this.#link.store.changesFor(docUrlOf(record.id), headsOf(heads));
      if (changes === null) this.#waitingForPeer.set(record.id, heads);
      return changes ?? undefined;
    });
    this.#finish();
  }

  /**
   * The peer has sent everything of its first offers. A document it had changes to that are
   * still not all here changed on both sides since they last met: an Automerge sync session
   * works out what each lacks.
   */
  async peerOffered(): Promise<void> {
    const waiting = this.#waitingForPeer;
    this.#waitingForPeer = new Map();
    for (const [id, heads] of waiting) {
      if (!(await this.#link.store.holdsHeads(docUrlOf(id), headsOf(heads)))) this.#link.syncDocument(id);
    }
  }

  async #sendInBatches(records: readonly DocRecord[], read: (record: DocRecord) => Promise<{ data: Uint8Array; heads: HeadsKey } | undefined>): Promise<void> {
    for (let start = 0; start < records.length; start += DOCS_PER_READ) {
      const docs = await Promise.all(records.slice(start, start + DOCS_PER_READ).map(async (record) => ({ id: record.id, ...(await read(record)) })));
      if (this.#link.closed()) return;
      const present = docs.filter((doc): doc is BatchEntry => doc.data !== undefined && doc.data.byteLength > 0);
      for (const data of encodeBatches(present, BATCH_BYTES)) this.#link.send({ type: "ordo-docs", data });
    }
  }

  #finish(): void {
    this.#step = "done";
    this.#records = null;
    this.#ownEntries = null;
    this.#remoteEntries = null;
    this.#remoteHeads = null;
    this.#link.offered(this.#offeredCount);
  }
}

function headsOf(key: HeadsKey): A.Heads {
  return key === "" ? [] : key.split(",");
}
