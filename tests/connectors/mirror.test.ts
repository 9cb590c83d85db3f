import { afterEach, describe, expect, it } from "vitest";
import { connectorDb } from "../../src/connectors/connector-tables.js";
import { syncCanvas, syncDiscourse } from "../../src/connectors/connector-sync.js";
import type { DocUrl } from "../../src/crdt/ids.js";
import { Engine } from "../../src/engine.js";
import { DEFAULT_DISCOURSE_API_KEY, FakeCanvas, FakeDiscourse } from "../../src/testing/lms-fakes.js";
import { makeTempDir } from "../../src/testing/temp-dir.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A node connected to a fake Canvas course and the fake forum of that course. */
async function mirroredCourse() {
  const canvas = await FakeCanvas.start();
  const discourse = await FakeDiscourse.start();
  const temp = makeTempDir();
  const engine = await Engine.open({ dataDir: temp.dir, create: true });
  cleanups.push(() => canvas.close(), () => discourse.close(), temp.remove, () => engine.close());
  const store = engine.docs;
  const db = connectorDb(engine.db);
  const canvasSettings = { url: canvas.url, token: canvas.token, courseId: "4201" };
  await syncCanvas({ store, db, settings: canvasSettings });
  const course = `automerge:${(await store.records({ kind: "course" }))[0]!.id}` as DocUrl;
  const discourseSettings = { url: discourse.url, apiKey: DEFAULT_DISCOURSE_API_KEY, username: "system", categoryId: "12", course };
  const both = async () => [await syncCanvas({ store, db, settings: canvasSettings }), await syncDiscourse({ store, db, settings: discourseSettings })] as const;
  await both();
  const writes = () => [...canvas.requests, ...discourse.requests].filter((r) => r.method !== "GET");
  const canvasApi = async <T>(method: string, path: string, form?: Record<string, string>): Promise<T> => {
    const response = await fetch(`${canvas.url}/api/v1/courses/4201${path}`, { method, headers: { authorization: `Bearer ${canvas.token}`, ...(form ? { "content-type": "application/x-www-form-urlencoded" } : {}) }, body: form ? new URLSearchParams(form).toString() : undefined });
    return (await response.json()) as T;
  };
  const discourseApi = async <T>(method: string, path: string, user: string, json?: unknown): Promise<T> => {
    const response = await fetch(`${discourse.url}${path}`, { method, headers: { "api-key": DEFAULT_DISCOURSE_API_KEY, "api-username": user, ...(json ? { "content-type": "application/json" } : {}) }, body: json ? JSON.stringify(json) : undefined });
    return (await response.json()) as T;
  };
  return { store, db, course, both, writes, canvasApi, discourseApi, discourse };
}

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
