import type { Kysely } from "kysely";
import type { DocStore } from "../crdt/doc-store.js";
import type { DocUrl } from "../crdt/ids.js";
import type { Entity } from "../crdt/schema/document.js";
import type { ConnectorTables } from "./connector-tables.js";
import { toMarkdown } from "./content-format.js";
import { pick } from "./import-documents.js";
import { readBase } from "./sync-base.js";

export interface LinkResult {
  topics: number;
  posts: number;
}

/**
 * Pairs discussions that already exist in both Canvas and Discourse but were pulled as two
 * documents each (a course whose forum was mirrored by hand, or by another tool, before this
 * node connected both). Without it, mirroring would copy each into the other system a second
 * time, and Discourse refuses a topic whose title it already has.
 *
 * A Discourse topic pairs with the Canvas topic of the course that has the same title; in
 * paired topics, a Discourse post pairs with the Canvas entry whose words are most alike (at
 * least `SAME_POST` of them shared: one side may have been edited, or formatted). Only
 * objects paired with nothing are considered, so a pairing, once made, is never undone. The
 * Canvas document is kept: it takes the Discourse id, mapping, sync state and every reference
 * (replies, parents), and the Discourse document is deleted. At that moment the two are taken
 * to be in step, so the pairing itself sends nothing.
 */
export async function linkCounterparts(store: DocStore, db: Kysely<ConnectorTables>, course: DocUrl): Promise<LinkResult> {
  const result: LinkResult = { topics: 0, posts: 0 };
  const topics = (await store.list(course, "discussion_topic")).filter((topic) => !topic.announcement);
  const canvasTopics = byKey(topics.filter(onlyIn("canvas")), (topic) => normalized(topic.title));
  for (const topic of topics.filter(onlyIn("discourse"))) {
    const counterpart = takeMatch(canvasTopics, normalized(topic.title));
    if (!counterpart) continue;
    await merge(topic, counterpart, "topic");
    result.topics++;
  }

  const posts = await store.list(course, "post");
  const linkedTopics = (await store.list(course, "discussion_topic")).filter((t) => t.external.canvas && t.external.discourse).map((t) => t.url);
  for (const topicUrl of linkedTopics) {
    const inTopic = posts.filter((post) => post.topic === topicUrl && !post.deleted);
    const entries = inTopic.filter(onlyIn("canvas"));
    for (const post of inTopic.filter(onlyIn("discourse"))) {
      const counterpart = closest(entries, post.message);
      if (!counterpart) continue;
      entries.splice(entries.indexOf(counterpart), 1);
      await merge(post, counterpart, "post");
      result.posts++;
    }
  }
  return result;

  /** Moves the Discourse side of `from` onto `into`, then deletes `from`. */
  async function merge(from: Entity, into: Entity, type: string): Promise<void> {
    const discourseId = from.external.discourse!;
    await store.change(into.url, (draft) => {
      draft.external.discourse = discourseId;
    });
    const base = await readBase(db, from.url, "discourse");
    await db.transaction().execute(async (trx) => {
      await trx.deleteFrom("remote_ids").where("system", "=", "discourse").where("doc_url", "=", into.url).where("remote_type", "=", type).execute();
      await trx.updateTable("remote_ids").set({ doc_url: into.url }).where("system", "=", "discourse").where("doc_url", "=", from.url).execute();
      await trx.deleteFrom("remote_sync").where("system", "=", "discourse").where("doc_url", "=", into.url).execute();
      // Being paired, the two are in step now: the document's values are the local base.
      const moved = base ? JSON.stringify({ local: pick(into, Object.keys(base.local)), remote: base.remote }) : null;
      await trx.updateTable("remote_sync").set({ doc_url: into.url, base: moved }).where("system", "=", "discourse").where("doc_url", "=", from.url).execute();
      // A create of `into` still queued for Discourse would now make a second copy there.
      await trx.deleteFrom("outbox").where("system", "=", "discourse").where("doc_url", "in", [into.url, from.url]).where("status", "in", ["pending", "sending"]).execute();
    });
    for (const post of await store.list(course, "post")) {
      if (post.topic !== from.url && post.parent !== from.url) continue;
      await store.change<"post">(post.url, (draft) => {
        if (draft.topic === from.url) draft.topic = into.url;
        if (draft.parent === from.url) draft.parent = into.url;
      });
    }
    await rewriteBases(from.url, into.url);
    await store.delete(from.url);
  }

  /** References to `from` in recorded bases now name `into`, so the moved references are no change. */
  async function rewriteBases(from: DocUrl, into: DocUrl): Promise<void> {
    const rows = await db.selectFrom("remote_sync").select(["doc_url", "system", "base"]).where("base", "like", `%${from}%`).execute();
    for (const row of rows) {
      await db.updateTable("remote_sync").set({ base: row.base!.split(from).join(into) }).where("doc_url", "=", row.doc_url).where("system", "=", row.system).execute();
    }
  }
}

function onlyIn(system: "canvas" | "discourse"): (entity: Entity) => boolean {
  const other = system === "canvas" ? "discourse" : "canvas";
  return (entity) => entity.external[system] !== undefined && entity.external[other] === undefined && !entity.tombstone;
}

/** The share of words two posts must have in common to be the same post in two systems. */
export const SAME_POST = 0.8;

/** The entry whose words are most like the post's, if alike enough. */
function closest<T extends { message: string }>(entries: readonly T[], message: string): T | undefined {
  const words = wordsOf(message);
  let best: { entry: T; score: number } | undefined;
  for (const entry of entries) {
    const other = wordsOf(entry.message);
    const shared = [...words].filter((word) => other.has(word)).length;
    const score = shared / Math.max(1, new Set([...words, ...other]).size);
    if (score >= SAME_POST && (!best || score > best.score)) best = { entry, score };
  }
  return best?.entry;
}

/** A message's words, without markup or punctuation, case ignored. */
function wordsOf(message: string): Set<string> {
  return new Set(toMarkdown(message).toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? []);
}

/** Text compared across systems: markdown, one space between words, case ignored. */
function normalized(text: string): string {
  return toMarkdown(text).replace(/\s+/g, " ").trim().toLowerCase();
}

function byKey<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const map = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    if (k.length === 0) continue;
    map.set(k, [...(map.get(k) ?? []), item]);
  }
  return map;
}

/** The first unpaired item with this key, taken so that it pairs only once. */
function takeMatch<T>(map: Map<string, T[]>, key: string): T | undefined {
  const items = map.get(key);
  return items?.shift();
}
