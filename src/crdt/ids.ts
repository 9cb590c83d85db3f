import { createHash } from "node:crypto";
import {
  generateAutomergeUrl,
  isValidAutomergeUrl,
  parseAutomergeUrl,
  stringifyAutomergeUrl,
  type AutomergeUrl,
  type BinaryDocumentId,
  type DocumentId,
} from "@automerge/automerge-repo/slim";

/** An Automerge document URL (`automerge:<base58check id>`): how every row and reference names a document. */
export type DocUrl = AutomergeUrl;
export type { DocumentId };

/** Where an entity also lives: a system name (an LMS instance) and that system's id for it. */
export interface ExternalIdentity {
  /** The instance, e.g. `canvas:school.instructure.com` or `discourse:forum.school.org`. */
  readonly system: string;
  /** The entity's id in that system, as a string (Canvas ids can exceed 2^53). */
  readonly id: string;
}

/** A fresh random document URL. */
export function newDocUrl(): DocUrl {
  return generateAutomergeUrl();
}

/**
 * The one URL an entity imported from another system always gets, on every peer.
 * Two laptops importing the same Canvas assignment offline create the same document,
 * so their imports merge when they meet instead of becoming duplicates.
 */
export function externalDocUrl(kind: string, identity: ExternalIdentity): DocUrl {
  return hashedDocUrl("external", kind, identity.system, identity.id);
}

/** A document URL derived from its parts (SHA-256, first 16 bytes, as automerge-repo ids are). */
export function hashedDocUrl(...parts: string[]): DocUrl {
  const hash = createHash("sha256");
  // Length-prefix each part so ("ab","c") and ("a","bc") differ.
  for (const part of parts) hash.update(`${part.length}:${part};`);
  const bytes = new Uint8Array(hash.digest().subarray(0, 16)) as BinaryDocumentId;
  return stringifyAutomergeUrl(bytes);
}

export function isDocUrl(value: unknown): value is DocUrl {
  return isValidAutomergeUrl(value);
}

export function documentIdOf(url: DocUrl): DocumentId {
  return parseAutomergeUrl(url).documentId;
}

export function docUrlOf(id: DocumentId): DocUrl {
  return stringifyAutomergeUrl(id);
}
