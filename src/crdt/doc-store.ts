import { EventEmitter } from "node:events";
import * as A from "@automerge/automerge";
import { isoNow, systemClock, type Clock } from "../util/clock.js";
import { OrdoError } from "../util/errors.js";
import { silentLogger, type Logger } from "../util/logger.js";
import {
  applyCatalogEdits,
  catalogEditsChangeAnything,
  CATALOG_KIND,
  catalogUrl,
  initialCatalog,
  readCatalogEntries,
  type CatalogEdit,
} from "./catalog.js";
import { DocCache, type LiveDoc } from "./doc-cache.js";
import { GroupCommit, type WriteBatch } from "./group-commit.js";
import { CompactionSchedule, type CompactionTiming } from "./compaction-schedule.js";
import { headsKey, incrementalKey, loadFromChunks, mustCompact, shouldCompact, snapshotKey } from "./doc-chunks.js";
import { answersQuery, type DocRecord, type DocStorage, type RecordQuery } from "./doc-storage.js";
import { docUrlOf, documentIdOf, externalDocUrl, newDocUrl, type DocUrl, type DocumentId, type ExternalIdentity } from "./ids.js";
import type { Audience } from "./schema/audience.js";
import { describeDocument, kindOf, loadNew, type ChangesSince } from "./describe.js";
import { WholeDocDescriber, type Described } from "./whole-doc-describer.js";
import {
  draftOf,
  fieldConflicts,
  noteTouchedFields,
  initialRoot,
  markDeleted,
  readEntity,
  readTombstone,
  SchemaError,
  touch,
  validateDocument,
  type Draft,
  type Entity,
  type ExternalIds,
} from "./schema/document.js";
import { isKind, REQUIRED_FIELDS, type Fields, type Kind } from "./schema/kinds.js";
import type { DocSnapshot, DocView } from "./snapshot.js";

/** New documents in one batch from which a worker describes them. */
const WORKER_BATCH_MIN = 64;
/** Documents per request to the worker: small enough that this thread starts storing early. */
const DESCRIBE_CHUNK = 200;

/** Enough live documents for a class's working set; a node with 50,000 on disk keeps only these in RAM. */
export const DEFAULT_CACHE_SIZE = 2_000;

export interface DocStoreOptions {
  storage: DocStorage;
  /** How many documents stay in memory at most. */
  cacheSize?: number;
  /** How long a document nobody uses stays in memory (`DEFAULT_IDLE_MS`, a minute). */
  cacheIdleMs?: number;
  clock?: Clock;
  logger?: Logger;
  /**
   * Which catalog partitions this node keeps up to date (all, unless told otherwise). A
   * student's node may only write its own partition: edits it could not send would leave
   * its copy of the others diverged from everyone else's.
   */
  maintainsCatalog?: (course: DocUrl, audience: Audience) => boolean;
  /** `prepareWhole` describes new documents in a worker from this many in one batch (fewer are not worth a thread). */
  workerBatchMin?: number;
  /** When documents whose incremental chunks piled up are compacted (see `CompactionSchedule`). */
  compaction?: CompactionTiming;
}

/** A document changed, here or on a peer, and the change is committed to storage. */
export interface DocChange {
  url: DocUrl;
  kind: string;
  heads: string;
  /** The heads before this change, or null for a document new here: a peer at those heads lacks exactly this change. */
  previousHeads: string | null;
  origin: "local" | "remote";
  deleted: boolean;
}

export interface DocStoreEvents {
  "doc-changed": [DocChange];
  /** A document from a peer failed validation: it is kept, quarantined and never projected. */
  "doc-invalid": [{ url: DocUrl; errors: string[] }];
}

/** What a new entity is made of: its fields, its course (except users and courses) and its ids elsewhere. */
export type CreateInput<K extends Kind> = Partial<Fields<K>> & { course?: DocUrl | null; external?: ExternalIds };

export interface WriteOptions {
  /** Resolve only once the change would survive a power loss (an fsync), not just a crash. */
  durable?: boolean;
}

interface MutateOptions extends WriteOptions {
  /** The bytes a new document arrived as: stored as they are. */
  saved?: Uint8Array;
  /** The document's record, when it was already described for an admission check. */
  described?: DocRecord;
  /** The stored record, when the caller already read it (undefined: not stored). */
  stored?: DocRecord | undefined;
}

export interface CreateOptions extends WriteOptions {
  /** Import identity: the same entity of the same system gets the same document on every peer. */
  identity?: ExternalIdentity;
}

export type ReceiveResult = { status: "unchanged" | "applied" | "quarantined" | "refused"; heads: string };

/** Decides whether a peer's changes may land: `next` is the record the document would have. */
/** A batch of whole documents, some perhaps being described in a worker already (see `DocStore.prepareWhole`). */
export interface WholeBatch {
  readonly items: ReadonlyArray<{ url: DocUrl; data: Uint8Array }>;
  readonly described: ReadonlyMap<DocUrl, Promise<Described | null>>;
}

export type AdmitChanges = (next: DocRecord, previous: DocRecord | undefined) => boolean;

export interface SyncReceipt {
  state: A.SyncState;
  status: "unchanged" | "applied" | "quarantined" | "refused";
}

/**
 * Every document of a node: typed create, change, find, list and delete over Automerge,
 * persisted through a `DocStorage`, with a bounded set of documents in memory.
 *
 * Writes are grouped: all documents changed in one tick are committed in one transaction,
 * each with its index record, and every write's promise resolves once that commit is done.
 */
export class DocStore extends EventEmitter<DocStoreEvents> {
  readonly #storage: DocStorage;
  readonly #cache: DocCache;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #loading = new Map<DocumentId, Promise<LiveDoc | undefined>>();
  readonly #records = new Map<DocumentId, DocRecord>();
  #catalogEdits = new Map<DocUrl, PartitionEdits>();
  readonly #writes: GroupCommit;
  readonly #maintainsCatalog: (course: DocUrl, audience: Audience) => boolean;
  /** Who must also accept a document's queued changes (see `receiveSyncMessage`). */
  readonly #queuedAdmits = new Map<DocumentId, AdmitChanges>();
  readonly #describer = new WholeDocDescriber();
  readonly #workerBatchMin: number;
  #describedInWorker = 0;
  readonly #compaction: CompactionSchedule;
  #closed = false;

  constructor(options: DocStoreOptions) {
    super();
    this.#storage = options.storage;
    this.#cache = new DocCache(options.cacheSize ?? DEFAULT_CACHE_SIZE, options.cacheIdleMs);
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
    this.#maintainsCatalog = options.maintainsCatalog ?? (() => true);
    this.#workerBatchMin = options.workerBatchMin ?? WORKER_BATCH_MIN;
    this.#compaction = new CompactionSchedule((ids) => this.#compactNow(ids), options.compaction);
    this.#writes = new GroupCommit(this.#storage, {
      beforeCommit: () => this.#applyCatalogEdits(),
      afterCommit: (batch) => this.#afterCommit(batch),
      onError: (error) => this.#logger.error({ err: error }, "could not write documents; they stay queued and are retried"),
    });
  }

  /** Documents that arrived whole and were loaded and described in the worker, not on this thread. */
  get describedInWorker(): number {
    return this.#describedInWorker;
  }

  /**
   * Storage is refusing writes (a full disk, an I/O error, a locked file): the last commit
   * failed. The changes since are readable here and retried; until this clears they live only
   * in memory.
   */
  get writesFailing(): boolean {
    return this.#writes.failing;
  }

  /** Documents in memory right now (bounded by `cacheSize`). */
  get liveCount(): number {
    return this.#cache.size;
  }

  // ---- typed API -------------------------------------------------------------------------

  /**
   * Creates an entity.
   * @example
   * const course = await store.create("course", { name: "Biology 101" });
   * const lab = await store.create("assignment", { course: course.url, title: "Lab 1", pointsPossible: 10 });
   */
  async create<K extends Kind>(kind: K, input: CreateInput<K>, options: CreateOptions = {}): Promise<Entity<K>> {
    this.#assertOpen();
    const url = options.identity ? externalDocUrl(kind, options.identity) : newDocUrl();
    const { course = null, external = {}, ...fields } = input;
    const ownCourse = kind === "course" ? url : course;
    if (kind !== "course" && kind !== "user" && ownCourse === null) throw new SchemaError(`a ${kind} needs a course`);
    for (const key of REQUIRED_FIELDS[kind] as readonly string[]) {
      if ((fields as Record<string, unknown>)[key] == null) throw new SchemaError(`a ${kind} needs ${key}`);
    }
    const root = initialRoot(kind, ownCourse, fields as Partial<Fields<K>>, isoNow(this.#clock), external);
    const record = await this.#mutate(documentIdOf(url), "local", options, (live) => {
      if (live) throw new OrdoError("ORDO_EXISTS", `${url} already exists`);
      const created = A.from(root);
      const verdict = validateDocument(created);
      if (!verdict.ok) {
        A.free(created);
        throw new SchemaError(`invalid ${kind}: ${verdict.errors.join("; ")}`, verdict.errors);
      }
      return created;
    });
    return entityOf<K>(record);
  }

  /**
   * Changes an entity with a typed change function. Assigning a text field (a page body, a
   * post message) diffs it into the text, so concurrent edits merge character by character.
   * A change that breaks the schema throws and leaves the document as it was.
   */
  async change<K extends Kind>(url: DocUrl, fn: (draft: Draft<K>) => void, options: WriteOptions = {}): Promise<Entity<K>> {
    this.#assertOpen();
    const id = documentIdOf(url);
    await this.#requireEntity(id, url);
    const record = await this.#mutate(id, "local", options, (live) => {
      if (!live) throw new OrdoError("ORDO_NOT_FOUND", `no document ${url}`);
      if (readTombstone(live.doc as Record<string, unknown>)) throw new OrdoError("ORDO_DELETED", `${url} was deleted`);
      const kind = kindOf(live.doc) as K;
      const now = isoNow(this.#clock);
      return A.change(live.doc as A.Doc<Record<string, unknown>>, (proxy) => {
        fn(draftOf(kind, proxy));
        touch(proxy, now);
        const verdict = validateDocument(proxy);
        // Throwing inside the change makes Automerge roll it back.
        if (!verdict.ok) throw new SchemaError(`invalid ${kind}: ${verdict.errors.join("; ")}`, verdict.errors);
      });
    });
    return entityOf<K>(record);
  }

  /**
   * The entity at `url`, or undefined if there is none, it is deleted, or it is quarantined.
   * Read from the view stored with the document's record: reading never loads the Automerge
   * document, so browsing a course keeps memory flat.
   */
  async find<K extends Kind>(url: DocUrl, options: { includeDeleted?: boolean } = {}): Promise<Entity<K> | undefined> {
    this.#assertOpen();
    const id = documentIdOf(url);
    const record = await this.#record(id);
    if (!record || record.status !== "ok" || !isKind(record.kind)) return undefined;
    if (record.deleted && !options.includeDeleted) return undefined;
    if (record.view) return (JSON.parse(record.view) as DocView).entity as Entity<K>;
    return this.#read(id, (doc) => readEntity<K>(url, doc));
  }

  /** The URLs of a course's documents of one kind (or all kinds), from the catalog partitions this node holds. */
  async urls(course: DocUrl, kind?: Kind): Promise<DocUrl[]> {
    const seen = new Set<DocumentId>();
    for (const partition of await this.#storage.records({ course, kind: CATALOG_KIND })) {
      for (const entry of (await this.#read(partition.id, readCatalogEntries)) ?? []) {
        if (!entry.deleted && (kind === undefined || entry.kind === kind)) seen.add(entry.id);
      }
    }
    return [...seen].sort().map(docUrlOf);
  }

  /** A course's entities of one kind, in document order. Loads each one: use `urls` for large lists. */
  async list<K extends Kind>(course: DocUrl, kind: K): Promise<Array<Entity<K>>> {
    const out: Array<Entity<K>> = [];
    for (const url of await this.urls(course, kind)) {
      const entity = await this.find<K>(url);
      if (entity) out.push(entity);
    }
    return out;
  }

  /** Deletes an entity with a tombstone that replicates: it never comes back when an old peer reconnects. */
  async delete(url: DocUrl, options: WriteOptions & { by?: DocUrl } = {}): Promise<void> {
    this.#assertOpen();
    const id = documentIdOf(url);
    await this.#requireEntity(id, url);
    await this.#mutate(id, "local", options, (live) => {
      if (!live) throw new OrdoError("ORDO_NOT_FOUND", `no document ${url}`);
      if (readTombstone(live.doc as Record<string, unknown>)) return null;
      const now = isoNow(this.#clock);
      return A.change(live.doc as A.Doc<Record<string, unknown>>, (proxy) => {
        markDeleted(proxy, { at: now, by: options.by ?? null });
        touch(proxy, now);
      });
    });
  }

  /**
   * The document as the projection sees it: plain values, heads and field conflicts. Read
   * from the view stored with its record; `fromDocument` loads the Automerge document instead.
   */
  async snapshot(url: DocUrl, options: { fromDocument?: boolean } = {}): Promise<DocSnapshot | undefined> {
    const id = documentIdOf(url);
    const record = await this.#record(id);
    if (!record || record.status !== "ok" || !isKind(record.kind)) return undefined;
    if (record.view && !options.fromDocument) {
      const view = JSON.parse(record.view) as DocView;
      return { url, kind: record.kind, heads: record.heads, entity: view.entity, conflicts: view.conflicts };
    }
    const kind = record.kind;
    return this.#read(id, (doc) => ({ url, kind, heads: headsKey(doc), entity: readEntity(url, doc), conflicts: fieldConflicts(doc) }));
  }

  /**
   * Index records of the stored documents (no document is loaded). While storage refuses
   * writes, the stored records corrected by the writes waiting in memory for a retry: a peer
   * that connects meanwhile still learns of every document.
   */
  async records(query: RecordQuery = {}): Promise<DocRecord[]> {
    try {
      await this.flush();
    } catch (error) {
      if (!this.#writes.failing) throw error;
      const waiting = this.#writes.queuedRecords();
      const stored = (await this.#storage.records(query)).filter((record) => !waiting.has(record.id));
      return [...stored, ...[...waiting.values()].filter((record) => answersQuery(record, query))].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    }
    return this.#storage.records(query);
  }

  // ---- replication -----------------------------------------------------------------------

  /** The whole document, saved, for a peer that does not have it. */
  async export(url: DocUrl): Promise<Uint8Array | undefined> {
    return this.#read(documentIdOf(url), (doc) => A.save(doc));
  }

  /**
   * The document as stored, its chunks one after another, for a peer that has none of it: the
   * peer loads the concatenation as it would a save, and nothing is loaded here. A document
   * with no stored chunk yet is saved from memory.
   */
  async exportStored(url: DocUrl): Promise<Uint8Array | undefined> {
    this.#assertOpen();
    const id = documentIdOf(url);
    const chunks = this.#writes.withQueued(id, await this.#storage.loadRange([id])).filter((c) => c.data && (c.key[1] === "snapshot" || c.key[1] === "incremental"));
    if (chunks.length === 0) return this.export(url);
    // Snapshots first, incrementals after them in the order they were stored (a stable sort).
    chunks.sort((a, b) => (a.key[1] === b.key[1] ? 0 : a.key[1] === "snapshot" ? -1 : 1));
    return Buffer.concat(chunks.map((c) => c.data!));
  }

  /**
   * The changes a peer at `heads` lacks and the heads it will be at with them, or null if the
   * peer has changes this store lacks (then only an Automerge sync session can tell what each
   * side needs). Undefined if not stored.
   */
  async changesFor(url: DocUrl, heads: A.Heads): Promise<{ data: Uint8Array; heads: string } | null | undefined> {
    return this.#read(documentIdOf(url), (doc) => (A.hasHeads(doc, heads) ? { data: A.saveSince(doc, heads), heads: headsKey(doc) } : null));
  }

  /** Whether the document holds every change up to `heads`. */
  async holdsHeads(url: DocUrl, heads: A.Heads): Promise<boolean> {
    return (await this.#read(documentIdOf(url), (doc) => A.hasHeads(doc, heads))) ?? false;
  }

  /** Changes of a document since the given heads (all of it when none are given), for a peer. */
  async changesSince(url: DocUrl, heads: A.Heads = []): Promise<Uint8Array | undefined> {
    return this.#read(documentIdOf(url), (doc) => A.saveSince(doc, heads));
  }

  /**
   * Merges a peer's changes (a saved document or saved changes). Whatever arrives is kept;
   * a document that no longer fits its schema is quarantined (reported, never projected).
   * When `admit` is given it sees the record the document would have and may refuse it: then
   * nothing is stored or announced. Bytes Automerge cannot read are refused with an error and
   * change nothing.
   */
  async receive(url: DocUrl, data: Uint8Array, admit?: AdmitChanges): Promise<ReceiveResult> {
    this.#assertOpen();
    const id = documentIdOf(url);
    const stored = await this.#storage.record(id);
    let unchanged = "";
    let refused = false;
    let arrivedNew = false;
    // What `admit` judged is what gets stored: describing a document twice costs as much as loading it.
    const staging: MutateOptions = { saved: data, stored };
    const record = await this.#mutate(id, "remote", staging, (live) => {
      const before = live ? headsKey(live.doc) : "";
      const touched = new Set<string>();
      let next: A.Doc<unknown>;
      try {
        // Applied to the live copy itself, not a clone: a refused batch is rare, and then the
        // copy is dropped (below) and the next reader loads what storage and the queued writes hold.
        next = live ? A.loadIncremental(live.doc, data, { patchCallback: (patches) => noteTouchedFields(patches, touched) }) : loadNew(data);
      } catch (cause) {
        // The failed load may have left the live copy half-updated: drop it.
        if (live) this.#cache.delete(id);
        throw new OrdoError("ORDO_BAD_CHANGES", `changes for ${url} could not be read`, { cause });
      }
      // `next` shares the live copy's Automerge state: it is the live copy from here on.
      if (headsKey(next) !== before) {
        const previous = this.#knownRecord(id) ?? stored;
        const described = this.#describe(id, next, previous, live && changesSince(before, touched, previous, stored));
        if (!admit || admit(described, previous)) {
          staging.described = described;
          arrivedNew = !live;
          return next;
        }
        refused = true;
        this.#drop(id, live, next);
        return null;
      }
      unchanged = before;
      // Changes held back for a dependency were not judged (there was nothing to judge them as):
      // they are not kept, as a clone that dropped them would not have kept them.
      if (admit && A.getMissingDeps(next, []).length > 0) this.#drop(id, live, next);
      else if (live) this.#cache.set(id, { ...live, doc: next });
      else A.free(next);
      return null;
    });
    if (refused) return { status: "refused", heads: "" };
    if (!record) return { status: "unchanged", heads: unchanged };
    // A document that arrived whole is stored as it came and already described: nothing here needs it live,
    // and holding thousands of them while a course arrives would only grow memory.
    if (arrivedNew) this.#cache.delete(id);
    return { status: record.status === "invalid" ? "quarantined" : "applied", heads: record.heads };
  }

  /**
   * Starts loading and describing, in a worker, the documents of a batch a peer sent whole
   * that are new here (when there are enough to be worth a thread). `receiveWhole` stores
   * them: preparing the next batch while this thread stores the current one uses both cores.
   */
  prepareWhole(items: ReadonlyArray<{ url: DocUrl; data: Uint8Array }>): WholeBatch {
    this.#assertOpen();
    const described = new Map<DocUrl, Promise<Described | null>>();
    // Stored documents are found out when the batch is received; here only what is at hand is checked.
    const fresh = items.filter(({ url }) => {
      const id = documentIdOf(url);
      return !this.#knownRecord(id) && !this.#cache.peek(id) && !this.#loading.has(id);
    });
    if (fresh.length < this.#workerBatchMin) return { items, described };
    for (let start = 0; start < fresh.length; start += DESCRIBE_CHUNK) {
      const chunk = fresh.slice(start, start + DESCRIBE_CHUNK);
      const results = this.#describer.describe(chunk.map(({ url, data }) => ({ id: documentIdOf(url), data }))).catch((error: unknown) => {
        this.#logger.warn({ err: error }, "documents could not be described in a worker; described here instead");
        return chunk.map(() => null);
      });
      chunk.forEach(({ url }, i) => described.set(url, results.then((all) => all[i] ?? null)));
    }
    return { items, described };
  }

  /** Stores a batch of documents a peer sent whole, as `receive` would one by one (see `prepareWhole`). */
  async receiveWhole(batch: WholeBatch, admit?: AdmitChanges): Promise<ReceiveResult[]> {
    this.#assertOpen();
    return Promise.all(
      batch.items.map(({ url, data }) => {
        const described = batch.described.get(url);
        return described ? described.then((d) => this.#receiveDescribed(url, data, d, admit)) : this.receive(url, data, admit);
      }),
    );
  }

  /** The index record of a document (no document is loaded), or undefined if it is not stored. */
  async record(url: DocUrl): Promise<DocRecord | undefined> {
    return this.#record(documentIdOf(url));
  }

  /**
   * The next Automerge sync message for a peer whose sync state is `state`, or null when there
   * is nothing to say, and whether the peer has changes this store lacks (`behind`). A
   * document this store does not have yields a request (a message from an empty document).
   */
  async generateSyncMessage(url: DocUrl, state: A.SyncState): Promise<{ state: A.SyncState; message: Uint8Array | null; behind: boolean }> {
    this.#assertOpen();
    return this.#withCurrent(documentIdOf(url), (live) => {
      const doc = live?.doc ?? A.init();
      const [next, message] = A.generateSyncMessage(doc, state);
      // Whether the peer, as it last said, has changes this store lacks.
      const behind = !A.hasHeads(doc, next.theirHeads ?? []);
      if (!live) A.free(doc);
      return { state: next, message, behind };
    });
  }

  /**
   * Applies a peer's sync message. When it carries changes, `admit` sees the record the
   * document would have and may refuse it: then nothing is stored or announced and the
   * sync state stays as it was. Bytes Automerge cannot read are refused with an error.
   */
  async receiveSyncMessage(url: DocUrl, state: A.SyncState, message: Uint8Array, admit: AdmitChanges = () => true, carriesChanges = true): Promise<SyncReceipt> {
    this.#assertOpen();
    const id = documentIdOf(url);
    let receipt: SyncReceipt = { state, status: "unchanged" };
    // The live copy an admitted change replaces; freed once the new state is staged.
    let replaced: A.Doc<unknown> | undefined;
    const stored = await this.#storage.record(id);
    // What `admit` judged is what gets stored: describing a document twice costs as much as loading it.
    const staging: MutateOptions = { stored };
    let record: DocRecord | null;
    try {
      record = await this.#mutate(id, "remote", staging, (live) => {
        const base = live?.doc ?? A.init();
        const previous = this.#knownRecord(id) ?? stored;
        if (!carriesChanges) {
          // Heads and bloom filters only: nothing to judge, and nothing to try on a copy.
          let next: A.Doc<unknown>;
          try {
            [next, receipt.state] = A.receiveSyncMessage(base, state, message);
          } catch (cause) {
            if (live) this.#cache.delete(id);
            else A.free(base);
            throw new OrdoError("ORDO_BAD_CHANGES", `a sync message for ${url} could not be read`, { cause });
          }
          if (live) this.#cache.set(id, { ...live, doc: next });
          else A.free(next);
          return null;
        }
        // Changes are tried on a copy, so a refused message leaves the live document untouched.
        const candidate = A.clone(base);
        const discard = (doc: A.Doc<unknown>) => {
          A.free(doc);
          if (!live) A.free(base);
          return null;
        };
        let next: A.Doc<unknown>;
        try {
          [next, receipt.state] = A.receiveSyncMessage(candidate, state, message);
        } catch (cause) {
          discard(candidate);
          throw new OrdoError("ORDO_BAD_CHANGES", `a sync message for ${url} could not be read`, { cause });
        }
        const queued = this.#queuedAdmits.get(id);
        if (headsKey(next) === headsKey(base)) {
          // Nothing new applies. Changes waiting for one they depend on (Automerge's queue) are
          // kept with the live copy, as Automerge keeps them, since the sender counts them as
          // sent; whoever queued them must also accept the result they lead to. A store that
          // had none of the document cannot have made a peer skip a change, so it keeps none.
          if (A.getMissingDeps(next, []).length === 0 || !live || !previous) return discard(next);
          this.#queuedAdmits.set(id, queued ? (n, p) => queued(n, p) && admit(n, p) : admit);
          this.#cache.set(id, { ...live, doc: next });
          A.free(base);
          return null;
        }
        const described = this.#describe(id, next, previous);
        if (!admit(described, previous) || (queued !== undefined && !queued(described, previous))) {
          receipt = { state, status: "refused" };
          if (queued) {
            // The queue led somewhere its sender may not go: drop it with the live copy.
            this.#queuedAdmits.delete(id);
            this.#cache.delete(id);
          }
          return discard(next);
        }
        if (A.getMissingDeps(next, []).length === 0) this.#queuedAdmits.delete(id);
        replaced = base;
        staging.described = described;
        return next;
      });
    } finally {
      if (replaced) A.free(replaced);
    }
    if (record) receipt.status = record.status === "invalid" ? "quarantined" : "applied";
    return receipt;
  }

  // ---- durability ------------------------------------------------------------------------

  /** Resolves once every write so far is committed (survives a crash of this process). */
  async flush(): Promise<void> {
    await this.#writes.flush();
  }

  /** Resolves once every write so far survives a power loss: committed and synced to disk. */
  async durable(): Promise<void> {
    await this.flush();
    await this.#storage.sync();
  }

  /** Writes what is pending and releases every document. The storage is the caller's to close. */
  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      this.#compaction.runNow();
      await this.flush();
    } finally {
      this.#closed = true;
      this.#compaction.stop();
      this.#writes.stop();
      this.#cache.clear();
      await this.#describer.close();
    }
  }

  // ---- internals -------------------------------------------------------------------------

  #assertOpen(): void {
    if (this.#closed) throw new OrdoError("ORDO_CLOSED", "the document store is closed");
  }

  async #record(id: DocumentId): Promise<DocRecord | undefined> {
    return this.#knownRecord(id) ?? (await this.#storage.record(id));
  }

  /** The newest record written or being written by this store, if it has one in memory. */
  /** Neither stored, nor being written, nor live here. */
  async #isUnknown(id: DocumentId): Promise<boolean> {
    return !this.#knownRecord(id) && !this.#cache.peek(id) && !this.#loading.has(id) && !(await this.#storage.record(id));
  }

  /**
   * Stores a new document from its bytes and the record a worker described, without loading
   * it here. Anything else (it became known meanwhile, or the worker could not describe it)
   * takes `receive`.
   */
  async #receiveDescribed(url: DocUrl, data: Uint8Array, described: Described | null, admit: AdmitChanges | undefined): Promise<ReceiveResult> {
    const id = documentIdOf(url);
    if (!described || !(await this.#isUnknown(id))) return this.receive(url, data, admit);
    const record: DocRecord = { ...described.record, updatedAt: isoNow(this.#clock) };
    if (admit && !admit(record, undefined)) return { status: "refused", heads: "" };
    this.#describedInWorker++;
    this.#writes.pending.save.push({ key: snapshotKey(id, described.heads), data });
    this.#writes.pending.records.set(id, record);
    if (record.status === "ok" && record.kind !== CATALOG_KIND) this.#placeInCatalog(id, record, undefined);
    this.#announce(record, "remote", null);
    await this.#writes.schedule();
    return { status: record.status === "invalid" ? "quarantined" : "applied", heads: record.heads };
  }

  #knownRecord(id: DocumentId): DocRecord | undefined {
    return this.#writes.record(id) ?? this.#records.get(id);
  }

  async #requireEntity(id: DocumentId, url: DocUrl): Promise<void> {
    const record = await this.#record(id);
    if (!record || !isKind(record.kind) || record.status !== "ok") throw new OrdoError("ORDO_NOT_FOUND", `no document ${url}`);
  }

  /**
   * Reads a live document synchronously once it is loaded. Only this way: a document held
   * across an `await` may be evicted and freed by another caller meanwhile.
   */
  async #read<T>(id: DocumentId, read: (doc: A.Doc<unknown>) => T): Promise<T | undefined> {
    return this.#withCurrent(id, (live) => (live ? read(live.doc) : undefined));
  }

  /**
   * Brings a document into the cache, loading it once even when many callers ask at the same
   * time. Resolves with whether it exists; by then it may already be evicted again, so callers
   * go through #withCurrent.
   */
  async #bringIn(id: DocumentId): Promise<boolean> {
    if (this.#cache.get(id)) return true;
    let loading = this.#loading.get(id);
    if (!loading) {
      loading = this.#load(id).finally(() => this.#loading.delete(id));
      this.#loading.set(id, loading);
    }
    return (await loading) !== undefined;
  }

  async #load(id: DocumentId): Promise<LiveDoc | undefined> {
    // Chunks not yet committed count too: the document may have been evicted before its commit.
    const loaded = loadFromChunks(this.#writes.withQueued(id, await this.#storage.loadRange([id])));
    if (!loaded) return undefined;
    if (loaded.unreadable.length > 0) {
      this.#logger.warn({ doc: id, chunks: loaded.unreadable.length }, "chunks could not be read; the document keeps them and is not compacted");
    }
    if (this.#cache.peek(id)) {
      A.free(loaded.live.doc);
      return this.#cache.peek(id);
    }
    this.#cache.set(id, loaded.live);
    await this.#reconcileRecord(id, loaded.live.doc);
    return loaded.live;
  }

  /**
   * A document that loads to other heads than its record says lost chunks (they were set
   * aside as damaged): the record and its view follow the document as it now is, so reads
   * and the projection show what the store can actually build on, until a peer heals it.
   */
  async #reconcileRecord(id: DocumentId, doc: A.Doc<unknown>): Promise<void> {
    const heads = headsKey(doc);
    const record = await this.#record(id);
    // Only while `doc` is still the live copy: after the await it may have been replaced or freed.
    if (!record || record.heads === heads || this.#cache.peek(id)?.doc !== doc) return;
    const next = this.#describe(id, doc, record);
    this.#writes.pending.records.set(id, next);
    this.#announce(next, "local", record.heads);
    void this.#writes.schedule().catch(() => undefined);
  }

  /**
   * The one way a document changes. `compute` gets the newest live copy (undefined if the
   * document does not exist) and returns the next state, or null for no change; it runs
   * synchronously together with queueing the write and updating the cache, so concurrent
   * writers to one document never work from a copy another has already replaced.
   * Resolves with the new state once it is committed; `doc-changed` is emitted then.
   */
  async #mutate(id: DocumentId, origin: DocChange["origin"], options: MutateOptions, compute: (live: LiveDoc | undefined) => A.Doc<unknown> | null): Promise<DocRecord | null> {
    const stored = "stored" in options ? options.stored : await this.#storage.record(id);
    const staged = await this.#withCurrent(id, (current) => {
      const next = compute(current);
      if (!next) return null;
      // A new document loaded from a peer's bytes is stored as those bytes: no second save.
      const before = current ? headsKey(current.doc) : null;
      const { record, previous } = this.#stage(id, current, next, stored, current ? undefined : options.saved, options.described);
      if (record.status === "ok" && record.kind !== CATALOG_KIND) this.#placeInCatalog(id, record, previous);
      this.#announce(record, origin, before ?? previous?.heads ?? null);
      return record;
    });
    if (!staged) return null;
    // If this commit fails, the write and its announcement stay queued and land with a retry.
    await this.#writes.schedule();
    if (options.durable) await this.#storage.sync();
    return staged;
  }

  /** Queues the events of a staged record: they are emitted when its batch commits, never before. */
  #announce(record: DocRecord, origin: DocChange["origin"], previousHeads: string | null): void {
    const url = docUrlOf(record.id);
    this.#writes.pending.notify.push(() => {
      if (record.status === "invalid") this.emit("doc-invalid", { url, errors: (record.problem ?? "").split("; ") });
      this.emit("doc-changed", { url, kind: record.kind, heads: record.heads, previousHeads, origin, deleted: record.deleted });
    });
  }

  /**
   * Runs `work` synchronously on the newest live copy of a document (undefined if it does not
   * exist). Everything that touches a live document goes through here: a copy held across an
   * `await` may meanwhile be replaced by another writer, or evicted and freed.
   */
  async #withCurrent<T>(id: DocumentId, work: (live: LiveDoc | undefined) => T): Promise<T> {
    // Pinned while it loads, so other callers' loads cannot evict it before `work` runs.
    this.#cache.pin(id);
    try {
      for (;;) {
        const exists = (await this.#bringIn(id)) || this.#cache.peek(id) !== undefined;
        const live = this.#cache.peek(id);
        // Dropped between loading and now (a refused or unreadable change): load again.
        if (live || !exists) return work(live);
      }
    } finally {
      this.#cache.unpin(id);
    }
  }

  /** Queues a new state: its chunks, its cache entry and its record. Synchronous. */
  #stage(id: DocumentId, current: LiveDoc | undefined, next: A.Doc<unknown>, stored: DocRecord | undefined, saved?: Uint8Array, described?: DocRecord): { record: DocRecord; previous: DocRecord | undefined } {
    const previous = this.#knownRecord(id) ?? stored;
    this.#cache.set(id, this.#persist(id, current, next, saved));
    const record = described ?? this.#describe(id, next, previous);
    this.#writes.pending.records.set(id, record);
    return { record, previous };
  }

  /**
   * Queues the chunk writes for a new state: its changes as an incremental chunk, or a whole
   * snapshot for a new document. When incrementals pile up the document is compacted in the
   * next quiet moment (`CompactionSchedule`), or right here if they have piled far too high.
   */
  #persist(id: DocumentId, live: LiveDoc | undefined, next: A.Doc<unknown>, saved?: Uint8Array): LiveDoc {
    if (!live || live.chunkKeys.length === 0 || mustCompact(live)) return this.#stageSnapshot(id, live, next, !live ? saved : undefined);
    const data = A.saveSince(next, A.getHeads(live.doc));
    const key = incrementalKey(id, data);
    this.#writes.pending.save.push({ key, data });
    const after = { ...live, doc: next, chunkKeys: [...live.chunkKeys, key], incrementalBytes: live.incrementalBytes + data.byteLength };
    if (shouldCompact(after)) this.#compaction.due(id);
    else this.#compaction.wrote();
    return after;
  }

  /** Queues `doc` as one snapshot replacing every chunk of the live copy. */
  #stageSnapshot(id: DocumentId, live: LiveDoc | undefined, doc: A.Doc<unknown>, saved?: Uint8Array): LiveDoc {
    const data = saved ?? A.save(doc);
    const key = snapshotKey(id, A.getHeads(doc));
    this.#writes.pending.save.push({ key, data });
    for (const old of live?.chunkKeys ?? []) if (old.join("/") !== key.join("/")) this.#writes.pending.remove.push(old);
    return { doc, chunkKeys: [key], snapshotBytes: data.byteLength, incrementalBytes: 0, degraded: live?.degraded ?? false };
  }

  /** Compacts the due documents still in memory; one evicted meanwhile waits for its next change. */
  #compactNow(ids: readonly DocumentId[]): void {
    if (this.#closed) return;
    let staged = false;
    for (const id of ids) {
      const live = this.#cache.peek(id);
      if (!live || !shouldCompact(live)) continue;
      this.#cache.set(id, this.#stageSnapshot(id, live, live.doc));
      staged = true;
    }
    if (staged) void this.#writes.schedule().catch(() => undefined);
  }

  #describe(id: DocumentId, doc: A.Doc<unknown>, previous: DocRecord | undefined, since?: ChangesSince): DocRecord {
    return describeDocument(id, doc, previous, isoNow(this.#clock), since);
  }

  /**
   * Discards a state `compute` made but will not stage. When it grew from the live copy it
   * shares that copy's Automerge state, so the live copy goes too: the next reader loads the
   * document again from storage and the writes still queued.
   */
  #drop(id: DocumentId, live: LiveDoc | undefined, next: A.Doc<unknown>): void {
    if (!live) return A.free(next);
    this.#cache.set(id, { ...live, doc: next });
    this.#cache.delete(id);
  }


  /** Records a document in its course's catalog partition, moving it when its audience changed. */
  #placeInCatalog(id: DocumentId, record: DocRecord, previous: DocRecord | undefined): void {
    const put: CatalogEdit = { op: "put", id, kind: record.kind, deleted: record.deleted };
    if (record.kind === "enrollment") this.#placeUserOf(entityOf<"enrollment">(record));
    if (record.course === null) return;
    this.#editCatalog(record.course, record.audience as Audience, put);
    if (previous && previous.status === "ok" && previous.course === record.course && previous.audience !== record.audience) {
      this.#editCatalog(record.course, previous.audience as Audience, { op: "drop", id });
    }
  }

  /** Users belong to no one course: an enrollment lists its user in the course partition. */
  #placeUserOf(entity: Entity<"enrollment">): void {
    if (entity.user && entity.course) {
      this.#editCatalog(entity.course, "course", { op: "put", id: documentIdOf(entity.user), kind: "user", deleted: false });
    }
  }

  #editCatalog(course: DocUrl, audience: Audience, edit: CatalogEdit): void {
    if (!this.#maintainsCatalog(course, audience)) return;
    const partition = catalogUrl(course, audience);
    const pending = this.#catalogEdits.get(partition) ?? { course, audience, edits: [] };
    pending.edits.push(edit);
    this.#catalogEdits.set(partition, pending);
  }

  #afterCommit(batch: WriteBatch): void {
    for (const [id, record] of batch.records) this.#records.set(id, record);
    // The in-memory records only bridge to the storage index; keep them as bounded as the documents.
    if (this.#records.size > this.#cache.capacity) this.#records.clear();
  }

  /**
   * Applies the catalog edits gathered during this tick: one change per partition, however
   * many documents moved. A partition's edits leave the queue only when they are staged, so a
   * failure part way keeps the rest for the retry.
   */
  async #applyCatalogEdits(): Promise<void> {
    for (const partition of [...this.#catalogEdits.keys()]) {
      const id = documentIdOf(partition);
      const stored = await this.#storage.record(id);
      // Through #withCurrent, like #mutate: a peer's copy of this partition may arrive concurrently.
      await this.#withCurrent(id, (current) => {
        const pending = this.#catalogEdits.get(partition);
        if (!pending) return;
        this.#catalogEdits.delete(partition);
        // A partition that arrived from a peer usually names its documents already: no change to make.
        if (current && !catalogEditsChangeAnything(current.doc, pending.edits)) return;
        const before = current ? headsKey(current.doc) : "";
        const next = A.change((current?.doc ?? A.from(initialCatalog(pending.course, pending.audience))) as A.Doc<Record<string, unknown>>, (draft) =>
          applyCatalogEdits(draft, pending.edits),
        );
        if (headsKey(next) === before) {
          if (current) this.#cache.set(id, { ...current, doc: next });
          return;
        }
        this.#announce(this.#stage(id, current, next, stored).record, "local", current ? before : null);
      });
    }
  }
}

interface PartitionEdits {
  course: DocUrl;
  audience: Audience;
  edits: CatalogEdit[];
}

/** The entity a freshly written record describes (every valid entity's record carries its view). */
function entityOf<K extends Kind>(record: DocRecord | null): Entity<K> {
  if (!record?.view) throw new OrdoError("ORDO_INTERNAL", "a written entity has no view");
  return (JSON.parse(record.view) as DocView).entity as Entity<K>;
}

/**
 * What changes applied to a document at `heads` touched, with the conflicts it had there, if
 * one of the records at hand describes exactly that state (listings carry no view).
 */
function changesSince(heads: string, touched: ReadonlySet<string>, ...records: Array<DocRecord | undefined>): ChangesSince | undefined {
  const record = records.find((candidate) => candidate?.heads === heads && candidate.view);
  return record ? { conflicts: (JSON.parse(record.view!) as DocView).conflicts, touched } : undefined;
}
