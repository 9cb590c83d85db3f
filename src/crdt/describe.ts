import * as A from "@automerge/automerge";
import { CATALOG_KIND, catalogInfo, catalogUrl, validateCatalog } from "./catalog.js";
import { headsKey } from "./doc-chunks.js";
import type { DocRecord } from "./doc-storage.js";
import { docUrlOf, isDocUrl, type DocUrl, type DocumentId } from "./ids.js";
import { placementOf, type Audience } from "./schema/audience.js";
import { fieldConflicts, fieldConflictsAfter, readEntity, readTombstone, validateDocument } from "./schema/document.js";
import type { DocView } from "./snapshot.js";

/** What changed since a state whose conflicts are known: spares probing every field for conflicts. */
export interface ChangesSince {
  /** The document's conflicts before the changes (as its stored view had them). */
  conflicts: Readonly<Record<string, unknown[]>>;
  /** The top-level fields the changes' patches touched (`noteTouchedFields`). */
  touched: ReadonlySet<string>;
}

/**
 * A document's index record: what it is, where it belongs, who may see it, whether it fits its
 * schema, and its view (the projection's input). Pure, so a worker can describe documents too.
 */
export function describeDocument(id: DocumentId, doc: A.Doc<unknown>, previous: DocRecord | undefined, updatedAt: string, since?: ChangesSince): DocRecord {
  const url = docUrlOf(id);
  const root = doc as Record<string, unknown>;
  const heads = headsKey(doc);
  if (kindOf(doc) === CATALOG_KIND) {
    const errors = validateCatalog(doc);
    // A partition lives only at the URL its course and audience derive: anything else is a squatter.
    if (errors.length === 0 && catalogUrl(catalogInfo(doc).course, catalogInfo(doc).audience as Audience) !== url) errors.push("not at the URL of the partition it names");
    const info = errors.length === 0 ? catalogInfo(doc) : { course: previous?.course ?? null, audience: "staff" };
    return { id, kind: CATALOG_KIND, course: info.course, audience: info.audience, owner: null, heads, deleted: false, status: errors.length ? "invalid" : "ok", problem: errors.join("; ") || null, updatedAt };
  }
  const verdict = validateDocument(doc);
  if (!verdict.ok) {
    // Staff-only, in the course it names if it names one: its staff can still see it and heal it.
    return { id, kind: String(kindOf(doc) ?? previous?.kind ?? "unknown"), course: previous?.course ?? namedCourse(root), audience: previous?.audience ?? "staff", owner: previous?.owner ?? null, heads, deleted: previous?.deleted ?? false, status: "invalid", problem: verdict.errors.join("; "), updatedAt };
  }
  const entity = readEntity(url, doc);
  const placement = placementOf(entity);
  // The projection's input, kept with the record: projecting never needs to load the document.
  const conflicts = since ? fieldConflictsAfter(doc, since.conflicts, since.touched) : fieldConflicts(doc);
  const view = JSON.stringify({ entity, conflicts } satisfies DocView);
  return { id, kind: verdict.kind, course: entity.course, audience: placement.audience, owner: placement.owner, heads, deleted: readTombstone(root) !== null, status: "ok", problem: null, updatedAt, view };
}

/**
 * A document this store does not hold yet, from a peer's bytes. `A.load` builds the JS view
 * in one pass, without the patches `loadIncremental` computes and applies (a third cheaper);
 * it refuses changes whose dependencies are missing, which `loadIncremental` keeps queued.
 */
export function loadNew(data: Uint8Array): A.Doc<unknown> {
  try {
    return A.load(data);
  } catch {
    return A.loadIncremental(A.init(), data);
  }
}

/** The course a document says it belongs to, if that is a document URL. */
function namedCourse(root: Record<string, unknown>): DocUrl | null {
  const course = root.course instanceof A.ImmutableString ? root.course.val : root.course;
  return isDocUrl(course) ? course : null;
}

export function kindOf(doc: A.Doc<unknown>): string | undefined {
  const kind = (doc as Record<string, unknown>).kind;
  const value = kind instanceof A.ImmutableString ? kind.val : kind;
  return typeof value === "string" ? value : undefined;
}
