import { spawn } from "node:child_process";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { urlOf } from "../../src/connectors/discourse/discourse-mapping.js";
import { AWAITING_APPROVAL } from "../../src/connectors/discourse/discourse-push.js";
import type { DocUrl } from "../../src/crdt/ids.js";
import { discourseTestNode, type DiscourseTestNode } from "../../src/testing/discourse-node.js";
import { pendingPosts } from "../../src/testing/fake-discourse/discourse-moderation.js";
import type { FakeDiscourse } from "../../src/testing/fake-discourse/index.js";
import { makeTempDir } from "../../src/testing/temp-dir.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(options: Parameters<typeof discourseTestNode>[0] = {}): Promise<DiscourseTestNode> {
  const node = await discourseTestNode(options);
  cleanups.push(node.close);
  await node.pull();
  return node;
}

const creates = (discourse: FakeDiscourse) => discourse.requests.filter((r) => r.method === "POST" && r.path.startsWith("/posts")).length;
const writes = (node: DiscourseTestNode) => node.sent.length;

/** The id of a document in `records()`: its URL without the scheme. */
const idOf = (url: string): string => url.replace(/^automerge:/, "");

/** Every document's heads: a sync that changes nothing leaves them all as they were. */
async function heads(node: DiscourseTestNode): Promise<Map<string, string>> {
  return new Map((await node.engine.docs.records()).map((r) => [r.id, r.heads]));
}

/** A topic in Canvas's shape (HTML, a Canvas id) with a reply and a reply to that reply, as the Canvas pull leaves them. */
async function canvasThread(node: DiscourseTestNode) {
  const { engine, course } = node;
  const topic = await engine.docs.create("discussion_topic", { course, title: "Lab 3: osmosis in potato cores", message: "<p>Weigh the cores <strong>before</strong> and after soaking.</p>", published: true, external: { canvas: "77" } });
  const entry = await engine.docs.create("post", { course, topic: topic.url, parent: null, author: null, message: "<p>Our cores lost mass in the salt solution.</p>", external: { canvas: "501" } });
  const answer = await engine.docs.create("post", { course, topic: topic.url, parent: entry.url, author: null, message: "<p>Same for us: about <em>eight</em> percent.</p>", external: { canvas: "502" } });
  return { topic, entry, answer };
}

describe("replies written here reach Discourse exactly once", () => {
  it("sends a new reply once, and a pull brings it back as the same document, without the mark", async () => {
    const node = await setup();
    const reply = await node.engine.docs.create("post", { course: node.course, topic: urlOf(node.instance, "topic", 301), author: null, parent: null, message: "Onion cells are rectangular, like bricks." });
    expect(await node.push()).toMatchObject({ created: 1, failed: [] });
    expect(await node.push()).toMatchObject({ created: 0 });
    expect(creates(node.discourse)).toBe(1);
    const remoteId = (await node.engine.docs.find<"post">(reply.url))!.external.discourse!;
    expect(node.discourse.state.posts.get(Number(remoteId))?.raw).toContain("Onion cells are rectangular, like bricks.");
    const before = (await node.engine.docs.records({ kind: "post" })).length;
    await node.pull();
    expect((await node.engine.docs.records({ kind: "post" })).length).toBe(before);
    expect((await node.engine.docs.find<"post">(reply.url))!.message).toBe("Onion cells are rectangular, like bricks.");
  });

  it("posts a reply written by a forum user as that user, and one by an author the forum does not know as the configured user", async () => {
    const node = await setup();
    const topic = urlOf(node.instance, "topic", 301);
    const byPriya = await node.engine.docs.create("post", { course: node.course, topic, author: urlOf(node.instance, "user", 31), parent: null, message: "Guard cells swell when water flows in." });
    const byNobody = await node.engine.docs.create("post", { course: node.course, topic, author: null, parent: null, message: "A note from the teaching team about labs." });
    expect(await node.push()).toMatchObject({ created: 2, failed: [] });
    const authorOf = async (url: DocUrl) => node.discourse.state.requirePost(Number((await node.engine.docs.find<"post">(url))!.external.discourse)).user_id;
    expect(await authorOf(byPriya.url)).toBe(31);
    expect(await authorOf(byNobody.url)).toBe(-1);
    // What the pull reads back (author included) is what was sent: nothing to do.
    expect((await node.sync()).pulled).toMatchObject({ updated: 0, failed: [] });
  });

  it("leaves a reply whose answer was lost to a server error in doubt, and later finds it instead of sending it again", async () => {
    const node = await setup();
    const text = "Stomata closed when we moved the leaf into the dark.";
    const reply = await node.engine.docs.create("post", { course: node.course, topic: urlOf(node.instance, "topic", 301), author: null, parent: null, message: text });
    // Discourse makes the post; every answer to the request is lost to a 502.
    const realFetch = globalThis.fetch;
    globalThis.fetch = async (input, init) => {
      const response = await realFetch(input, init);
      return init?.method === "POST" ? new Response("", { status: 502 }) : response;
    };
    try {
      expect(await node.push()).toMatchObject({ created: 0, retrying: 1, failed: [] });
    } finally {
      globalThis.fetch = realFetch;
    }
    const made = () => [...node.discourse.state.posts.values()].filter((p) => p.raw.includes(text));
    expect(made()).toHaveLength(1);
    // Long past Discourse's 120 s memo of identical creates: sending again would be refused or doubled.
    node.tick(10 * 60_000);
    expect(await node.push()).toMatchObject({ created: 0, recovered: 1, failed: [] });
    expect(made()).toHaveLength(1);
    expect((await node.engine.docs.find<"post">(reply.url))!.external.discourse).toBe(String(made()[0]!.id));
  });

  it("after a crash between sending and recording, finds the post it made instead of making a second", async () => {
    const { node, written: reply } = await crashedAfterCreate((first) => first.engine.docs.create("post", { course: first.course, topic: urlOf(first.instance, "topic", 301), author: null, parent: null, message: "Chloroplasts were green dots near the walls." }));
    const made = [...node.discourse.state.posts.values()].filter((p) => p.raw.includes("Chloroplasts were green dots"));
    expect(made).toHaveLength(1);
    expect((await node.engine.docs.find<"post">(reply.url))!.external.discourse).toBe(String(made[0]!.id));
  });
});

describe("topics written here or mirrored from Canvas", () => {
  it("keeps a topic written here whose title starts like the category's About topic", async () => {
    const node = await setup();
    const topic = await node.engine.docs.create("discussion_topic", { course: node.course, title: "About the midterm exam next week", message: "It covers chapters one to four, bring a pencil." });
    const { pushed, pulled } = await node.sync();
    expect(pushed).toMatchObject({ created: 1, failed: [] });
    expect(pulled).toMatchObject({ deleted: 0, failed: [] });
    expect(await node.engine.docs.find(topic.url)).toMatchObject({ title: "About the midterm exam next week" });
  });

  it("creates a topic written here once, in the connected category, and the pull updates that same document", async () => {
    const node = await setup();
    const topic = await node.engine.docs.create("discussion_topic", { course: node.course, title: "Microscope sign-up for week 4", message: "Pick a slot below, **two** people per scope." });
    const before = await node.engine.docs.records({ kind: "discussion_topic" });
    expect(await node.push()).toMatchObject({ created: 1, failed: [] });
    const topicId = (await node.engine.docs.find<"discussion_topic">(topic.url))!.external.discourse!;
    const made = node.discourse.state.requireTopic(Number(topicId));
    expect(made).toMatchObject({ title: "Microscope sign-up for week 4", category_id: 12 });
    expect(node.discourse.state.firstPost(made).raw).toMatch(/^Pick a slot below, \*\*two\*\* people per scope\.\n\n<!-- ordo:[0-9a-f-]{36} -->$/);

    // The pull reads the topic back into the same document and changes nothing in it (it only
    // meets the topic's Discourse author, a user document, for the first time).
    const pushed = await heads(node);
    expect(await node.pull()).toMatchObject({ updated: 0, failed: [] });
    expect((await heads(node)).get(idOf(topic.url))).toBe(pushed.get(idOf(topic.url)));
    expect(await node.engine.docs.records({ kind: "discussion_topic" })).toHaveLength(before.length);

    const quiet = await heads(node);
    const second = await node.sync();
    expect(second.pushed).toMatchObject({ created: 0, edited: 0, recovered: 0 });
    expect(second.pulled).toMatchObject({ created: 0, updated: 0, failed: [] });
    expect(await heads(node)).toEqual(quiet);
    expect(creates(node.discourse)).toBe(1);
  });

  it("mirrors a Canvas discussion as a topic and its entries as threaded replies in markdown, and nothing echoes back", async () => {
    const node = await setup();
    const { topic, entry, answer } = await canvasThread(node);
    await node.engine.docs.create("discussion_topic", { course: node.course, title: "Quiz 2 moved to Friday", message: "<p>See you then.</p>", announcement: true, external: { canvas: "78" } });
    await node.engine.docs.create("discussion_topic", { course: node.course, title: "Draft: final project rubric", message: "<p>Not yet.</p>", published: false, external: { canvas: "79" } });

    expect(await node.push()).toMatchObject({ created: 3, failed: [] });
    const mirrored = (await node.engine.docs.find<"discussion_topic">(topic.url))!;
    expect(mirrored.external).toEqual({ canvas: "77", discourse: expect.any(String) });
    const remote = node.discourse.state.requireTopic(Number(mirrored.external.discourse));
    expect(node.discourse.state.firstPost(remote).raw).toContain("Weigh the cores **before** and after soaking.");
    const [first, second] = node.discourse.state.visiblePosts(remote).slice(1);
    expect(first?.raw).toContain("Our cores lost mass in the salt solution.");
    expect(second?.raw).toContain("Same for us: about *eight* percent.");
    expect(second?.reply_to_post_number).toBe(first?.post_number);
    expect((await node.engine.docs.find<"post">(entry.url))!.external).toEqual({ canvas: "501", discourse: String(first!.id) });
    expect((await node.engine.docs.find<"post">(answer.url))!.external).toEqual({ canvas: "502", discourse: String(second!.id) });
    // The announcement and the unpublished draft stay in Canvas.
    expect(node.discourse.state.topics.size).toBe(4);

    const pushed = await heads(node);
    const sentBefore = writes(node);
    expect(await node.pull()).toMatchObject({ updated: 0, failed: [] });
    for (const url of [topic.url, entry.url, answer.url]) expect((await heads(node)).get(idOf(url))).toBe(pushed.get(idOf(url)));
    const quiet = await heads(node);
    const again = await node.sync();
    expect(again.pushed).toMatchObject({ created: 0, edited: 0 });
    expect(again.pulled).toMatchObject({ created: 0, updated: 0, failed: [] });
    expect(await heads(node)).toEqual(quiet);
    expect(writes(node)).toBe(sentBefore);
    // The pushed document keeps its Canvas HTML: Discourse got markdown, and reading it back is no change.
    expect((await node.engine.docs.find<"discussion_topic">(topic.url))!.message).toBe("<p>Weigh the cores <strong>before</strong> and after soaking.</p>");
  });

  it("joins a reply made in Discourse to a mirrored topic to that topic's document", async () => {
    const node = await setup();
    const { topic } = await canvasThread(node);
    await node.push();
    const topicId = Number((await node.engine.docs.find<"discussion_topic">(topic.url))!.external.discourse);
    const priya = node.discourse.state.userByName("priya_n")!;
    const post = node.discourse.state.createReply({ topic_id: topicId, raw: "Did anyone weigh them dry first?", user_id: priya.id });
    await node.pull();
    expect(await node.engine.docs.find<"post">(urlOf(node.instance, "post", post.id)!)).toMatchObject({ topic: topic.url, message: "Did anyone weigh them dry first?" });
  });

  it("links a Canvas discussion to a topic the category already has under its title, not yet read here, and mirrors its entries there", async () => {
    const node = await discourseTestNode();
    cleanups.push(node.close);
    const topic = await node.engine.docs.create("discussion_topic", { course: node.course, title: "Introduce yourself", message: "<p>Tell us your name and your major.</p>", external: { canvas: "41001" } });
    const entry = await node.engine.docs.create("post", { course: node.course, topic: topic.url, parent: null, author: null, message: "<p>Hej, Tomás here, engineering exchange student.</p>", external: { canvas: "61002" } });
    expect(await node.push()).toMatchObject({ created: 1, linked: 1, failed: [] });
    expect((await node.engine.docs.find<"discussion_topic">(topic.url))!.external).toEqual({ canvas: "41001", discourse: "301" });
    expect(node.discourse.state.topics.size).toBe(3);
    // Neither text is written over the other's.
    expect((await node.engine.docs.find<"discussion_topic">(topic.url))!.message).toBe("<p>Tell us your name and your major.</p>");
    expect(node.discourse.state.firstPost(node.discourse.state.requireTopic(301)).raw).not.toContain("Tell us your name and your major.");
    const mirrored = node.discourse.state.requirePost(Number((await node.engine.docs.find<"post">(entry.url))!.external.discourse));
    expect(mirrored).toMatchObject({ topic_id: 301 });
    // The pull reads the topic into the linked document, and its replies join the Canvas discussion.
    expect(await node.pull()).toMatchObject({ failed: [] });
    expect(await node.engine.docs.find(urlOf(node.instance, "topic", 301)!)).toBeUndefined();
    expect(await node.engine.docs.find<"post">(urlOf(node.instance, "post", 1002)!)).toMatchObject({ topic: topic.url });
    expect((await node.engine.docs.find<"discussion_topic">(topic.url))!.message).toBe("<p>Tell us your name and your major.</p>");
    const again = await node.sync();
    expect(again.pushed).toMatchObject({ created: 0, linked: 0, edited: 0, failed: [] });
  });

  it("reports a topic Discourse refuses, and sends it again only once the document changed", async () => {
    const node = await setup();
    const topic = await node.engine.docs.create("discussion_topic", { course: node.course, title: "Lab 4", message: "Bring goggles and a lab coat on Monday." });
    const refused = await node.push();
    expect(refused.failed).toEqual([{ url: topic.url, error: expect.stringContaining("Title must be at least 15 characters") }]);
    expect(await node.push()).toMatchObject({ created: 0, failed: [] });
    expect(creates(node.discourse)).toBe(1);
    node.tick(1_000);
    await node.engine.docs.change<"discussion_topic">(topic.url, (draft) => {
      draft.title = "Lab 4: safety briefing";
    });
    expect(await node.push()).toMatchObject({ created: 1, failed: [] });
  });

  it("after a crash between sending a topic and recording it, finds that topic instead of making a second", async () => {
    const { node, written: topic } = await crashedAfterCreate((first) => first.engine.docs.create("discussion_topic", { course: first.course, title: "Field trip to the pond", message: "Meet at the east gate at nine, boots on." }));
    const made = [...node.discourse.state.topics.values()].filter((t) => t.title === "Field trip to the pond");
    expect(made).toHaveLength(1);
    expect((await node.engine.docs.find<"discussion_topic">(topic.url))!.external.discourse).toBe(String(made[0]!.id));
    const { pulled } = await node.sync();
    expect(pulled).toMatchObject({ updated: 0, failed: [] });
    expect(await node.engine.docs.records({ kind: "discussion_topic" })).toHaveLength(3);
    expect(creates(node.discourse)).toBe(1);
  });

  it("keeps a topic Discourse queued for approval pending, never sends it again, and records it once approved", async () => {
    const node = await setup({ username: "priya_n", fake: { settings: { approveUnlessTrustLevel: 2 } } });
    const topic = await node.engine.docs.create("discussion_topic", { course: node.course, title: "Question about the midterm", message: "Will the Krebs cycle be on it?" });
    expect(await node.push()).toMatchObject({ created: 0, awaitingApproval: 1, failed: [] });
    const entry = await node.db.selectFrom("outbox").selectAll().where("doc_url", "=", topic.url).executeTakeFirstOrThrow();
    expect(entry).toMatchObject({ status: "pending", last_error: AWAITING_APPROVAL });
    expect(await node.push()).toMatchObject({ created: 0, awaitingApproval: 1 });
    expect(creates(node.discourse)).toBe(1);

    // A moderator approves it: the post as it was queued goes in.
    const queued = pendingPosts(node.discourse.state).at(-1)!;
    const priya = node.discourse.state.userByName("priya_n")!;
    const approved = node.discourse.state.createTopic({ title: "Question about the midterm", raw: queued.raw, category_id: 12, user_id: priya.id });
    node.tick(10 * 60_000);
    expect(await node.push()).toMatchObject({ created: 1, awaitingApproval: 0, failed: [] });
    expect(creates(node.discourse)).toBe(1);
    expect((await node.engine.docs.find<"discussion_topic">(topic.url as DocUrl))!.external.discourse).toBe(String(approved.topic_id));
  });
});

/** Runs a push in a child that hangs once its create's response is in, and kills it there. */
/**
 * A node that wrote something, then a child process killed between sending it to Discourse and
 * recording the answer, then the node opened again and its push run: it must find what was made.
 */
async function crashedAfterCreate<T>(write: (node: DiscourseTestNode) => Promise<T>): Promise<{ node: DiscourseTestNode; written: T }> {
  const temp = makeTempDir();
  cleanups.push(temp.remove);
  const first = await discourseTestNode({ dataDir: temp.dir });
  cleanups.push(() => first.discourse.close());
  await first.pull();
  const written = await write(first);
  await first.engine.close();

  await killAfterCreate(temp.dir, first.discourse, first.course);
  expect(creates(first.discourse)).toBe(1);

  const node = await discourseTestNode({ dataDir: temp.dir, fakeDiscourse: first.discourse, course: first.course });
  cleanups.push(node.close);
  expect(await node.push()).toMatchObject({ created: 0, recovered: 1, failed: [] });
  expect(creates(node.discourse)).toBe(1);
  return { node, written };
}

async function killAfterCreate(dataDir: string, discourse: FakeDiscourse, course: DocUrl): Promise<void> {
  const args = ["--import", "tsx", join(import.meta.dirname, "../fixtures/discourse-push-child.ts"), dataDir, discourse.url, discourse.apiKey, discourse.username, course, "12"];
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (chunk: Buffer) => chunk.toString().includes("sent") && resolve());
    child.once("exit", (code) => reject(new Error(`the child exited (${code}) before sending`)));
  });
  child.kill("SIGKILL");
  await new Promise((resolve) => child.once("exit", resolve));
}
