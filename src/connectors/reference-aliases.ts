import type { Kysely } from "kysely";
import type { DocUrl } from "../crdt/ids.js";
import type { ConnectorTables, RemoteSystem } from "./connector-tables.js";

/** The URL a remote object's document would have by default (its identity's), or null. */
export type DeriveUrl = (type: string, remoteId: string) => DocUrl | null;

/**
 * Where references from a system point once some of its objects live in other documents.
 *
 * A pull names a post's topic, parent or author by the URL derived from the remote id, with
 * no lookup. That is right until an object is mapped to another document: one this node
 * created and pushed (its URL was random), or one linked to its counterpart in the other
 * system. `remote_ids` says which; this turns it into a map from the derived URL to the
 * document, so a pull can rewrite references before it writes them.
 */
export class ReferenceAliases {
  private constructor(private readonly aliases: Map<string, DocUrl>) {}

  static async load(db: Kysely<ConnectorTables>, system: RemoteSystem, derive: DeriveUrl): Promise<ReferenceAliases> {
    const rows = await db.selectFrom("remote_ids").select(["remote_type", "remote_id", "doc_url"]).where("system", "=", system).execute();
    const aliases = new Map<string, DocUrl>();
    for (const row of rows) {
      const derived = derive(row.remote_type, row.remote_id);
      if (derived && derived !== row.doc_url) aliases.set(derived, row.doc_url as DocUrl);
    }
    return new ReferenceAliases(aliases);
  }

  /** Records that the object whose derived URL is `derived` lives in `actual`. */
  add(derived: DocUrl | null, actual: DocUrl): void {
    if (derived && derived !== actual) this.aliases.set(derived, actual);
  }

  /** The document a URL stands for. */
  resolve(url: DocUrl): DocUrl {
    return this.aliases.get(url) ?? url;
  }

  /** Fields with every reference (at any depth: module items hold them in a list) rewritten. */
  rewrite<T>(value: T): T {
    if (this.aliases.size === 0) return value;
    return this.walk(value) as T;
  }

  private walk(value: unknown): unknown {
    if (typeof value === "string") return this.aliases.get(value) ?? value;
    if (Array.isArray(value)) return value.map((item) => this.walk(item));
    if (value !== null && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, this.walk(item)]));
    return value;
  }
}
