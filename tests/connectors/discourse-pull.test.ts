import { afterEach, describe, expect, it } from "vitest";
import { connectorDb } from "../../src/connectors/connector-tables.js";
import { discourseClient } from "../../src/connectors/discourse/discourse-client.js";
import { discourseInstance, urlOf } from "../../src/connectors/discourse/discourse-mapping.js";
import { pullDiscourseCategory } from "../../src/connectors/discourse/discourse-pull.js";
import type { DocUrl } from "../../src/crdt/ids.js";
import { Engine } from "../../src/engine.js";
import { FakeDiscourse, type DiscourseScale } from "../../src/testing/fake-discourse/index.js";
import { makeTempDir } from "../../src/testing/temp-dir.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(scale?: DiscourseScale) {
  const discourse = await FakeDiscourse.start({ clock: () => Date.parse("2025-01-22T12:00:00Z"), ...(scale === undefined ? {} : { scale }) });
  cleanups.push(() => discourse.close());
  const temp = makeTempDir();
  const engine = await Engine.open({ dataDir: temp.dir, create: true });
  cleanups.push(async () => {
    await engine.close();
    temp.remove();
  });
  const course = (await engine.docs.create("course", { name: "BIO 101", courseCode: "BIO101" } as never)).url;
  const instance = discourseInstance(discourse.url);
  const client = discourseClient({ url: discourse.url, apiKey: () => discourse.apiKey, username: discourse.username, sleep: async () => undefined });
  const pull = () => pullDiscourseCategory({ client, instance, store: engine.docs, db: connectorDb(engine.db), categoryId: 12, course });
  return { discourse, engine, instance, course, pull };
}

/** Posts of the category's live topics other than each topic's post #1, which is the topic's message. */
function remoteReplies(discourse: FakeDiscourse): number {
  return [...discourse.state.topics.values()]
    .filter((t) => t.category_id === 12 && t.deleted_at === null && !t.title.startsWith("About the"))
    .reduce((n, t) => n + discourse.state.visiblePosts(t).length - 1, 0);
}

describe("pulling a Discourse category", () => {
  it("brings the category's topics and posts in as documents and SQL rows, and a second pull changes nothing", async () => {
    const { discourse, engine, instance, course, pull } = await setup();
    const first = await pull();
    expect(first.failed).toEqual([]);
    expect(first.incomplete).toEqual([]);
    // The course's forum is recorded as its mapping: course to category.
    const category = await connectorDb(engine.db).selectFrom("remote_ids").select(["remote_id", "doc_url"]).where("system", "=", "discourse").where("remote_type", "=", "category").execute();
    expect(category).toEqual([{ remote_id: "12", doc_url: course }]);
    await engine.whenProjected();
    const topics = await engine.db.selectFrom("discussion_topics").select(["title", "message"]).where("course_url", "=", course).orderBy("title").execute();
    expect(topics.map((t) => t.title)).toEqual(["Introduce yourself", "Osmosis questions"]);
    // The message is post #1's raw (markdown), never its cooked HTML.
    expect(topics[0]!.message).toBe(discourse.state.requirePost(1001).raw);
    const posts = await engine.db.selectFrom("posts").select(["doc_url", "parent_url", "message"]).where("course_url", "=", course).execute();
    expect(posts).toHaveLength(remoteReplies(discourse));
    expect(posts.find((p) => p.doc_url === urlOf(instance, "post", 1004))?.parent_url).toBe(urlOf(instance, "post", 1002));
    const mapped = await connectorDb(engine.db).selectFrom("remote_ids").select("remote_type").where("system", "=", "discourse").execute();
    // A topic's post #1 is mapped too: edits of the topic's message are edits of that post.
    expect(new Set(mapped.map((m) => m.remote_type))).toEqual(new Set(["category", "user", "topic", "post", "first_post"]));
    // Topics and posts, which both sides edit, have sync bases for the next reconciliation.
    const bases = await connectorDb(engine.db).selectFrom("remote_sync").select(["doc_url", "base"]).where("system", "=", "discourse").execute();
    expect(bases.filter((b) => b.base !== null)).toHaveLength(topics.length + posts.length);

    const second = await pull();
    expect(second).toMatchObject({ created: 0, updated: 0, deleted: 0, failed: [], incomplete: [] });
    expect(second.unchanged).toBe(first.created + first.updated + first.unchanged);
  });

  it("follows every page of the topic list and every chunk of a long post stream", async () => {
    const { discourse, engine, course, pull } = await setup({ topics: 30, postsPerTopic: 23 });
    const result = await pull();
    expect(result.failed).toEqual([]);
    await engine.whenProjected();
    // 2 seeded + 30 generated topics: more than one page of 30.
    expect(await engine.db.selectFrom("discussion_topics").select("doc_url").where("course_url", "=", course).execute()).toHaveLength(32);
    expect(await engine.db.selectFrom("posts").select("doc_url").where("course_url", "=", course).execute()).toHaveLength(remoteReplies(discourse));
    const paths = discourse.requests.map((r) => r.path);
    // The second page came from `more_topics_url`, given `.json`; the posts after the first 20 in chunks.
    expect(paths.some((p) => p.includes("/l/latest.json?") && p.includes("page=1"))).toBe(true);
    expect(paths.filter((p) => /^\/t\/\d+\/posts\.json\?/.test(p)).length).toBeGreaterThanOrEqual(30);
    expect(paths.filter((p) => p.startsWith("/u/"))).toEqual([]);
  });

  it("waits out a 429 with Retry-After", async () => {
    const { discourse, pull } = await setup();
    discourse.faults.inject({ kind: "rate-limit", path: /^\/t\/301/, times: 2, retryAfter: 5 });
    const result = await pull();
    expect(result.failed).toEqual([]);
    expect(result.created).toBeGreaterThan(5);
    expect(discourse.faults.pending).toBe(0);
  });

  it("marks a post deleted remotely as deleted after the next pull, and tombstones a deleted topic with its posts", async () => {
    const { discourse, engine, instance, pull } = await setup();
    await pull();
    discourse.state.deletePost(1003, -1);
    const topic302 = discourse.state.requireTopic(302);
    discourse.state.deleteTopic(302, -1);
    const result = await pull();
    expect(result.failed).toEqual([]);
    const post = await engine.docs.find<"post">(urlOf(instance, "post", 1003)!);
    expect(post).toMatchObject({ deleted: true, message: "" });
    const topicUrl = urlOf(instance, "topic", 302)!;
    expect(await engine.docs.find(topicUrl)).toBeUndefined();
    for (const id of topic302.post_ids.slice(1)) expect(await engine.docs.find(urlOf(instance, "post", id) as DocUrl)).toBeUndefined();
    expect(result.deleted).toBe(1 + 1 + topic302.post_ids.length - 1);
    await engine.whenProjected();
    expect(await engine.db.selectFrom("posts").select("deleted").where("doc_url", "=", urlOf(instance, "post", 1003)!).executeTakeFirst()).toMatchObject({ deleted: 1 });

    const again = await pull();
    expect(again).toMatchObject({ created: 0, updated: 0, deleted: 0, failed: [] });
  });
});
