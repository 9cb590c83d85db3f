// CONTRACT §5, Discourse side: every quirk the fake reproduces, and what the connector does about it.
// Each describe names a §5 item; a sub-point tested well elsewhere is named in a comment there.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { connectorDb } from "../../src/connectors/connector-tables.js";
import { discourseClient } from "../../src/connectors/discourse/discourse-client.js";
import { discourseInstance, urlOf } from "../../src/connectors/discourse/discourse-mapping.js";
import { pullDiscourseCategory } from "../../src/connectors/discourse/discourse-pull.js";
import { Engine } from "../../src/engine.js";
import { FakeDiscourse, pendingPosts, rebakePost, type DiscourseScale, type FakeDiscourseOptions } from "../../src/testing/fake-discourse/index.js";
import { makeTempDir } from "../../src/testing/temp-dir.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

type Obj = Record<string, unknown>;

/** A node pulling category 12 of a fake forum whose clock the test moves; the connector's waits are kept. */
async function setup(options: { scale?: DiscourseScale; settings?: FakeDiscourseOptions["settings"] } = {}) {
  let now = Date.parse("2025-01-22T12:00:00.000Z");
  const discourse = await FakeDiscourse.start({ clock: () => now, ...options });
  cleanups.push(() => discourse.close());
  const temp = makeTempDir();
  const engine = await Engine.open({ dataDir: temp.dir, create: true });
  cleanups.push(async () => {
    await engine.close();
    temp.remove();
  });
  const course = (await engine.docs.create("course", { name: "BIO 101", courseCode: "BIO101" } as never)).url;
  const instance = discourseInstance(discourse.url);
  const waits: number[] = [];
  const client = discourseClient({
    url: discourse.url,
    apiKey: () => discourse.apiKey,
    username: discourse.username,
    sleep: async (ms) => {
      waits.push(ms);
      now += ms;
    },
  });
  const pull = () => pullDiscourseCategory({ client, instance, store: engine.docs, db: connectorDb(engine.db), categoryId: 12, course });
  /** A plain request to the fake as one forum user (no connector involved). */
  const call = async (method: string, path: string, as = discourse.username, body?: unknown) => {
    const res = await fetch(`${discourse.url}${path}`, {
      method,
      headers: { "Api-Key": discourse.apiKey, "Api-Username": as, ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, json: (text === "" ? null : JSON.parse(text)) as Obj | null };
  };
  const url = (type: "user" | "topic" | "post", id: number | string) => urlOf(instance, type, id)!;
  return { discourse, engine, course, waits, pull, call, url, tick: (ms: number) => (now += ms) };
}

describe("§5.2 Discourse throttling: 429 with Retry-After and extras.wait_seconds, or a per-IP text 429", () => {
  it("waits as long as each kind of 429 says, then reads on", async () => {
    const { discourse, pull, waits } = await setup();
    discourse.faults.inject({ kind: "rate-limit", path: /^\/t\/301/, retryAfter: 7 });
    discourse.faults.inject({ kind: "rate-limit-action", path: /^\/t\/302/, retryAfter: 11 });
    discourse.faults.inject({ kind: "rate-limit-ip", path: /^\/c\//, retryAfter: 3 });
    const result = await pull();
    expect(result).toMatchObject({ failed: [], incomplete: [] });
    expect(waits).toEqual([3000, 7000, 11_000]);
    expect(discourse.faults.pending).toBe(0);
  });

  // extras.wait_seconds without Retry-After: http-client.test.ts ("waits as long as Discourse says").
  // Canvas's 403 throttle is in contract-quirks-canvas.test.ts.
});

describe("§5.4 Discourse shows the first 20 posts of a topic", () => {
  // Posts past the first 20, fetched by `stream` ids in chunks: discourse-pull.test.ts
  // ("follows every page of the topic list and every chunk of a long post stream", 23 posts a topic).
  it("reads every post of a stream longer than one chunk, raw included", async () => {
    const { discourse, engine, pull, url } = await setup({ scale: { topics: 1, postsPerTopic: 45 } });
    const [big] = [...discourse.state.topics.values()].filter((t) => t.post_ids.length === 45);
    expect((await pull()).incomplete).toEqual([]);
    for (const id of big!.post_ids.slice(1)) {
      expect((await engine.docs.find<"post">(url("post", id)))?.message).toBe(discourse.state.requirePost(id).raw);
    }
  });
});

describe("§5.5 HTML vs raw drift (Discourse)", () => {
  it("takes raw, never cooked, so a rebake that changes cooked without a new version changes nothing here", async () => {
    const { discourse, engine, pull, url } = await setup();
    const post = discourse.state.insertPost({ topic_id: 301, raw: "The osmosis video from class:\n\nhttps://video.example.edu/osmosis", user_id: 21 });
    await pull();
    const before = { cooked: post.cooked, version: post.version, updated_at: post.updated_at };
    rebakePost(discourse.state, post.id);
    expect(post.cooked).not.toBe(before.cooked);
    expect(post.cooked).toContain('class="onebox"');
    expect({ version: post.version, updated_at: post.updated_at }).toEqual({ version: before.version, updated_at: before.updated_at });
    expect(await pull()).toMatchObject({ created: 0, updated: 0, failed: [] });
    expect((await engine.docs.find<"post">(url("post", post.id)))!.message).toBe(post.raw);
  });

  // Typographic quotes in cooked: fake-discourse.test.ts ("gets a post with raw and cooked that differ");
  // the topic's message is post #1's raw: discourse-pull.test.ts (first test). Canvas's HTML rewriting
  // is in contract-quirks-canvas.test.ts.
});

describe("§5.6 Discourse edit versions are not a write counter", () => {
  it("picks up a same-user edit inside the grace period, which keeps the version", async () => {
    const { discourse, engine, pull, tick, url } = await setup();
    await pull();
    discourse.state.editPost(1003, { raw: "Tomás here: onion cells look like bricks.", editor_id: 32 });
    await pull();
    const version = discourse.state.requirePost(1003).version;
    tick(60_000);
    discourse.state.editPost(1003, { raw: "Tomás here: onion cells look like little bricks.", editor_id: 32 });
    expect(discourse.state.requirePost(1003).version).toBe(version);
    expect(await pull()).toMatchObject({ updated: 1, failed: [] });
    expect((await engine.docs.find<"post">(url("post", 1003)))!.message).toBe("Tomás here: onion cells look like little bricks.");
  });

  it("takes a version that went down (staff hid a revision) in its stride", async () => {
    const { call, discourse, pull } = await setup();
    discourse.state.editPost(1002, { raw: "Priya again, with a better first sentence.", editor_id: 21 });
    await pull();
    const version = discourse.state.requirePost(1002).version;
    expect((await call("PUT", `/posts/1002/revisions/${version}/hide.json`)).status).toBe(200);
    expect(discourse.state.requirePost(1002).version).toBe(version - 1);
    expect(await pull()).toMatchObject({ created: 0, updated: 0, deleted: 0, failed: [] });
  });

  it("sees a retitled topic, which neither bumps it nor shows in /latest, as the same document", async () => {
    const { call, discourse, engine, pull, url } = await setup();
    await pull();
    const bumped = discourse.state.requireTopic(302).bumped_at;
    discourse.state.updateTopic(302, { title: "Osmosis questions, week two" });
    expect(discourse.state.requireTopic(302).bumped_at).toBe(bumped);
    const latest = (await call("GET", "/latest.json?order=activity&per_page=1"))!.json!.topic_list as { topics: Obj[] };
    expect(latest.topics[0]!.id).toBe(301);
    expect(await pull()).toMatchObject({ created: 0, updated: 1 });
    expect(await engine.docs.find<"discussion_topic">(url("topic", 302))).toMatchObject({ title: "Osmosis questions, week two" });
  });

  // A stale original_text answered 409: push-side (the connector does not edit posts yet); the fake's
  // answer is in fake-discourse.test.ts ("answers 409 when original_text is stale"), and the client
  // reports a 409 as a conflict (http-client.ts).
});

describe("§5.7 deletion semantics (Discourse)", () => {
  it("takes an author's self-delete, which rewrites raw and keeps the post in the stream, as a deletion", async () => {
    const { call, discourse, engine, pull, url } = await setup();
    await pull();
    expect((await call("DELETE", "/posts/1003.json", "tomas_l")).status).toBe(200);
    const post = discourse.state.requirePost(1003);
    expect(post).toMatchObject({ user_deleted: true, deleted_at: null, raw: "(post deleted by author)" });
    expect(discourse.state.visiblePosts(discourse.state.requireTopic(301)).map((p) => p.id)).toContain(1003);
    expect(await pull()).toMatchObject({ updated: 1, failed: [] });
    expect(await engine.docs.find<"post">(url("post", 1003))).toMatchObject({ deleted: true, message: "" });
  });

  it("brings a reply staff recovered back from its placeholder", async () => {
    const { call, discourse, engine, pull, url } = await setup();
    await pull();
    expect((await call("DELETE", "/posts/1003.json")).status).toBe(200);
    await pull();
    expect(await engine.docs.find<"post">(url("post", 1003))).toMatchObject({ deleted: true });
    expect((await call("PUT", "/posts/1003/recover.json")).status).toBe(200);
    expect(await pull()).toMatchObject({ updated: 1, failed: [] });
    expect(await engine.docs.find<"post">(url("post", 1003))).toMatchObject({ deleted: false, message: discourse.state.requirePost(1003).raw });
  });

  it("takes the topic as gone when its post #1 is deleted", async () => {
    const { call, engine, pull, url } = await setup();
    await pull();
    expect((await call("DELETE", "/posts/1005.json")).status).toBe(200);
    expect(await pull()).toMatchObject({ deleted: 1, failed: [] });
    expect(await engine.docs.find(url("topic", 302))).toBeUndefined();
  });

  it("threads replies by post number across the gaps deleted posts leave", async () => {
    const { discourse, engine, pull, url } = await setup();
    discourse.state.deletePost(1003, -1);
    const reply = discourse.state.insertPost({ topic_id: 301, raw: "Answering Maria's question about the stain.", user_id: 31, reply_to_post_number: 4 });
    expect(reply.post_number).toBe(5);
    await pull();
    expect(await engine.docs.find<"post">(url("post", reply.id))).toMatchObject({ parent: url("post", 1004) });
  });

  it("cannot delete a category that still has topics (403), only an empty one", async () => {
    // Admin-side: the connector deletes no categories; this checks the fake.
    const { call } = await setup();
    expect((await call("DELETE", "/categories/12.json")).status).toBe(403);
    const created = (await call("POST", "/categories.json", "system", { name: "BIO 102" })).json!.category as Obj;
    expect((await call("DELETE", `/categories/${String(created.id)}.json`)).status).toBe(200);
  });

  // Staff deletes (gone from `stream`) and deleted topics: discourse-pull.test.ts ("marks a post deleted
  // remotely ... tombstones a deleted topic"). 404 for non-staff, visible to staff: fake-discourse.test.ts
  // ("soft-deletes a post"); the connector reads as `system`, and a post read with `deleted_at` maps to a
  // placeholder (discourse-mapping.test.ts). The About topic a new category gets is no discussion:
  // discourse-pull.test.ts (first test lists only the two real topics). Canvas deletions are in
  // contract-quirks-canvas.test.ts.
});

describe("§5.8 create quirks and idempotency (Discourse)", () => {
  // Push-side beyond replies: these check the fake.
  it("answers a post that needs approval with 200, action enqueued and no post id, and adds nothing to the topic", async () => {
    const { call, discourse } = await setup({ settings: { approveUnlessTrustLevel: 3 } });
    const before = discourse.state.requireTopic(301).post_ids.length;
    const res = await call("POST", "/posts.json", "tomas_l", { topic_id: 301, raw: "A reply that waits for a moderator." });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ action: "enqueued", pending_post: { raw: "A reply that waits for a moderator." } });
    expect(res.json).not.toHaveProperty("id");
    expect(res.json).not.toHaveProperty("post_number");
    expect(discourse.state.requireTopic(301).post_ids).toHaveLength(before);
    expect(pendingPosts(discourse.state)).toHaveLength(1);
    // Staff skip the queue.
    expect((await call("POST", "/posts.json", "maria_okafor", { topic_id: 301, raw: "A teacher's reply goes straight in." })).json).toMatchObject({ post_number: before + 1 });
  });

  // Create answers 200 with the post: fake-discourse.test.ts ("creates a topic and returns its first post
  // with 200") and discourse-push.test.ts. The 120 s memo and "too similar": fake-discourse.test.ts
  // ("returns the same post for an identical create within 120 s"); duplicate titles and minimum
  // lengths: fake-discourse.test.ts ("refuses short titles and bodies"). Canvas creates are in
  // contract-quirks-canvas.test.ts.
});

describe("§5.9 unstable identifiers (Discourse)", () => {
  it("follows a renamed user: users are keyed by id", async () => {
    const { discourse, engine, pull, url } = await setup();
    await pull();
    const users = (await engine.docs.records({ kind: "user" })).length;
    discourse.state.users.get(31)!.username = "priya_natarajan";
    expect(await pull()).toMatchObject({ created: 0, updated: 1 });
    expect(await engine.docs.find<"user">(url("user", 31))).toMatchObject({ loginId: "priya_natarajan" });
    expect(await engine.docs.records({ kind: "user" })).toHaveLength(users);
  });

  it("maps a system user's negative id like any other", async () => {
    const { discourse, engine, pull, url } = await setup();
    const notice = discourse.state.insertPost({ topic_id: 301, raw: "This topic will close a week after the last reply.", user_id: -1 });
    expect((await pull()).failed).toEqual([]);
    expect(await engine.docs.find<"post">(url("post", notice.id))).toMatchObject({ author: url("user", -1) });
    expect(await engine.docs.find<"user">(url("user", -1))).toMatchObject({ loginId: "system" });
  });

  it("lists a category whose slug is empty, every page of it", async () => {
    const { discourse, engine, course, pull } = await setup({ scale: { topics: 30, postsPerTopic: 1 } });
    discourse.state.categories.get(12)!.slug = "";
    expect(await pull()).toMatchObject({ failed: [], incomplete: [] });
    expect(await engine.docs.list(course, "discussion_topic")).toHaveLength(32);
    expect(discourse.requests.filter((r) => r.path.startsWith("/c/") && !r.path.includes("/show")).map((r) => r.status)).toEqual([200, 200]);
  });

  // A topic's slug changes with its title: the connector reads `/t/{id}.json`, and the retitled topic
  // in §5.6 stays one document. Canvas identifiers are in contract-quirks-canvas.test.ts.
});

describe("§5.10 timestamps (Discourse)", () => {
  it("reads millisecond Z timestamps as instants", async () => {
    const { discourse, engine, pull, url } = await setup();
    await pull();
    const createdAt = discourse.state.requireTopic(301).created_at;
    expect(createdAt).toMatch(/\.\d{3}Z$/);
    expect(await engine.docs.find<"discussion_topic">(url("topic", 301))).toMatchObject({ postedAt: new Date(createdAt).toISOString() });
  });
});

describe("also worth faking (Discourse)", () => {
  // `more_topics_url` without `.json`: discourse-pull.test.ts ("follows every page of the topic list",
  // asserting the `/l/latest.json?...page=1` request).

  it("delivers each webhook once, unretried, whatever the receiver answers", async () => {
    // The connector takes no webhooks yet (pulls reconcile); this checks the fake.
    const received: string[] = [];
    const receiver = createServer((req, res) => {
      received.push(String(req.headers["x-discourse-event-id"]));
      req.resume();
      res.statusCode = 500;
      res.end();
    });
    await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise<void>((resolve) => receiver.close(() => resolve())));
    const discourse = await FakeDiscourse.start({ webhook: { url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`, secret: "s" } });
    cleanups.push(() => discourse.close());
    discourse.state.editPost(1003, { raw: "An edit whose webhook the receiver refuses.", editor_id: 32 });
    await discourse.webhooks!.flush();
    await discourse.webhooks!.flush();
    expect(received).toHaveLength(1);
    expect(discourse.webhooks!.deliveries.map((d) => d.status)).toEqual([500]);
  });

  // Unordered and duplicated deliveries: fake-discourse.test.ts ("duplicates and reorders deliveries").
});
