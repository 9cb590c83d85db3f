import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { FakeDiscourse, cookRaw, signDiscourseWebhook, type FakeDiscourseOptions } from "../../src/testing/fake-discourse/index.js";

const FIXTURES = new URL("../fixtures/lms/discourse/", import.meta.url);

let running: FakeDiscourse[] = [];
afterEach(async () => {
  await Promise.all(running.map((d) => d.close()));
  running = [];
});

async function setup(options: FakeDiscourseOptions = {}) {
  const discourse = await FakeDiscourse.start(options);
  running.push(discourse);
  const call = async (method: string, path: string, body?: unknown, username = discourse.username) => {
    const res = await fetch(`${discourse.url}${path}`, {
      method,
      headers: { "Api-Key": discourse.apiKey, "Api-Username": username, ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { res, status: res.status, text, json: (text === "" ? null : JSON.parse(text)) as any };
  };
  return { discourse, call };
}

/** A movable clock: tests cross the 300 s grace period and the 120 s memo without waiting. */
function movableClock(start = Date.parse("2025-02-03T10:00:00.000Z")) {
  let now = start;
  return { clock: () => now, advance: (ms: number) => (now += ms) };
}

describe("auth and transport", () => {
  it("answers a bad Api-Key with the 403 invalid_access body of the fixtures", async () => {
    const { discourse } = await setup();
    const res = await fetch(`${discourse.url}/t/301.json`, { headers: { "Api-Key": "nope", "Api-Username": "system" } });
    const expected = JSON.parse(readFileSync(new URL("errors.json", FIXTURES), "utf8")).errors.invalid_api_key;
    expect(res.status).toBe(403);
    expect(await res.json()).toEqual(expected.body);
  });

  it("refuses writes without a key with not_logged_in", async () => {
    const { discourse } = await setup();
    const res = await fetch(`${discourse.url}/posts.json`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ topic_id: 301, raw: "A reply long enough to be valid." }) });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error_type: string }).error_type).toBe("not_logged_in");
  });

  it("serves JSON for a .json suffix or Accept: application/json, and HTML otherwise", async () => {
    const { discourse } = await setup();
    const headers = { "Api-Key": discourse.apiKey, "Api-Username": "system" };
    const html = await fetch(`${discourse.url}/t/301`, { headers });
    expect(html.headers.get("content-type")).toContain("text/html");
    const viaAccept = await fetch(`${discourse.url}/t/301`, { headers: { ...headers, Accept: "application/json" } });
    expect(((await viaAccept.json()) as { id: number }).id).toBe(301);
  });

  it("impersonates the user named by Api-Username", async () => {
    const { call } = await setup();
    const created = await call("POST", "/posts.json", { topic_id: 301, raw: "Replying as Tomás through the admin key." }, "tomas_l");
    expect(created.json.username).toBe("tomas_l");
    expect(created.json.user_id).toBe(32);
  });
});

describe("categories", () => {
  it("lists the fixture categories and shows one", async () => {
    const { call } = await setup();
    const list = await call("GET", "/categories.json?include_subcategories=true");
    expect(list.json.category_list.categories.map((c: { id: number }) => c.id)).toEqual([1, 12]);
    const show = await call("GET", "/c/12/show.json");
    expect(show.json.category).toMatchObject({ id: 12, slug: "bio-101", topic_count: 2, topic_url: "/t/about-the-bio-101-category/300" });
  });

  it("creates a category with its pinned About topic", async () => {
    const { call, discourse } = await setup();
    const created = await call("POST", "/categories.json", { name: "BIO 102", color: "3AB54A", text_color: "FFFFFF" });
    expect(created.status).toBe(200);
    const category = created.json.category;
    expect(category.topic_url).toMatch(/^\/t\/about-the-bio-102-category\/\d+$/);
    const listing = await call("GET", `/c/${category.slug}/${category.id}.json`);
    expect(listing.json.topic_list.topics[0]).toMatchObject({ title: "About the BIO 102 category", pinned: true });
    expect(discourse.state.categories.get(category.id)?.about_topic_id).toBeTypeOf("number");
    const duplicate = await call("POST", "/categories.json", { name: "BIO 102" });
    expect(duplicate.status).toBe(422);
    expect(duplicate.json.error_type).toBe("record_invalid");
  });
});

describe("topics", () => {
  it("shows topic 301 with post_stream and stream, cooked but no raw", async () => {
    const { call } = await setup();
    const topic = await call("GET", "/t/301.json");
    expect(topic.json.post_stream.stream).toEqual([1001, 1002, 1003, 1004]);
    expect(topic.json.post_stream.posts[1]).toMatchObject({ id: 1002, version: 1, cooked: expect.stringContaining("I\u2019m") });
    expect(topic.json.post_stream.posts[1].raw).toBeUndefined();
    expect(topic.json.chunk_size).toBe(20);
    const bySlug = await call("GET", "/t/anything/301.json");
    expect(bySlug.json.id).toBe(301);
  });

  it("chunks post_stream at 20 posts and serves the rest by post_ids[]", async () => {
    const { call, discourse } = await setup({ scale: { topics: 1, postsPerTopic: 45 } });
    const big = [...discourse.state.topics.values()].find((t) => t.post_ids.length === 45)!;
    const view = await call("GET", `/t/${big.id}.json`);
    expect(view.json.post_stream.posts).toHaveLength(20);
    expect(view.json.post_stream.stream).toHaveLength(45);
    const rest: number[] = view.json.post_stream.stream.slice(20);
    const query = rest.map((id) => `post_ids[]=${id}`).join("&");
    const more = await call("GET", `/t/${big.id}/posts.json?${query}&include_raw=true`);
    expect(more.json.post_stream.posts.map((p: { id: number }) => p.id)).toEqual(rest);
    expect(more.json.post_stream.posts[0].raw).toContain("generated discussion");
  });

  it("lists a category with the pinned About topic first and more_topics_url only on full pages", async () => {
    const { call } = await setup({ scale: { topics: 4, postsPerTopic: 1 } });
    const first = await call("GET", "/c/bio-101/12.json?per_page=3");
    expect(first.json.topic_list.topics[0].id).toBe(300);
    expect(first.json.topic_list.more_topics_url).toBe("/c/bio-101/12/l/latest?per_page=3&page=1");
    const second = await call("GET", "/c/bio-101/12/l/latest.json?per_page=3&page=1");
    expect(second.json.topic_list.topics).toHaveLength(3);
    const last = await call("GET", "/c/bio-101/12/l/latest.json?per_page=3&page=2");
    expect(last.json.topic_list.more_topics_url).toBeUndefined();
  });

  it("lists /latest by bumped_at and pages with a .json-less more_topics_url", async () => {
    const { call } = await setup();
    const page = await call("GET", "/latest.json?order=activity&per_page=2");
    expect(page.json.topic_list.topics.map((t: { id: number }) => t.id)).toEqual([301, 302]);
    expect(page.json.topic_list.more_topics_url).toBe("/latest?order=activity&per_page=2&page=1");
  });

  it("updates title and category without bumping the topic", async () => {
    const { call, discourse } = await setup();
    const bumped = discourse.state.topics.get(301)!.bumped_at;
    const updated = await call("PUT", "/t/-/301.json", { topic: { title: "Introduce yourself (BIO 101)", category_id: 12 } });
    expect(updated.json).toEqual({ basic_topic: { id: 301, title: "Introduce yourself (BIO 101)", fancy_title: "Introduce yourself (BIO 101)", slug: "introduce-yourself-bio-101", posts_count: 4 } });
    expect(discourse.state.topics.get(301)!.bumped_at).toBe(bumped);
  });
});

describe("posts", () => {
  it("creates a topic and returns its first post with 200", async () => {
    const { call } = await setup();
    const created = await call("POST", "/posts.json", { title: "Cell division help thread", raw: "Ask anything about mitosis vs meiosis.", category: 12 });
    expect(created.status).toBe(200);
    expect(created.json).toMatchObject({ id: 1006, topic_id: 303, post_number: 1, topic_slug: "cell-division-help-thread", raw: "Ask anything about mitosis vs meiosis.", cooked: "<p>Ask anything about mitosis vs meiosis.</p>" });
    expect(created.json.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it("returns the same post for an identical create within 120 s, and a new one after", async () => {
    const time = movableClock();
    const { call, discourse } = await setup({ clock: time.clock });
    const reply = { topic_id: 302, raw: "Same here, membranes are wild.", reply_to_post_number: 1 };
    const a = await call("POST", "/posts.json", reply);
    const b = await call("POST", "/posts.json", reply);
    expect(b.json.id).toBe(a.json.id);
    expect(discourse.state.topics.get(302)!.post_ids).toHaveLength(2);
    time.advance(121_000);
    const c = await call("POST", "/posts.json", reply);
    expect(c.status).toBe(422);
    expect(c.json).toEqual({ action: "create_post", errors: ["Body is too similar to what you recently posted"] });
  });

  it("refuses short titles and bodies and duplicate titles with 422 create_post", async () => {
    const { call } = await setup();
    const short = await call("POST", "/posts.json", { title: "Short", raw: "tiny", category: 12 });
    expect(short.status).toBe(422);
    expect(short.json.action).toBe("create_post");
    expect(short.json.error_type).toBeUndefined();
    expect(short.json.errors).toHaveLength(2);
    const duplicate = await call("POST", "/posts.json", { title: "Introduce yourself", raw: "A body long enough for a first post.", category: 12 });
    expect(duplicate.json.errors).toEqual(["Title has already been used"]);
  });

  it("gets a post with raw and cooked that differ by typographic quotes", async () => {
    const { call } = await setup();
    const post = await call("GET", "/posts/1002.json");
    expect(post.json.raw).toContain("I'm Priya");
    expect(post.json.cooked).toContain("I\u2019m Priya");
    expect(cookRaw(`He said "hi" and it's **bold**`)).toBe("<p>He said \u201chi\u201d and it\u2019s <strong>bold</strong></p>");
  });

  it("keeps the version for same-user edits inside 300 s and bumps it otherwise", async () => {
    const time = movableClock();
    const { call } = await setup({ clock: time.clock });
    const first = await call("PUT", "/posts/1002.json", { post: { raw: "Hi! I'm Priya, a nursing major, edited once.", edit_reason: "typo" } }, "priya_n");
    expect(first.json.post.version).toBe(2); // the seeded version is long past its grace period
    time.advance(60_000);
    const second = await call("PUT", "/posts/1002.json", { post: { raw: "Hi! I'm Priya, a nursing major, edited twice." } }, "priya_n");
    expect(second.json.post.version).toBe(2);
    expect(second.json.post.updated_at).not.toBe(first.json.post.updated_at);
    const other = await call("PUT", "/posts/1002.json", { post: { raw: "Hi! I'm Priya, edited by the teacher now." } }, "maria_okafor");
    expect(other.json.post.version).toBe(3);
    time.advance(301_000);
    const late = await call("PUT", "/posts/1002.json", { post: { raw: "Hi! I'm Priya, teacher edit after the window." } }, "maria_okafor");
    expect(late.json.post).toMatchObject({ version: 4, edit_reason: "typo" });
  });

  it("answers 409 when original_text is stale", async () => {
    const { call, discourse } = await setup();
    discourse.state.editPost(1002, { raw: "Someone else changed this post first.", editor_id: 21 });
    const res = await call("PUT", "/posts/1002.json", { post: { raw: "My edit that is now stale, sadly.", original_text: "Hi! I'm Priya, a **nursing** major. I want to understand how cell membranes decide what gets in." } });
    expect(res.status).toBe(409);
    expect(res.json.errors).toHaveLength(1);
  });

  it("accepts form bodies with bracket nesting", async () => {
    const { discourse } = await setup();
    const res = await fetch(`${discourse.url}/posts/1003.json`, {
      method: "PUT",
      headers: { "Api-Key": discourse.apiKey, "Api-Username": "system", "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ "post[raw]": "Edited through a form body, long enough.", "post[edit_reason]": "form" }).toString(),
    });
    expect(((await res.json()) as { post: unknown }).post).toMatchObject({ raw: "Edited through a form body, long enough.", edit_reason: "form" });
  });

  it("soft-deletes a post with an empty 200 and drops it from the stream", async () => {
    const { call } = await setup();
    const deleted = await call("DELETE", "/posts/1003.json");
    expect(deleted.status).toBe(200);
    expect(deleted.text).toBe("");
    expect((await call("GET", "/t/301.json")).json.post_stream.stream).toEqual([1001, 1002, 1004]);
    expect((await call("GET", "/posts/1003.json")).json.deleted_at).toMatch(/Z$/);
    expect((await call("GET", "/posts/1003.json", undefined, "priya_n")).status).toBe(404);
  });

  it("deletes the topic when post #1 is deleted", async () => {
    const { call, discourse } = await setup();
    await call("DELETE", "/posts/1001.json");
    expect(discourse.state.topics.get(301)!.deleted_at).not.toBeNull();
    expect((await call("GET", "/t/301.json", undefined, "priya_n")).status).toBe(404);
    expect((await call("GET", "/latest.json")).json.topic_list.topics.map((t: { id: number }) => t.id)).not.toContain(301);
  });

  it("pages /posts.json newest first with an inclusive before", async () => {
    const { call } = await setup();
    const latest = await call("GET", "/posts.json");
    expect(latest.json.latest_posts.map((p: { id: number }) => p.id)).toEqual([1005, 1004, 1003, 1002, 1001, 1000]);
    const before = await call("GET", "/posts.json?before=1003");
    expect(before.json.latest_posts[0]).toMatchObject({ id: 1003, topic_title: "Introduce yourself", raw: expect.any(String) });
  });

  it("shows a user", async () => {
    const { call } = await setup();
    const user = await call("GET", "/u/priya_n.json");
    expect(user.json.user).toMatchObject({ id: 31, username: "priya_n", external_id: "canvas-7101" });
    expect((await call("GET", "/u/nobody.json")).json.error_type).toBe("not_found");
  });
});

describe("faults", () => {
  it("serves a JSON 429 with Retry-After and extras.wait_seconds, then recovers", async () => {
    const { call, discourse } = await setup();
    discourse.faults.inject({ kind: "rate-limit", path: "/t/301.json", retryAfter: 7, times: 2 });
    const first = await call("GET", "/t/301.json");
    expect(first.status).toBe(429);
    expect(first.res.headers.get("retry-after")).toBe("7");
    expect(first.res.headers.get("discourse-rate-limit-error-code")).toBe("admin_api_key_rate_limit");
    expect(first.json).toMatchObject({ error_type: "rate_limit", extras: { wait_seconds: 7 } });
    expect((await call("GET", "/t/302.json")).status).toBe(200);
    expect((await call("GET", "/t/301.json")).status).toBe(429);
    expect((await call("GET", "/t/301.json")).status).toBe(200);
  });

  it("serves the plain-text per-IP 429, 500, 503 and dropped connections", async () => {
    const { call, discourse } = await setup();
    discourse.faults.inject({ kind: "rate-limit-ip" });
    const ip = await call("GET", "/latest.json").catch(() => null);
    expect(ip).toBeNull(); // JSON.parse of the text body fails: the body is not JSON
    discourse.faults.inject({ kind: "server-error", method: "GET" });
    expect((await fetch(`${discourse.url}/latest.json`)).status).toBe(500);
    discourse.faults.inject({ kind: "read-only", method: "POST", path: /^\/posts/ });
    expect((await call("POST", "/posts.json", { topic_id: 301, raw: "Blocked by read only mode." })).json.error_type).toBe("read_only");
    discourse.faults.inject({ kind: "drop" });
    await expect(fetch(`${discourse.url}/latest.json`)).rejects.toThrow();
    discourse.faults.inject({ kind: "rate-limit-ip", retryAfter: 3 });
    const text = await fetch(`${discourse.url}/latest.json`);
    expect(text.headers.get("content-type")).toBe("text/plain");
    expect(await text.text()).toContain("Please retry again in 3 seconds.\nError code: ip_10_secs_limit.");
  });
});

describe("webhooks", () => {
  async function receiver() {
    const received: { headers: IncomingMessage["headers"]; body: string }[] = [];
    const server: Server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        received.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
        res.end("ok");
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/discourse`;
    return { received, url, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
  }

  it("signs like the fixtures do", () => {
    for (const file of ["webhook_ping.json", "webhook_post_edited.json"]) {
      const fixture = JSON.parse(readFileSync(new URL(file, FIXTURES), "utf8"));
      expect(signDiscourseWebhook(fixture.secret, fixture.body_raw)).toBe(fixture.headers["X-Discourse-Event-Signature"]);
    }
  });

  it("posts signed post_created and topic_created events for a new topic", async () => {
    const hook = await receiver();
    try {
      const secret = "s3cret";
      const { call, discourse } = await setup({ webhook: { url: hook.url, secret } });
      await call("POST", "/posts.json", { title: "Webhooks arrive for this topic", raw: "The first post of a topic with webhooks.", category: 12 });
      await discourse.webhooks!.flush();
      expect(hook.received.map((r) => r.headers["x-discourse-event"]).sort()).toEqual(["post_created", "topic_created"]);
      for (const r of hook.received) {
        expect(r.headers["x-discourse-event-signature"]).toBe(signDiscourseWebhook(secret, r.body));
        expect(r.headers["x-discourse-event-id"]).toMatch(/^\d+$/);
      }
      const post = hook.received.find((r) => r.headers["x-discourse-event"] === "post_created")!;
      expect(post.headers["x-discourse-event-type"]).toBe("post");
      expect(JSON.parse(post.body).post).toMatchObject({ post_number: 1, category_slug: "bio-101", raw: "The first post of a topic with webhooks." });
    } finally {
      await hook.close();
    }
  });

  it("duplicates and reorders deliveries when asked, for remote edits made on the state", async () => {
    const hook = await receiver();
    try {
      const { discourse } = await setup({ webhook: { url: hook.url, secret: "x", duplicate: true, reorder: true, delayMs: 5 } });
      discourse.state.editPost(1003, { raw: "First remote edit of this post.", editor_id: 32 });
      discourse.state.editPost(1004, { raw: "Second remote edit of another post.", editor_id: 21 });
      await discourse.webhooks!.flush();
      const ids = hook.received.map((r) => Number(r.headers["x-discourse-event-id"]));
      expect(ids).toHaveLength(4);
      expect(new Set(ids).size).toBe(2);
      expect(ids[0]).toBeGreaterThan(ids[3]!);
      expect(discourse.webhooks!.deliveries.every((d) => d.status === 200)).toBe(true);
    } finally {
      await hook.close();
    }
  });
});
