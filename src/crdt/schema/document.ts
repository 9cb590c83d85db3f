import * as A from "@automerge/automerge";
import { OrdoError } from "../../util/errors.js";
import { isDocUrl, type DocUrl } from "../ids.js";
import { toPlain, type FieldSpec } from "./fields.js";
import { isKind, KIND_FIELDS, REQUIRED_FIELDS, SCHEMA_VERSIONS, type Fields, type Kind } from "./kinds.js";

/** Ids an entity has in other systems. */
export interface ExternalIds {
  canvas?: string;
  discourse?: string;
}

/** A deletion that syncs: once set, the entity stays deleted on every peer. */
export interface Tombstone {
  at: string;
  by: DocUrl | null;
}

/** What every document carries, whatever its kind. */
export interface Envelope<K extends Kind = Kind> {
  kind: K;
  schemaVersion: number;
  /** The course the document belongs to; null for users, who belong to many. */
  course: DocUrl | null;
  createdAt: string;
  updatedAt: string;
  external: ExternalIds;
  tombstone: Tombstone | null;
}

/** A document as apps read it: plain values, its URL, its envelope and its fields. */
export type Entity<K extends Kind = Kind> = { url: DocUrl } & Envelope<K> & Fields<K>;

/** The fields a change function may set; envelope fields are the store's to keep. */
export type Draft<K extends Kind> = Fields<K> & { external: ExternalIds };

const ENVELOPE_KEYS = new Set(["kind", "schemaVersion", "course", "createdAt", "updatedAt", "deletedAt", "deletedBy"]);

function fieldSpecs(kind: Kind): Record<string, FieldSpec<unknown>> {
  return KIND_FIELDS[kind] as Record<string, FieldSpec<unknown>>;
}

type Root = Record<string, unknown>;

/** The document to start an entity with; only the fields given are written, so that two
 * independent imports of one entity merge without one's defaults overwriting the other's values. */
export function initialRoot<K extends Kind>(
  kind: K,
  course: DocUrl | null,
  fields: Partial<Fields<K>>,
  now: string,
  external: ExternalIds = {},
): Root {
  const specs = fieldSpecs(kind);
  const root: Root = {
    kind: new A.ImmutableString(kind),
    schemaVersion: SCHEMA_VERSIONS[kind],
    course: course === null ? null : new A.ImmutableString(course),
    createdAt: new A.ImmutableString(now),
    updatedAt: new A.ImmutableString(now),
  };
  setExternal(root, external);
  for (const [key, value] of Object.entries(fields)) {
    const spec = specs[key];
    if (!spec) throw new SchemaError(`${kind} has no field ${key}`);
    if (value !== undefined) root[key] = spec.store(value);
  }
  return root;
}

/**
 * External ids and the tombstone live in top-level scalar keys, never in nested maps: two
 * peers that create the same entity offline would each create their own nested map, and
 * Automerge keeps only one of two concurrent maps. Top-level keys merge one by one.
 * Nobody ever writes `deletedAt: null`, so no concurrent write can undo a deletion.
 */
const EXTERNAL_KEYS = { canvas: "canvasId", discourse: "discourseId" } as const;

function setExternal(root: Root, external: ExternalIds): void {
  for (const [system, key] of Object.entries(EXTERNAL_KEYS)) {
    const id = external[system as keyof ExternalIds];
    if (typeof id === "string" && unwrap(root[key]) !== id) root[key] = new A.ImmutableString(id);
  }
}

function readExternal(root: Root): ExternalIds {
  const out: ExternalIds = {};
  for (const [system, key] of Object.entries(EXTERNAL_KEYS)) {
    const id = unwrap(root[key]);
    if (typeof id === "string") out[system as keyof ExternalIds] = id;
  }
  return out;
}

/** Thrown when a document or a change does not fit its kind's schema. */
export class SchemaError extends OrdoError {
  constructor(
    message: string,
    readonly errors: readonly string[] = [message],
  ) {
    super("ORDO_SCHEMA", message);
    this.name = "SchemaError";
  }
}

export type Validation = { ok: true; kind: Kind } | { ok: false; errors: string[] };

/** Checks a document from anywhere (a peer, the disk, a local change) against its kind's schema. */
export function validateDocument(doc: unknown): Validation {
  if (doc === null || typeof doc !== "object") return { ok: false, errors: ["not an object"] };
  const root = doc as Root;
  const kind = unwrap(root.kind);
  if (!isKind(kind)) return { ok: false, errors: [`unknown kind ${JSON.stringify(kind)}`] };
  const errors: string[] = [];
  const version = root.schemaVersion;
  if (typeof version !== "number" || !Number.isInteger(version) || version < 1) errors.push("schemaVersion: expected a positive integer");
  else if (version > SCHEMA_VERSIONS[kind]) errors.push(`schemaVersion: ${version} is newer than this node understands (${SCHEMA_VERSIONS[kind]})`);
  const course = unwrap(root.course);
  if (!(course === null || isDocUrl(course))) errors.push("course: expected a document URL or null");
  for (const key of ["createdAt", "updatedAt"]) {
    const value = unwrap(root[key]);
    if (typeof value !== "string" || Number.isNaN(Date.parse(value))) errors.push(`${key}: expected an ISO-8601 time`);
  }
  for (const key of [...Object.values(EXTERNAL_KEYS), "deletedAt", "deletedBy"]) {
    const value = unwrap(root[key]);
    if (value !== undefined && value !== null && typeof value !== "string") errors.push(`${key}: expected a string`);
  }
  for (const [key, spec] of Object.entries(fieldSpecs(kind))) {
    const problem = spec.check(root[key]);
    if (problem) errors.push(`${key}: ${problem}`);
  }
  for (const key of REQUIRED_FIELDS[kind] as readonly string[]) {
    if (root[key] === undefined || root[key] === null) errors.push(`${key}: required`);
  }
  return errors.length === 0 ? { ok: true, kind } : { ok: false, errors };
}

function unwrap(value: unknown): unknown {
  return value instanceof A.ImmutableString ? value.val : value;
}

/** Reads a validated document into a plain entity, filling defaults for fields nobody set. */
export function readEntity<K extends Kind>(url: DocUrl, doc: unknown): Entity<K> {
  const root = doc as Root;
  const kind = unwrap(root.kind) as K;
  const entity: Root = {
    url,
    kind,
    schemaVersion: root.schemaVersion,
    course: unwrap(root.course) ?? null,
    createdAt: unwrap(root.createdAt),
    updatedAt: unwrap(root.updatedAt),
    external: readExternal(root),
    tombstone: readTombstone(root),
  };
  for (const [key, spec] of Object.entries(fieldSpecs(kind))) entity[key] = spec.read(root[key]);
  return entity as Entity<K>;
}

export function readTombstone(root: Root): Tombstone | null {
  const at = unwrap(root.deletedAt);
  if (typeof at !== "string") return null;
  const by = unwrap(root.deletedBy);
  return { at, by: typeof by === "string" ? (by as DocUrl) : null };
}

/**
 * A typed view of an Automerge change proxy: strings read as strings, assigning a text
 * field diffs it into the existing text (so concurrent edits merge character by
 * character), and other strings are stored immutable. Envelope fields are read-only.
 */
export function draftOf<K extends Kind>(kind: K, proxy: A.Doc<Root>): Draft<K> {
  const specs = fieldSpecs(kind);
  return new Proxy(proxy as Root, {
    get(target, key) {
      if (key === "external") return externalDraft(target);
      return typeof key === "string" ? unwrap(Reflect.get(target, key)) : undefined;
    },
    set(target, key, value) {
      if (typeof key !== "string") return false;
      if (value === undefined) throw new SchemaError(`${key} cannot be set to undefined; use null`);
      if (ENVELOPE_KEYS.has(key)) throw new SchemaError(`${key} is kept by the store and cannot be set in a change`);
      const spec = specs[key];
      if (key === "external") {
        setExternal(target, value as ExternalIds);
      } else if (!spec) {
        throw new SchemaError(`${kind} has no field ${key}`);
      } else if (spec.text && typeof value === "string") {
        if (typeof target[key] === "string") A.updateText(proxy, [key], value);
        else target[key] = value;
      } else {
        target[key] = spec.store(value);
      }
      return true;
    },
    deleteProperty(_target, key) {
      throw new SchemaError(`fields cannot be deleted (${String(key)}); set them to null or delete the document`);
    },
  }) as unknown as Draft<K>;
}

/** `draft.external`, whose keys write through to the document's top-level id keys. */
function externalDraft(root: Root): ExternalIds {
  return new Proxy(readExternal(root), {
    set(ids, system, id) {
      if (!(system in EXTERNAL_KEYS)) throw new SchemaError(`unknown external system ${String(system)}`);
      if (typeof id !== "string") throw new SchemaError(`an external id is a string`);
      setExternal(root, { [system]: id });
      return Reflect.set(ids, system, id);
    },
  });
}

/** Stamps the envelope after a change. */
export function touch(proxy: Root, now: string): void {
  proxy.updatedAt = new A.ImmutableString(now);
}

export function markDeleted(proxy: Root, tombstone: Tombstone): void {
  proxy.deletedAt = new A.ImmutableString(tombstone.at);
  if (tombstone.by !== null) proxy.deletedBy = new A.ImmutableString(tombstone.by);
}

/** The concurrent values Automerge holds for each top-level field, where there is more than one.
 * Keys are Automerge's op ids, sorted, so every peer lists them in the same order. */
export function fieldConflicts(doc: A.Doc<unknown>): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  // One writer cannot conflict with itself; asking costs far less than probing every field.
  if (A.stats(doc).numActors <= 1) return out;
  for (const key of Object.keys(doc as object).sort()) {
    const values = conflictingValues(doc, key);
    if (values) out[key] = values;
  }
  return out;
}

/**
 * `fieldConflicts` after a peer's changes, probing only the fields their patches touched and
 * those conflicted before: a field becomes conflicted only where an operation lands, and
 * Automerge reports a concurrent write that loses there (a `conflict` patch), but not one
 * that loses where values already conflict. Same result as `fieldConflicts(doc)`, for a
 * fraction of the probes. Not for local changes: their patches omit a write that leaves a
 * value as it was, even one that ends a conflict.
 */
export function fieldConflictsAfter(doc: A.Doc<unknown>, before: Readonly<Record<string, unknown[]>>, touched: ReadonlySet<string>): Record<string, unknown[]> {
  // A patch at the root itself (never seen for a map root) leaves nothing to go by.
  if (touched.has(WHOLE_DOCUMENT)) return fieldConflicts(doc);
  const out: Record<string, unknown[]> = {};
  if (A.stats(doc).numActors <= 1) return out;
  for (const key of [...new Set([...Object.keys(before), ...touched])].sort()) {
    const values = conflictingValues(doc, key);
    if (values) out[key] = values;
  }
  return out;
}

const WHOLE_DOCUMENT = "";

/** The top-level fields patches touched, into `touched`. */
export function noteTouchedFields(patches: readonly A.Patch[], touched: Set<string>): void {
  for (const patch of patches) touched.add(patch.path.length > 0 ? String(patch.path[0]) : WHOLE_DOCUMENT);
}

function conflictingValues(doc: A.Doc<unknown>, key: string): unknown[] | undefined {
  const conflicts = A.getConflicts(doc, key);
  if (!conflicts) return undefined;
  const opIds = Object.keys(conflicts).sort();
  return opIds.length > 1 ? opIds.map((id) => toPlain(conflicts[id])) : undefined;
}
