import { afterEach, describe, expect, it } from "vitest";
import type { ConflictStrategy } from "../../src/connectors/connector-tables.js";
import { urlOf, withoutSendMark } from "../../src/connectors/discourse/discourse-mapping.js";
import { setStrategy } from "../../src/connectors/sync-base.js";
import type { DocUrl } from "../../src/crdt/ids.js";
import { discourseTestNode, type DiscourseTestNode } from "../../src/testing/discourse-node.js";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(): Promise<DiscourseTestNode> {
  const node = await discourseTestNode();
  cleanups.push(node.close);
  await node.pull();
  return node;
}

/** Priya's introduction in topic 301, as the fixtures have it. */
const PRIYA = "Hi! I'm Priya, a **nursing** major. I want to understand how cell membranes decide what gets in.";

async function setMessage(node: DiscourseTestNode, url: DocUrl, message: string): Promise<void> {
  await node.engine.docs.change<"post">(url, (draft) => {
    draft.message = message;
  });
}

/** After a sync that settled everything, another changes no document and sends nothing. */
async function expectQuiet(node: DiscourseTestNode): Promise<void> {
  await node.sync();
  const heads = new Map((await node.engine.docs.records()).map((r) => [r.id, r.heads]));
  const sent = node.sent.length;
  const { pushed, pulled } = await node.sync();
  expect(pushed).toMatchObject({ created: 0, edited: 0, conflicts: 0, failed: [] });
  expect(pulled).toMatchObject({ created: 0, updated: 0, failed: [] });
  expect(node.sent.length).toBe(sent);
  expect(new Map((await node.engine.docs.records()).map((r) => [r.id, r.heads]))).toEqual(heads);
}

describe("edits made here reach Discourse", () => {
  it("sends a reply's new message with original_text set to the raw Discourse holds, and the pull reads it back as no change", async () => {
    const node = await setup();
    const url = urlOf(node.instance, "post", 1002)!;
    const edited = PRIYA.replace("**nursing**", "**biology**");
    await setMessage(node, url, edited);
    expect(await node.push()).toMatchObject({ edited: 1, conflicts: 0, failed: [] });
    expect(node.sent).toEqual([{ method: "PUT", path: "/posts/1002.json", body: { post: { raw: edited, original_text: PRIYA } } }]);
    expect(node.discourse.state.requirePost(1002).raw).toBe(edited);
    const before = (await node.engine.docs.record(url))!.heads;
    expect(await node.pull()).toMatchObject({ updated: 0, failed: [] });
    expect((await node.engine.docs.record(url))!.heads).toBe(before);
    await expectQuiet(node);
  });

  it("edits the message of a topic made here as its post #1, keeping the send mark the raw carries", async () => {
    const node = await setup();
    const topic = await node.engine.docs.create("discussion_topic", { course: node.course, title: "Microscope sign-up for week 4", message: "Pick a slot below, two people per scope." });
    await node.push();
    const topicId = Number((await node.engine.docs.find<"discussion_topic">(topic.url))!.external.discourse);
    const first = node.discourse.state.firstPost(node.discourse.state.requireTopic(topicId));
    const mark = first.raw.slice("Pick a slot below, two people per scope.".length);
    await node.engine.docs.change<"discussion_topic">(topic.url, (draft) => {
      draft.message = "Pick a slot below, three people per scope.";
    });
    node.sent.length = 0;
    expect(await node.push()).toMatchObject({ edited: 1, conflicts: 0, failed: [] });
    expect(node.sent).toEqual([{ method: "PUT", path: `/posts/${first.id}.json`, body: { post: { raw: `Pick a slot below, three people per scope.${mark}`, original_text: `Pick a slot below, two people per scope.${mark}` } } }]);
    expect(node.discourse.requests.filter((r) => r.status === 409)).toEqual([]);
    await expectQuiet(node);
  });

  it("sends a title change, and a course connected to another category moves its topics there", async () => {
    const node = await setup();
    const topic = urlOf(node.instance, "topic", 301)!;
    await node.engine.docs.change<"discussion_topic">(topic, (draft) => {
      draft.title = "Introduce yourself (BIO 101)";
    });
    expect(await node.push()).toMatchObject({ edited: 1, failed: [] });
    expect(node.sent).toEqual([{ method: "PUT", path: "/t/-/301.json", body: { topic: { title: "Introduce yourself (BIO 101)" } } }]);
    expect(node.discourse.state.requireTopic(301).title).toBe("Introduce yourself (BIO 101)");
    await expectQuiet(node);

    const spring = node.discourse.state.createCategory({ name: "BIO 101 spring" });
    node.connectCategory(String(spring.id));
    node.sent.length = 0;
    expect(await node.push()).toMatchObject({ edited: 2, failed: [] });
    expect(node.sent).toHaveLength(2);
    expect(node.sent).toEqual(
      expect.arrayContaining([
        { method: "PUT", path: "/t/-/301.json", body: { topic: { category_id: spring.id } } },
        { method: "PUT", path: "/t/-/302.json", body: { topic: { category_id: spring.id } } },
      ]),
    );
    expect([301, 302].map((id) => node.discourse.state.requireTopic(id).category_id)).toEqual([spring.id, spring.id]);
    // The pull of the new category finds the same topics: nothing tombstoned, nothing changed.
    expect(await node.pull()).toMatchObject({ deleted: 0, updated: 0, failed: [] });
    expect(await node.engine.docs.find(topic)).toMatchObject({ title: "Introduce yourself (BIO 101)" });
    await expectQuiet(node);
  });

  it("settles a title changed on both sides by the strategy and records the conflict", async () => {
    const node = await setup();
    await setStrategy(node.db, node.course, "discussion_topic", "prefer_discourse");
    const topic = urlOf(node.instance, "topic", 301)!;
    await node.engine.docs.change<"discussion_topic">(topic, (draft) => {
      draft.title = "Introductions, week one";
    });
    node.discourse.state.updateTopic(301, { title: "Say hello to the class" });
    expect(await node.push()).toMatchObject({ conflicts: 1, failed: [] });
    expect(node.sent).toEqual([]);
    expect(await node.engine.docs.find(topic)).toMatchObject({ title: "Say hello to the class" });
    const conflicts = await node.db.selectFrom("remote_conflicts").selectAll().where("doc_url", "=", topic).execute();
    expect(conflicts).toEqual([expect.objectContaining({ field: "title", local_value: "Introductions, week one", remote_value: "Say hello to the class", strategy: "prefer_discourse" })]);
    await expectQuiet(node);
  });
});

describe("an edit Discourse refuses because someone else edited first", () => {
  const LOCAL = PRIYA.replace("Hi!", "Hello!");
  const REMOTE = `${PRIYA} Does temperature matter too?`;
  const MERGED = `${LOCAL} Does temperature matter too?`;
  // The Discourse edit comes a minute after the local one: the most recent is Discourse's.
  const cases: Array<[ConflictStrategy, string]> = [
    ["prefer_canvas", LOCAL],
    ["prefer_discourse", REMOTE],
    ["prefer_recent", REMOTE],
    ["merge_prefer_canvas", MERGED],
    ["merge_prefer_discourse", MERGED],
  ];

  it.each(cases)("under %s, both sides end with the version the strategy picks, and the conflict is recorded", async (strategy, expected) => {
    const node = await setup();
    await setStrategy(node.db, node.course, "post", strategy);
    const url = urlOf(node.instance, "post", 1002)!;
    await setMessage(node, url, LOCAL);
    node.tick(60_000);
    node.discourse.state.editPost(1002, { raw: REMOTE, editor_id: node.discourse.state.userByName("priya_n")!.id });

    const result = await node.push();
    expect(result.failed).toEqual([]);
    expect(result.conflicts).toBe(1);
    expect(node.sent[0]).toEqual({ method: "PUT", path: "/posts/1002.json", body: { post: { raw: LOCAL, original_text: PRIYA } } });
    expect(node.discourse.requests.filter((r) => r.method === "PUT" && r.status === 409)).toHaveLength(1);
    // When this node's version must reach Discourse, it is sent against the raw just read.
    if (expected !== REMOTE) expect(node.sent[1]).toEqual({ method: "PUT", path: "/posts/1002.json", body: { post: { raw: expected, original_text: REMOTE } } });
    else expect(node.sent).toHaveLength(1);
    expect((await node.engine.docs.find<"post">(url))!.message).toBe(expected);
    expect(node.discourse.state.requirePost(1002).raw).toBe(expected);

    const conflicts = await node.db.selectFrom("remote_conflicts").selectAll().where("doc_url", "=", url).execute();
    expect(conflicts).toEqual([expect.objectContaining({ system: "discourse", field: "message", local_value: LOCAL, remote_value: REMOTE, strategy })]);
    await expectQuiet(node);
  });
});

describe("a pull meeting edits made here", () => {
  it("keeps a local edit not yet sent, queues it, and the next push sends it", async () => {
    const node = await setup();
    const url = urlOf(node.instance, "post", 1002)!;
    const edited = PRIYA.replace("**nursing**", "**biology**");
    await setMessage(node, url, edited);
    expect(await node.pull()).toMatchObject({ updated: 0, failed: [] });
    expect((await node.engine.docs.find<"post">(url))!.message).toBe(edited);
    expect(await node.db.selectFrom("outbox").select(["operation", "status"]).where("doc_url", "=", url).execute()).toEqual([{ operation: "update", status: "pending" }]);
    expect(await node.push()).toMatchObject({ edited: 1, failed: [] });
    expect(node.discourse.state.requirePost(1002).raw).toBe(edited);
    await expectQuiet(node);
  });

  it("settles a clash it finds by the strategy and records it, before any push", async () => {
    const node = await setup();
    await setStrategy(node.db, node.course, "*", "prefer_discourse");
    const url = urlOf(node.instance, "post", 1002)!;
    await setMessage(node, url, PRIYA.replace("Hi!", "Hello!"));
    node.discourse.state.editPost(1002, { raw: `${PRIYA} Does temperature matter too?`, editor_id: 31 });
    expect(await node.pull()).toMatchObject({ updated: 1, failed: [] });
    expect((await node.engine.docs.find<"post">(url))!.message).toBe(`${PRIYA} Does temperature matter too?`);
    expect(await node.db.selectFrom("remote_conflicts").select(["field", "strategy"]).where("doc_url", "=", url).execute()).toEqual([{ field: "message", strategy: "prefer_discourse" }]);
    await expectQuiet(node);
  });

  it("merges a Canvas topic's HTML edit with a Discourse edit of its markdown, word by word, in Discourse's form", async () => {
    const node = await setup();
    await setStrategy(node.db, node.course, "discussion_topic", "merge_prefer_canvas");
    const topic = await node.engine.docs.create("discussion_topic", { course: node.course, title: "Lab 3: osmosis in potato cores", message: "<p>Weigh the cores before and after soaking in salt water.</p>", external: { canvas: "77" } });
    await node.push();
    const topicId = Number((await node.engine.docs.find<"discussion_topic">(topic.url))!.external.discourse);
    const first = node.discourse.state.firstPost(node.discourse.state.requireTopic(topicId));
    await node.engine.docs.change<"discussion_topic">(topic.url, (draft) => {
      draft.message = "<p>Weigh the dry cores before and after soaking in salt water.</p>";
    });
    node.discourse.state.editPost(first.id, { raw: first.raw.replace("salt water.", "salt water for an hour."), editor_id: 31 });

    expect(await node.push()).toMatchObject({ edited: 1, conflicts: 1, failed: [] });
    const merged = "Weigh the dry cores before and after soaking in salt water for an hour.";
    expect(withoutSendMark(node.discourse.state.requirePost(first.id).raw)).toBe(merged);
    expect((await node.engine.docs.find<"discussion_topic">(topic.url))!.message).toBe(merged);
    await expectQuiet(node);
  });
});

describe("a post deleted in Discourse while an edit made here was on its way", () => {
  it("deletes the document here too, records the lost edit as a conflict, and sends nothing again", async () => {
    const node = await setup();
    const url = urlOf(node.instance, "post", 1003)!;
    await setMessage(node, url, "Hej! Tomás here, and now curious about chloroplasts too.");
    // Gone for good on the forum (a staff member's delete past its grace period): a 404.
    node.discourse.state.posts.delete(1003);
    const topic = node.discourse.state.requireTopic(301);
    topic.post_ids = topic.post_ids.filter((id) => id !== 1003);

    expect(await node.push()).toMatchObject({ deleted: 1, failed: [], retrying: 0 });
    expect(await node.engine.docs.find(url)).toBeUndefined();
    const conflicts = await node.db.selectFrom("remote_conflicts").selectAll().where("doc_url", "=", url).execute();
    expect(conflicts).toEqual([expect.objectContaining({ system: "discourse", field: "(object)", remote_value: "deleted" })]);
    const sent = node.sent.length;
    expect(await node.push()).toMatchObject({ deleted: 0, edited: 0, failed: [] });
    expect(node.sent.length).toBe(sent);
  });
});
