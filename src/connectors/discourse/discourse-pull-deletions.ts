import type { Kysely } from "kysely";
import type { DocStore } from "../../crdt/doc-store.js";
import type { DocUrl } from "../../crdt/ids.js";
import type { Clock } from "../../util/clock.js";
import type { ConnectorTables } from "../connector-tables.js";
import type { PullResult } from "../pull-result.js";
import { recordInSync } from "../remote-records.js";
import { readBase } from "../sync-base.js";

/**
 * What a pull does with topics and posts Discourse no longer shows. A document that is also a
 * Canvas object (mirrored from Canvas) is left alone: it is Canvas's to delete, and a tombstone
 * could never be undone.
 */

export interface DeletionContext {
  db: Kysely<ConnectorTables>;
  store: DocStore;
  course: DocUrl;
  result: PullResult;
  failed: (what: string, error: unknown) => void;
  clock?: Clock;
}

/** Topics mapped before but absent from the category listing read in full: gone, with their posts. */
export async function tombstoneMissingTopics(context: DeletionContext, present: ReadonlySet<string>): Promise<void> {
  const { db, store, result } = context;
  const known = await db.selectFrom("remote_ids").select(["remote_id", "doc_url"]).where("system", "=", "discourse").where("remote_type", "=", "topic").execute();
  const gone = new Set<DocUrl>();
  for (const { remote_id, doc_url } of known) {
    if (present.has(remote_id)) continue;
    try {
      const doc = await store.find(doc_url as DocUrl);
      if (!doc || doc.course !== context.course || doc.external.canvas) continue;
      await store.delete(doc_url as DocUrl);
      gone.add(doc_url as DocUrl);
      result.deleted++;
    } catch (error) {
      context.failed(`topic ${remote_id}`, error);
    }
  }
  if (gone.size === 0) return;
  for (const { remote_id, doc_url } of await knownPosts(db)) {
    try {
      const doc = await store.find<"post">(doc_url as DocUrl);
      if (!doc || doc.topic === null || !gone.has(doc.topic) || doc.external.canvas) continue;
      await store.delete(doc_url as DocUrl);
      result.deleted++;
    } catch (error) {
      context.failed(`post ${remote_id}`, error);
    }
  }
}

/**
 * Replies mapped before but absent from a stream read in full (`topicUrls`: the documents of
 * those topics): deleted there, kept here as placeholders. Their bases say so too, so a post
 * recovered in Discourse comes back at the next pull instead of being emptied by this node.
 */
export async function markMissingPosts(context: DeletionContext, topicUrls: ReadonlySet<DocUrl>, present: ReadonlySet<string>): Promise<void> {
  const { db, store, result } = context;
  if (topicUrls.size === 0) return;
  for (const { remote_id, doc_url } of await knownPosts(db)) {
    if (present.has(remote_id)) continue;
    const url = doc_url as DocUrl;
    try {
      const doc = await store.find<"post">(url);
      if (!doc || doc.deleted || !doc.topic || !topicUrls.has(doc.topic) || doc.external.canvas) continue;
      await store.change<"post">(url, (draft) => {
        draft.deleted = true;
        draft.message = "";
      });
      const base = await readBase(db, url, "discourse");
      const gone = { deleted: true, message: "" };
      await recordInSync(db, store, { system: "discourse", type: "post", remoteId: remote_id, url, remoteVersion: null, ...(base ? { base: { local: { ...base.local, ...gone }, remote: { ...base.remote, ...gone } } } : {}) }, context.clock);
      result.deleted++;
    } catch (error) {
      context.failed(`post ${remote_id}`, error);
    }
  }
}

function knownPosts(db: Kysely<ConnectorTables>) {
  return db.selectFrom("remote_ids").select(["remote_id", "doc_url"]).where("system", "=", "discourse").where("remote_type", "=", "post").execute();
}
