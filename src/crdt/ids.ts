import { createHash } from "node:crypto";
import { generateAutomergeUrl, parseAutomergeUrl, type AutomergeUrl, type DocumentId } from "@automerge/automerge-repo/slim";
import { decodeBase58Check, encodeBase58Check } from "./base58check.js";

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
  return docUrlOf(encodeBase58Check(hash.digest().subarray(0, 16)) as DocumentId);
}

const URL_PREFIX = "automerge:";
/** base58 (no 0, O, I, l), 16 bytes plus a 4-byte checksum: 25 to 28 characters. */
const DOC_URL_SHAPE = /^automerge:[1-9A-HJ-NP-Za-km-z]{20,30}$/;

/**
 * Whether a value has the shape of a document URL. A cheap test for validating documents
 * (thousands per second); `isVerifiedDocUrl` also checks the id's checksum.
 */
export function isDocUrl(value: unknown): value is DocUrl {
  return typeof value === "string" && DOC_URL_SHAPE.test(value);
}

/** Shape and base58check checksum: for URLs typed by people or named by peers. */
export function isVerifiedDocUrl(value: unknown): value is DocUrl {
  return isDocUrl(value) && decodeBase58Check(value.slice(URL_PREFIX.length)) !== undefined;
}

export function documentIdOf(url: DocUrl): DocumentId {
  // Our URLs never carry heads; the id is what follows the prefix. Anything else takes the full parser.
  return DOC_URL_SHAPE.test(url) ? (url.slice(URL_PREFIX.length) as DocumentId) : parseAutomergeUrl(url).documentId;
}

export function docUrlOf(id: DocumentId): DocUrl {
  return `${URL_PREFIX}${id}` as DocUrl;
}
