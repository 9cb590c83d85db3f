import * as A from "@automerge/automerge";
import { hashedDocUrl, isDocUrl, type DocUrl, type DocumentId } from "./ids.js";
import type { Audience } from "./schema/audience.js";

/**
 * A course's catalog: the documents of a course by kind, itself replicated as Automerge
 * documents (automerge-repo cannot list documents, so peers learn what exists from this).
 *
 * It is split into partitions by audience (see `Audience`): one for the whole course, one
 * for staff, one per student. Each partition has a URL derived from (course, audience), so a
 * peer finds its partitions without a root document that would name everyone's.
 *
 * Entries are top-level scalar keys, never a nested map: two peers that start the same
 * partition offline each create their own nested map, and Automerge would keep only one of
 * them. Top-level keys of the root object merge key by key. `e:<id>` holds the kind;
 * `x:<id>` is set (only ever to true) once the document is deleted, so no concurrent write
 * can undo a deletion.
 */
export const CATALOG_KIND = "catalog";

const ENTRY = "e:";
const DELETED = "x:";

export interface CatalogEntry {
  id: DocumentId;
  kind: string;
  deleted: boolean;
}

/** Derived URLs of recent partitions: every stored document asks for its partition's. */
const partitionUrls = new Map<string, DocUrl>();
const PARTITION_URLS_KEPT = 10_000;

export function catalogUrl(course: DocUrl, audience: Audience): DocUrl {
  const key = `${course} ${audience}`;
  let url = partitionUrls.get(key);
  if (!url) {
    if (partitionUrls.size >= PARTITION_URLS_KEPT) partitionUrls.clear();
    url = hashedDocUrl("catalog", course, audience);
    partitionUrls.set(key, url);
  }
  return url;
}

/** One pending edit of a partition: record a document, or drop it (it moved to another partition). */
export type CatalogEdit =
  | { op: "put"; id: DocumentId; kind: string; deleted: boolean }
  | { op: "drop"; id: DocumentId };

export function initialCatalog(course: DocUrl, audience: Audience): Record<string, unknown> {
  return {
    kind: new A.ImmutableString(CATALOG_KIND),
    schemaVersion: 1,
    course: new A.ImmutableString(course),
    audience: new A.ImmutableString(audience),
  };
}

/**
 * Whether any of these edits would change the partition, read from the document without a
 * change. If none would on its own, applying them in order changes nothing either.
 */
export function catalogEditsChangeAnything(doc: unknown, edits: readonly CatalogEdit[]): boolean {
  const root = doc as Record<string, unknown>;
  return edits.some((edit) => {
    const listed = root[ENTRY + edit.id] !== undefined;
    return edit.op === "drop" ? listed : !listed || (edit.deleted && root[DELETED + edit.id] !== true);
  });
}

/** Applies edits inside a change; writes nothing where the entry already says the same, so re-imports stay quiet. */
export function applyCatalogEdits(draft: Record<string, unknown>, edits: readonly CatalogEdit[]): void {
  for (const edit of edits) {
    const entryKey = ENTRY + edit.id;
    if (edit.op === "drop") {
      if (entryKey in draft) delete draft[entryKey];
      continue;
    }
    if (!(entryKey in draft)) draft[entryKey] = new A.ImmutableString(edit.kind);
    if (edit.deleted && draft[DELETED + edit.id] !== true) draft[DELETED + edit.id] = true;
  }
}

/** A partition's entries in id order, skipping anything malformed a peer may have written. */
export function readCatalogEntries(doc: unknown): CatalogEntry[] {
  const root = doc as Record<string, unknown>;
  const out: CatalogEntry[] = [];
  for (const key of Object.keys(root).sort()) {
    if (!key.startsWith(ENTRY)) continue;
    const id = key.slice(ENTRY.length);
    const raw = root[key];
    const kind = raw instanceof A.ImmutableString ? raw.val : raw;
    if (typeof kind !== "string" || !isDocUrl(`automerge:${id}`)) continue;
    out.push({ id: id as DocumentId, kind, deleted: root[DELETED + id] === true });
  }
  return out;
}

export function validateCatalog(doc: unknown): string[] {
  const root = doc as Record<string, unknown>;
  const text = (v: unknown) => (v instanceof A.ImmutableString ? v.val : v);
  const errors: string[] = [];
  if (!isDocUrl(text(root.course))) errors.push("course: expected a document URL");
  const audience = text(root.audience);
  const student = typeof audience === "string" && audience.startsWith("student:") ? audience.slice("student:".length) : null;
  if (!(audience === "course" || audience === "staff" || isDocUrl(student))) errors.push("audience: expected course, staff or student:<user url>");
  return errors;
}

export function catalogInfo(doc: unknown): { course: DocUrl; audience: string } {
  const root = doc as Record<string, unknown>;
  const text = (v: unknown) => String(v instanceof A.ImmutableString ? v.val : v);
  return { course: text(root.course) as DocUrl, audience: text(root.audience) };
}
