import { isDeepStrictEqual } from "node:util";
import type { Kysely } from "kysely";
import type { DocStore } from "../crdt/doc-store.js";
import type { DocUrl, ExternalIdentity } from "../crdt/ids.js";
import type { Entity } from "../crdt/schema/document.js";
import type { Kind } from "../crdt/schema/kinds.js";
import { systemClock, type Clock } from "../util/clock.js";
import type { ConnectorTables, RemoteSystem } from "./connector-tables.js";
import { toHtml, toMarkdown } from "./content-format.js";
import type { Outbox } from "./outbox.js";
import { reconcile, type FieldValues } from "./reconcile.js";
import { recordInSync } from "./remote-records.js";
import { readBase, recordConflicts, strategyFor } from "./sync-base.js";

/** One remote object, ready to become (or update) a document. */
export interface IncomingDocument<K extends Kind = Kind> {
  kind: K;
  identity: ExternalIdentity;
  url: DocUrl;
  fields: Record<string, unknown>;
}

export type ImportOutcome = "created" | "updated" | "unchanged";

/** Fields that say where a document belongs or what it is elsewhere, not what it holds. */
const NOT_FIELDS = new Set(["course", "external"]);

/** The form each system keeps prose in: Canvas HTML, Discourse markdown. */
const REMOTE_FORM: Record<RemoteSystem, (text: string) => string> = { canvas: toHtml, discourse: toMarkdown };

/** Fields holding prose: the merge strategies merge them word by word. */
export const TEXT_FIELDS: ReadonlySet<string> = new Set(["message", "description", "body"]);

/**
 * Creates the document for a remote object, or brings an existing one up to date, writing
 * only the fields that differ: an unchanged object writes nothing, so re-pulling a course
 * whose objects did not change costs no change on any peer. The remote object wins every
 * field: this is for objects only the system writes (users, enrollments, submissions).
 */
export async function importDocument(store: DocStore, incoming: IncomingDocument): Promise<ImportOutcome> {
  const existing = await store.find(incoming.url, { includeDeleted: true });
  if (!existing) {
    await store.create(incoming.kind, incoming.fields as never, { identity: incoming.identity });
    return "created";
  }
  return writeFields(store, existing, incoming, changedFields(existing, incoming.fields));
}

export interface RemoteObject<K extends Kind = Kind> extends IncomingDocument<K> {
  system: RemoteSystem;
  /** The remote type and id, as in `remote_ids`. */
  type: string;
  remoteId: string;
  remoteVersion: string | null;
  /** When the remote object last changed, for the `prefer_recent` strategy. */
  remoteTime?: string | null;
}

export interface ImportContext {
  store: DocStore;
  db: Kysely<ConnectorTables>;
  /** Where a document that must also change remotely is queued. */
  outbox: Outbox;
  clock?: Clock;
}

/**
 * Brings a document and a remote object both systems may edit into step: what changed only
 * remotely is written here, what changed only here is queued for the system, and what changed
 * on both sides is settled by the course's strategy for the kind (see reconcile.ts), the
 * conflict recorded. The bases recorded with it make the next pull of an unchanged object a
 * no-op, whatever the system did to the form of what it was sent.
 */
export async function importRemote(context: ImportContext, object: RemoteObject): Promise<ImportOutcome> {
  const { store, db } = context;
  const clock = context.clock ?? systemClock;
  const record = (base: { local: FieldValues; remote: FieldValues }) =>
    recordInSync(db, store, { system: object.system, type: object.type, remoteId: object.remoteId, url: object.url, remoteVersion: object.remoteVersion, base }, clock);
  const existing = await store.find(object.url, { includeDeleted: true });
  const remote = syncedFields(object.fields);
  if (!existing) {
    await store.create(object.kind, object.fields as never, { identity: object.identity });
    await record({ local: remote, remote });
    return "created";
  }
  const local = pick(existing, Object.keys(remote));
  const strategy = await strategyFor(db, existing.course, object.kind);
  const outcome = reconcile({ system: object.system, base: await readBase(db, object.url, object.system), local, remote, strategy, localTime: existing.updatedAt, remoteTime: object.remoteTime ?? null, textFields: TEXT_FIELDS, remoteForm: REMOTE_FORM[object.system] });
  await recordConflicts(db, object.url, object.system, strategy, outcome.conflicts, clock);
  const written = await writeFields(store, existing, object, Object.keys(outcome.toLocal), outcome.toLocal);
  await record(outcome.nextBase);
  if (Object.keys(outcome.toRemote).length > 0 && !existing.tombstone) await context.outbox.enqueue(object.system, object.url, "update");
  return written;
}

/** The fields of a remote object's document that mirror the remote object. */
export function syncedFields(fields: Record<string, unknown>): FieldValues {
  return Object.fromEntries(Object.entries(fields).filter(([field, value]) => !NOT_FIELDS.has(field) && value !== undefined));
}

/** A document's values for the given fields. */
export function pick(entity: Entity, fields: readonly string[]): FieldValues {
  const values = entity as unknown as Record<string, unknown>;
  return Object.fromEntries(fields.map((field) => [field, values[field]]));
}

async function writeFields(store: DocStore, existing: Entity, incoming: IncomingDocument, changed: readonly string[], values: Record<string, unknown> = incoming.fields): Promise<ImportOutcome> {
  const external = (incoming.fields.external ?? {}) as Record<string, string>;
  const newIds = Object.entries(external).filter(([system, id]) => (existing.external as Record<string, string | undefined>)[system] !== id);
  if (changed.length === 0 && newIds.length === 0) return "unchanged";
  await store.change(existing.url, (draft) => {
    const target = draft as unknown as Record<string, unknown>;
    for (const field of changed) target[field] = values[field];
    for (const [system, id] of newIds) (draft.external as Record<string, string>)[system] = id;
  });
  return "updated";
}

function changedFields(existing: Entity, incoming: Record<string, unknown>): string[] {
  const current = existing as unknown as Record<string, unknown>;
  return Object.keys(incoming).filter((field) => !NOT_FIELDS.has(field) && incoming[field] !== undefined && !isDeepStrictEqual(current[field], incoming[field]));
}
