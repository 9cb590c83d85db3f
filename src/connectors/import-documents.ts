import { isDeepStrictEqual } from "node:util";
import type { DocStore } from "../crdt/doc-store.js";
import type { DocUrl, ExternalIdentity } from "../crdt/ids.js";
import type { Entity } from "../crdt/schema/document.js";
import type { Kind } from "../crdt/schema/kinds.js";

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

/**
 * Creates the document for a remote object, or brings an existing one up to date, writing
 * only the fields that differ: an unchanged object writes nothing, so re-pulling a course
 * whose objects did not change costs no change on any peer.
 */
export async function importDocument(store: DocStore, incoming: IncomingDocument): Promise<ImportOutcome> {
  const existing = await store.find(incoming.url, { includeDeleted: true });
  if (!existing) {
    await store.create(incoming.kind, incoming.fields as never, { identity: incoming.identity });
    return "created";
  }
  const changed = changedFields(existing, incoming.fields);
  const external = (incoming.fields.external ?? {}) as Record<string, string>;
  const newIds = Object.entries(external).filter(([system, id]) => (existing.external as Record<string, string | undefined>)[system] !== id);
  if (changed.length === 0 && newIds.length === 0) return "unchanged";
  await store.change(incoming.url, (draft) => {
    const target = draft as unknown as Record<string, unknown>;
    for (const field of changed) target[field] = incoming.fields[field];
    for (const [system, id] of newIds) (draft.external as Record<string, string>)[system] = id;
  });
  return "updated";
}

function changedFields(existing: Entity, incoming: Record<string, unknown>): string[] {
  const current = existing as unknown as Record<string, unknown>;
  return Object.keys(incoming).filter((field) => !NOT_FIELDS.has(field) && incoming[field] !== undefined && !isDeepStrictEqual(current[field], incoming[field]));
}
