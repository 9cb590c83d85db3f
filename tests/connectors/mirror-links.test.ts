import { afterEach, describe, expect, it } from "vitest";
import { connectorDb } from "../../src/connectors/connector-tables.js";
import { linkCounterparts } from "../../src/connectors/mirror-links.js";
import { Engine } from "../../src/engine.js";
import { makeTempDir } from "../../src/testing/temp-dir.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function node() {
  const temp = makeTempDir();
  const engine = await Engine.open({ dataDir: temp.dir, create: true });
  cleanups.push(temp.remove, () => engine.close());
  return { engine, store: engine.docs, db: connectorDb(engine.db) };
}

describe("linking discussions that exist in both Canvas and Discourse", () => {
  it("pairs topics by title and posts by text, keeping the Canvas document with both ids and every reference", async () => {
    const { store, db } = await node();
    const course = (await store.create("course", { name: "BIO 101", external: { canvas: "4201" } })).url;
    const canvasTopic = await store.create("discussion_topic", { course, title: "Introduce yourself", message: "<p>Say hi</p>", external: { canvas: "41001" } });
    const forumTopic = await store.create("discussion_topic", { course, title: "introduce  yourself", message: "Say hi", external: { discourse: "301" } });
    const lonely = await store.create("discussion_topic", { course, title: "Only on the forum", message: "x", external: { discourse: "399" } });
    const entry = await store.create("post", { course, topic: canvasTopic.url, message: "<p>Hi! I'm <strong>Priya</strong>.</p>", external: { canvas: "61001" } });
    const forumPost = await store.create("post", { course, topic: forumTopic.url, message: "Hi! I'm **Priya**.", external: { discourse: "1002" } });
    const forumReply = await store.create("post", { course, topic: forumTopic.url, parent: forumPost.url, message: "Welcome Priya!", external: { discourse: "1004" } });
    // Another post of the thread, with words unlike any entry's: a post of the forum alone.
    const forumOnly = await store.create("post", { course, topic: forumTopic.url, message: "I am Priya's lab partner this term.", external: { discourse: "1005" } });
    await db.insertInto("remote_ids").values([
      { system: "discourse", remote_type: "topic", remote_id: "301", doc_url: forumTopic.url },
      { system: "discourse", remote_type: "post", remote_id: "1002", doc_url: forumPost.url },
      { system: "discourse", remote_type: "post", remote_id: "1004", doc_url: forumReply.url },
    ]).execute();
    await db.insertInto("remote_sync").values({ doc_url: forumReply.url, system: "discourse", state: "in_sync", local_heads: null, remote_version: null, synced_at: null, base: JSON.stringify({ local: { parent: forumPost.url }, remote: { parent: forumPost.url } }) }).execute();
    await db.insertInto("outbox").values({ system: "discourse", doc_url: canvasTopic.url, operation: "create", status: "pending", idempotency_key: "k", last_error: null, not_before: null, remote_id: null, created_at: "2026-01-01T00:00:00Z", updated_at: "2026-01-01T00:00:00Z" }).execute();

    expect(await linkCounterparts(store, db, course)).toEqual({ topics: 1, posts: 1 });

    expect((await store.find(canvasTopic.url))?.external).toEqual({ canvas: "41001", discourse: "301" });
    expect((await store.find(entry.url))?.external).toEqual({ canvas: "61001", discourse: "1002" });
    expect(await store.find(forumTopic.url)).toBeUndefined();
    expect(await store.find(forumPost.url)).toBeUndefined();
    expect(await store.find(lonely.url)).toBeDefined();
    expect((await store.find(forumOnly.url))?.external).toEqual({ discourse: "1005" });
    const reply = await store.find<"post">(forumReply.url);
    expect([reply?.topic, reply?.parent]).toEqual([canvasTopic.url, entry.url]);
    const ids = await db.selectFrom("remote_ids").select(["remote_id", "doc_url"]).orderBy("remote_id").execute();
    expect(ids).toEqual([
      { remote_id: "1002", doc_url: entry.url },
      { remote_id: "1004", doc_url: forumReply.url },
      { remote_id: "301", doc_url: canvasTopic.url },
    ]);
    const base = await db.selectFrom("remote_sync").select("base").where("doc_url", "=", forumReply.url).executeTakeFirstOrThrow();
    expect(JSON.parse(base.base!)).toEqual({ local: { parent: entry.url }, remote: { parent: entry.url } });
    // The queued create would have made a second topic with the same title.
    expect(await db.selectFrom("outbox").selectAll().execute()).toEqual([]);

    expect(await linkCounterparts(store, db, course)).toEqual({ topics: 0, posts: 0 });
  });
});
