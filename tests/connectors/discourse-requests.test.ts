import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { discourseInstance, postFrom, sendMarkKey, topicFrom, withoutSendMark } from "../../src/connectors/discourse/discourse-mapping.js";
import { createPostBody, createTopicBody, editPostBody, editTopicBody, heldRaw, outgoingRaw } from "../../src/connectors/discourse/discourse-requests.js";
import type { Entity } from "../../src/crdt/schema/document.js";
import { openTempStore } from "../../src/testing/temp-store.js";

type Payload = Record<string, unknown>;
const FIXTURES = join(import.meta.dirname, "../fixtures/lms/discourse");
const fixture = (name: string) => JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), "utf8")) as { _request: string; body: Payload };
/** The JSON body of a fixture's `_request` line (`POST /posts.json  {...}  (a note)`). */
const requestBody = (name: string): Payload => JSON.parse(/\{.*\}/.exec(fixture(name)._request)![0]) as Payload;
const instance = discourseInstance("https://forum.example.edu");
const KEY = "0b7e6c1a-3f52-4d8e-9a61-2c4f0e8d7b35";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

describe("Discourse request bodies", () => {
  it("sends a topic's title trimmed, its message as markdown with the send mark, and the category as a number", () => {
    const body = createTopicBody({ title: "  Lab 3: osmosis in potato cores ", message: "<p>Weigh the cores <strong>before</strong> soaking.</p>" }, "12", KEY);
    expect(body).toEqual({ title: "Lab 3: osmosis in potato cores", raw: `Weigh the cores **before** soaking.\n\n<!-- ordo:${KEY} -->`, category: 12 });
    expect(withoutSendMark(body.raw)).toBe("Weigh the cores **before** soaking.");
    expect(sendMarkKey(body.raw)).toBe(KEY);
  });

  it("threads a reply under a post, but names no post for a reply to the topic itself (post #1)", () => {
    expect(createPostBody({ message: "Same for us." }, 301, KEY, 3)).toEqual({ topic_id: 301, raw: `Same for us.\n\n<!-- ordo:${KEY} -->`, reply_to_post_number: 3 });
    expect(createPostBody({ message: "Same for us." }, "301", KEY, 1)).toEqual({ topic_id: 301, raw: `Same for us.\n\n<!-- ordo:${KEY} -->` });
    expect(createPostBody({ message: "Same for us." }, 301, KEY)).not.toHaveProperty("reply_to_post_number");
  });

  it("edits against the exact raw Discourse holds, mark included, and keeps the mark in the new raw", () => {
    const held = heldRaw("Two people per scope.", KEY);
    expect(editPostBody("Three people per scope.\n\n", held, KEY)).toEqual({ post: { raw: `Three people per scope.\n\n<!-- ordo:${KEY} -->`, original_text: `Two people per scope.\n\n<!-- ordo:${KEY} -->` } });
    expect(editPostBody("Three people per scope.", "Two people per scope.", null)).toEqual({ post: { raw: "Three people per scope.", original_text: "Two people per scope." } });
  });

  it("sends only the topic fields that change", () => {
    expect(editTopicBody({ title: " Introductions " })).toEqual({ topic: { title: "Introductions" } });
    expect(editTopicBody({ categoryId: "13" })).toEqual({ topic: { category_id: 13 } });
    expect(editTopicBody({})).toEqual({ topic: {} });
  });

  it("reads back, without the mark, exactly the text it sends (so a pull finds no change)", () => {
    for (const message of ["Plain text.", "Text with a trailing newline\n", "<p>HTML with <em>emphasis</em></p>", "- a list\n- of items"]) {
      expect(withoutSendMark(outgoingRaw(message, KEY))).toBe(outgoingRaw(message, null));
    }
  });
});

describe("the fixtures, payload to document to request", () => {
  /** A store with a course, and a way to keep mapped fields as a document and read them back. */
  async function setup() {
    const { store, close } = openTempStore();
    cleanups.push(close);
    const course = (await store.create("course", { name: "BIO 101", courseCode: "BIO101" } as never)).url;
    const stored = async <K extends "discussion_topic" | "post">(kind: K, fields: Payload): Promise<Entity<K>> => (await store.find<K>((await store.create(kind, fields as never)).url))!;
    return { course, stored };
  }

  it("gives back the create-topic request of a created topic", async () => {
    const { course, stored } = await setup();
    const sent = requestBody("create_topic_response");
    const first = fixture("create_topic_response").body;
    const view = { id: first.topic_id, title: sent.title, user_id: first.user_id, created_at: first.created_at };
    const topic = await stored("discussion_topic", topicFrom(instance, course, view, first).fields as Payload);
    const body = createTopicBody(topic, sent.category as number, KEY);
    expect({ ...body, raw: withoutSendMark(body.raw) }).toEqual(sent);
  });

  it("gives back the reply request of a created reply, threading included", async () => {
    const { course, stored } = await setup();
    const sent = requestBody("create_reply_response");
    const reply = fixture("create_reply_response").body;
    const fields = postFrom(instance, course, 301, reply, new Map([[2, 1002]])).fields as Payload;
    expect(fields.parent).toBeTruthy();
    const post = await stored("post", fields);
    const body = createPostBody(post, reply.topic_id as number, KEY, reply.reply_to_post_number as number);
    expect({ ...body, raw: withoutSendMark(body.raw) }).toEqual(sent);
  });

  it("gives back the edit of post 1002 against the raw it was read with, and the topic update as sent", async () => {
    const { course, stored } = await setup();
    const before = fixture("post_1002").body;
    const after = (fixture("update_post_response").body.post as Payload).raw as string;
    const post = await stored("post", postFrom(instance, course, 301, before, new Map()).fields as Payload);
    expect(editPostBody(after, post.message, null)).toEqual({ post: { raw: after, original_text: before.raw } });

    const sent = requestBody("update_topic_response");
    const title = (fixture("update_topic_response").body.basic_topic as Payload).title as string;
    expect(editTopicBody({ title, categoryId: 12 })).toEqual(sent);
  });
});
