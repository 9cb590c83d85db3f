import { afterEach, describe, expect, it } from "vitest";
import { mirroredCourse as startMirroredCourse } from "./mirror-fixture.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const mirroredCourse = () => startMirroredCourse(cleanups);

describe("a Canvas course mirrored with its Discourse forum", () => {
  it("pairs the discussions both already hold instead of copying them", async () => {
    const { writes, store, course } = await mirroredCourse();
    expect(writes()).toEqual([]);
    const topics = (await store.list(course, "discussion_topic")).filter((t) => !t.announcement);
    expect(topics.map((t) => [t.title, t.external.canvas, t.external.discourse]).sort()).toEqual([
      ["Introduce yourself", "41001", "301"],
      ["Osmosis questions", "41002", "302"],
    ]);
    const posts = await store.list(course, "post");
    expect(posts.map((p) => [p.external.canvas, p.external.discourse]).sort()).toEqual([
      ["61001", "1002"],
      ["61002", "1003"],
      ["61003", "1004"],
    ]);
  });

  it("mirrors a new Canvas discussion to Discourse and a Discourse reply back to Canvas, once, with no echo", async () => {
    const { both, writes, canvasApi, discourseApi, store, course } = await mirroredCourse();
    const created = await canvasApi<{ id: string }>("POST", "/discussion_topics", { title: "Lab 2 questions: diffusion", message: "<p>Ask anything about <strong>lab 2</strong> here.</p>", published: "true" });
    await both();
    const topic = (await store.list(course, "discussion_topic")).find((t) => t.external.canvas === String(created.id))!;
    expect(topic.external.discourse).toBeDefined();
    const forumTopic = await discourseApi<{ title: string; post_stream: { posts: Array<{ raw?: string; cooked: string }> } }>("GET", `/t/${topic.external.discourse}.json`, "system");
    expect(forumTopic.title).toBe("Lab 2 questions: diffusion");
    expect(forumTopic.post_stream.posts[0]!.cooked).toContain("<strong>lab 2</strong>");

    const reply = "Does temperature change how fast the dye spreads?";
    await discourseApi("POST", "/posts.json", "priya_n", { topic_id: Number(topic.external.discourse), raw: reply });
    // The Discourse pull (second in a round) brings the reply in; the next Canvas push sends it.
    await both();
    await both();
    const thread = await canvasApi<{ view: Array<{ message?: string }>; new_entries?: Array<{ message?: string }> }>("GET", `/discussion_topics/${created.id}/view`);
    const entries = [...thread.view, ...(thread.new_entries ?? [])].filter((e) => e.message?.includes(reply));
    expect(entries).toHaveLength(1);

    // Rounds of syncing on both sides now send nothing and change no document.
    const before = writes().length;
    const heads = new Map((await store.records({})).map((r) => [r.id, r.heads]));
    for (let round = 0; round < 3; round++) {
      for (const result of await both()) {
        expect(result.pushed).toMatchObject({ created: 0, failed: [] });
        expect(result.pulled).toMatchObject({ created: 0, updated: 0, failed: [] });
      }
    }
    expect(writes().slice(before)).toEqual([]);
    expect(new Map((await store.records({})).map((r) => [r.id, r.heads]))).toEqual(heads);
  });

  it("keeps a Canvas entry whose Discourse copy a moderator deleted, in conflict with Discourse, and sends Discourse nothing more", async () => {
    const { both, writes, canvasApi, discourse, store, db, course } = await mirroredCourse();
    const entry = (await store.list(course, "post")).find((p) => p.external.canvas === "61001")!;
    expect(entry.external.discourse).toBe("1002");
    // Gone from the forum for good (a 404), while the entry is edited in Canvas.
    discourse.state.posts.delete(1002);
    const topic = discourse.state.requireTopic(301);
    topic.post_ids = topic.post_ids.filter((id) => id !== 1002);
    const edited = "<p>Hi! I'm Priya, a nursing major (second year).</p>";
    await canvasApi("PUT", "/discussion_topics/41001/entries/61001", { message: edited });
    for (let round = 0; round < 3; round++) for (const result of await both()) expect(result.pushed.failed).toEqual([]);

    expect(await store.find<"post">(entry.url)).toMatchObject({ message: edited });
    const status = await db.selectFrom("entity_sync_status").selectAll().where("doc_url", "=", entry.url).executeTakeFirstOrThrow();
    expect(status).toMatchObject({ canvas: "in_sync", discourse: "conflict" });
    expect(await db.selectFrom("remote_conflicts").select(["system", "resolution"]).where("doc_url", "=", entry.url).execute()).toEqual([{ system: "discourse", resolution: expect.stringContaining("deleted in discourse, still in canvas") }]);
    const before = writes().length;
    await both();
    expect(writes().slice(before)).toEqual([]);
  });
});
