import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { discourseInstance, identityOf, instant, postAuthor, postFrom, topicFrom, urlOf, userFrom, type Imported } from "../../src/connectors/discourse/discourse-mapping.js";
import type { Kind } from "../../src/crdt/schema/kinds.js";
import { openTempStore } from "../../src/testing/temp-store.js";

type Payload = Record<string, unknown>;
const FIXTURES = join(import.meta.dirname, "../fixtures/lms/discourse");
const body = <T = Payload>(name: string): T => (JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), "utf8")) as { body: T }).body;
const instance = discourseInstance("https://forum.example.edu");

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

function setup() {
  const view = body("topic_301");
  const rest = body<{ post_stream: { posts: Payload[] } }>("topic_301_posts_with_raw").post_stream.posts;
  const stream = (view.post_stream as { posts: Payload[]; stream: number[] });
  // The view fixture was read without include_raw: the raw of its posts comes from the other fixtures.
  const raws = new Map<number, string>([[1002, String(body("post_1002").raw)]]);
  const byId = new Map<number, Payload>();
  for (const post of [...stream.posts, ...rest]) byId.set(post.id as number, { raw: raws.get(post.id as number) ?? `Raw of post ${String(post.id)}`, ...post });
  const posts = stream.stream.map((id) => byId.get(id)!);
  const numbers = new Map(posts.map((p) => [p.post_number as number, String(p.id)]));
  return { view, posts, numbers };
}

describe("Discourse payloads as documents", () => {
  it("maps the fixture topic into documents a store accepts, post #1 as the topic's message", async () => {
    const { store, close } = openTempStore();
    cleanups.push(close);
    const course = (await store.create("course", { name: "BIO 101", courseCode: "BIO101" } as never)).url;
    const { view, posts, numbers } = setup();
    const first = posts.find((p) => p.post_number === 1)!;
    const users = [...new Map(posts.map((p) => [p.user_id, userFrom(instance, postAuthor(p)!)])).values()];
    const topic = topicFrom(instance, course, view, first);
    const replies = posts.filter((p) => p !== first).map((p) => postFrom(instance, course, 301, p, numbers));
    const all: Array<Imported<Kind>> = [...users, topic, ...replies];
    for (const doc of all) {
      const created = await store.create(doc.kind, doc.fields as never, { identity: doc.identity });
      expect(created.url).toBe(doc.url);
    }
    expect(await store.records({ status: "invalid" })).toEqual([]);

    expect(topic.fields).toMatchObject({ title: "Introduce yourself", message: first.raw, author: urlOf(instance, "user", 21), postedAt: "2025-01-13T14:00:03.301Z", external: { discourse: "301" } });
    expect(replies).toHaveLength(3);
    expect(replies.map((r) => r.fields.external)).toEqual([{ discourse: "1002" }, { discourse: "1003" }, { discourse: "1004" }]);
    const [edited, plain, threaded] = replies.map((r) => r.fields);
    expect(edited).toMatchObject({ topic: topic.url, parent: null, author: urlOf(instance, "user", 31), message: raws1002(), editedAt: "2025-01-14T02:31:49.117Z", deleted: false });
    expect(plain!.editedAt).toBeNull();
    // Post #4 answers post #2: its parent is post #2's document, computed from its id.
    expect(threaded!.parent).toBe(urlOf(instance, "post", 1002));
    for (const reply of replies) expect(reply.fields.message).not.toContain("<p>");
  });

  it("reads a user from /u/{username}.json or from a post's fields as the same document", () => {
    const fromProfile = userFrom(instance, body<{ user: Payload }>("user_priya_n").user);
    const post = setup().posts.find((p) => p.username === "priya_n")!;
    expect(userFrom(instance, postAuthor(post)!)).toEqual(fromProfile);
    expect(fromProfile.fields).toMatchObject({ name: "Priya Natarajan", loginId: "priya_n", avatarUrl: expect.stringContaining("/120.png"), external: { discourse: "31" } });
  });

  it("keeps a deleted post as a placeholder with no message, and a reply to post #1 without a parent", async () => {
    const { store, close } = openTempStore();
    cleanups.push(close);
    const course = (await store.create("course", { name: "BIO 101", courseCode: "BIO101" } as never)).url;
    const post = { id: 2001, topic_id: 301, post_number: 5, user_id: 31, raw: "gone", reply_to_post_number: 1, created_at: "2025-01-20T17:05:45.066Z", updated_at: "2025-01-21T10:00:00.000Z", deleted_at: "2025-01-21T10:00:00.000Z" };
    const doc = postFrom(instance, course, "301", post, new Map([[1, "1001"]]));
    expect(doc.fields).toMatchObject({ deleted: true, message: "", parent: null });
    await store.create(doc.kind, doc.fields as never, { identity: doc.identity });
    expect(await store.records({ status: "invalid" })).toEqual([]);
  });

  it("names one object the same on every laptop and apart on another forum", () => {
    expect(discourseInstance("https://forum.example.edu/sub").system).toBe("discourse:forum.example.edu");
    expect(identityOf(instance, "post", 1002)).toEqual({ system: "discourse:forum.example.edu", id: "post/1002" });
    expect(urlOf(instance, "topic", "301")).toBe(urlOf(instance, "topic", 301));
    expect(urlOf(discourseInstance("https://other.example.edu"), "topic", 301)).not.toBe(urlOf(instance, "topic", 301));
    expect(urlOf(instance, "user", null)).toBeNull();
    expect(instant("2025-01-20T12:05:45.066-05:00")).toBe("2025-01-20T17:05:45.066Z");
  });
});

function raws1002(): string {
  return String(body("post_1002").raw);
}
