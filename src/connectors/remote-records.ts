import type { Kysely } from "kysely";
import type { DocStore } from "../crdt/doc-store.js";
import type { DocUrl } from "../crdt/ids.js";
import { isoNow, systemClock, type Clock } from "../util/clock.js";
import type { ConnectorTables, RemoteSystem } from "./connector-tables.js";
import type { SyncBase } from "./reconcile.js";

export interface RemoteRecord {
  system: RemoteSystem;
  /** The remote object's type, as the system names it (`assignment`, `submission`, `post`...). */
  type: string;
  remoteId: string;
  url: DocUrl;
  /** What the system says about the object's version (`updated_at`, `graded_at`, a version number), if anything. */
  remoteVersion: string | null;
  /** The fields on both sides as they now stand, for the next reconciliation (see reconcile.ts). */
  base?: SyncBase;
}

/**
 * Records that a document and a remote object are in step: which object the document is,
 * the document's heads as they are now, and the remote version. A later local change shows
 * as heads that differ from these (so it is pushed); a change made by a pull does not.
 */
export async function recordInSync(db: Kysely<ConnectorTables>, store: DocStore, remote: RemoteRecord, clock: Clock = systemClock): Promise<void> {
  const heads = (await store.record(remote.url))?.heads ?? null;
  await db.transaction().execute(async (trx) => {
    await trx
      .insertInto("remote_ids")
      .values({ system: remote.system, remote_type: remote.type, remote_id: remote.remoteId, doc_url: remote.url })
      .onConflict((oc) => oc.columns(["system", "remote_type", "remote_id"]).doUpdateSet({ doc_url: remote.url }))
      .execute();
    const row = { state: "in_sync" as const, local_heads: heads, remote_version: remote.remoteVersion, synced_at: isoNow(clock), ...(remote.base ? { base: JSON.stringify(remote.base) } : {}) };
    await trx
      .insertInto("remote_sync")
      .values({ doc_url: remote.url, system: remote.system, ...row })
      .onConflict((oc) => oc.columns(["doc_url", "system"]).doUpdateSet(row))
      .execute();
  });
}

/** The remote id of a document in a system, if it has one. */
export async function remoteIdOf(db: Kysely<ConnectorTables>, system: RemoteSystem, url: DocUrl, type: string): Promise<string | undefined> {
  const row = await db.selectFrom("remote_ids").select("remote_id").where("system", "=", system).where("doc_url", "=", url).where("remote_type", "=", type).executeTakeFirst();
  return row?.remote_id;
}

/** The document a remote object is already mapped to, if any. */
export async function mappedUrl(db: Kysely<ConnectorTables>, system: RemoteSystem, type: string, remoteId: string): Promise<DocUrl | undefined> {
  const row = await db.selectFrom("remote_ids").select("doc_url").where("system", "=", system).where("remote_type", "=", type).where("remote_id", "=", remoteId).executeTakeFirst();
  return row?.doc_url as DocUrl | undefined;
}
