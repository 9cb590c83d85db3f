import type { DocUrl } from "./ids.js";
import type { Entity } from "./schema/document.js";
import type { Kind } from "./schema/kinds.js";

/**
 * A document as the projection sees it: plain values only, no Automerge handle.
 * The projection is a function of this, so equal heads give equal rows on every peer.
 */
export interface DocSnapshot<K extends Kind = Kind> {
  url: DocUrl;
  kind: K;
  /** Sorted heads joined with commas. */
  heads: string;
  entity: Entity<K>;
  /** Concurrent values of top-level fields, keyed by field, in a deterministic order. */
  conflicts: Record<string, unknown[]>;
}

/** What the store keeps with each record (as JSON) so a snapshot needs no document load. */
export interface DocView {
  entity: Entity;
  conflicts: Record<string, unknown[]>;
}
