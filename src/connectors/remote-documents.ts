import type { CreateInput } from "../crdt/doc-store.js";
import { externalDocUrl, type DocUrl, type ExternalIdentity } from "../crdt/ids.js";
import type { ExternalIds } from "../crdt/schema/document.js";
import type { Kind } from "../crdt/schema/kinds.js";

/**
 * What every connector's mapping shares: a remote object's identity is (instance, type, id),
 * its document URL follows from that, and payload values are read defensively (a broken API
 * response gives empty values, never an exception).
 */

/** What the connector creates or merges for one remote object. */
export interface Imported<K extends Kind> {
  kind: K;
  identity: ExternalIdentity;
  url: DocUrl;
  fields: CreateInput<K>;
}

export function remoteIdentity(system: string, type: string, id: string | number): ExternalIdentity {
  return { system, id: `${type}/${String(id)}` };
}

export function remoteUrl(kind: Kind, system: string, type: string, id: string | number | null | undefined): DocUrl | null {
  if (id === null || id === undefined || id === "") return null;
  return externalDocUrl(kind, remoteIdentity(system, type, id));
}

/** The document for one remote object, with its id in that system recorded on it. */
export function importedDocument<K extends Kind>(system: string, type: string, id: string | number, kind: K, external: keyof ExternalIds, fields: CreateInput<K>): Imported<K> {
  const identity = remoteIdentity(system, type, id);
  return { kind, identity, url: externalDocUrl(kind, identity), fields: { ...fields, external: { [external]: String(id) } } };
}

/** An instant as ISO-8601 UTC, whatever offset it was written with; null for null, undefined or unparseable input. */
export function instant(value: unknown): string | null {
  if (typeof value !== "string" || value.length === 0) return null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : new Date(ms).toISOString();
}

export const text = (value: unknown): string => (typeof value === "string" ? value : "");
export const nullableText = (value: unknown): string | null => (typeof value === "string" && value.length > 0 ? value : null);
