import type { Kysely } from "kysely";
import type { DocUrl } from "../../crdt/ids.js";
import type { ConnectorTables } from "../connector-tables.js";
import { remoteIdOf } from "../remote-records.js";
import { readBase } from "../sync-base.js";

/**
 * What the node keeps about a Discourse topic beyond its fields: the id of post #1 (whose raw
 * is the topic's message, edited as a post) and the category the topic was last seen in.
 *
 * Post #1 is a second `remote_ids` row of the topic's document, of type `first_post`. The
 * category is kept in the remote side of the topic's sync base, as `category`: no document
 * field holds it (the course is the category), but a course connected to another category
 * must move its topics there, and only the base says where each one is.
 */

export const FIRST_POST_TYPE = "first_post";

/** The key of the topic's category in the remote side of its sync base. */
export const CATEGORY_KEY = "category";

export async function recordTopicPlace(db: Kysely<ConnectorTables>, url: DocUrl, place: { firstPostId?: string | null; categoryId?: string | number | null }): Promise<void> {
  if (place.firstPostId != null) {
    await db
      .insertInto("remote_ids")
      .values({ system: "discourse", remote_type: FIRST_POST_TYPE, remote_id: place.firstPostId, doc_url: url })
      .onConflict((oc) => oc.columns(["system", "remote_type", "remote_id"]).doUpdateSet({ doc_url: url }))
      .execute();
  }
  if (place.categoryId == null) return;
  const base = await readBase(db, url, "discourse");
  const category = String(place.categoryId);
  if (!base || base.remote[CATEGORY_KEY] === category) return;
  base.remote[CATEGORY_KEY] = category;
  await db.updateTable("remote_sync").set({ base: JSON.stringify(base) }).where("doc_url", "=", url).where("system", "=", "discourse").execute();
}

export async function firstPostIdOf(db: Kysely<ConnectorTables>, url: DocUrl): Promise<string | undefined> {
  return remoteIdOf(db, "discourse", url, FIRST_POST_TYPE);
}
