import type { Kysely } from "kysely";
import type { DocStore } from "../../crdt/doc-store.js";
import type { DocUrl } from "../../crdt/ids.js";
import { systemClock, type Clock } from "../../util/clock.js";
import type { ConnectorTables } from "../connector-tables.js";
import { RemoteError, type HttpClient } from "../http-client.js";
import type { Outbox, OutboxEntry } from "../outbox.js";
import { recordInSync, remoteIdOf } from "../remote-records.js";
import { sendMark } from "./discourse-mapping.js";

export interface DiscoursePushOptions {
  client: HttpClient;
  store: DocStore;
  db: Kysely<ConnectorTables>;
  outbox: Outbox;
  course: DocUrl;
  clock?: Clock;
}

export interface DiscoursePushResult {
  created: number;
  /** Entries a crash left in doubt whose post was found already made: recorded, not sent again. */
  recovered: number;
  retrying: number;
  failed: Array<{ url: string; error: string }>;
}

interface PostPayload {
  id: number | string;
  raw?: string;
  post_number?: number;
  updated_at?: string;
}

/**
 * Sends replies written on this node to their Discourse topics, exactly once. Each reply is
 * an outbox entry; its raw carries the entry's key (an HTML comment Discourse does not show).
 * An entry a crash left `sending` is settled first: if the topic holds a post with its key,
 * that post is the reply (recorded, never sent again); otherwise it is sent.
 */
export async function pushDiscourseReplies(options: DiscoursePushOptions): Promise<DiscoursePushResult> {
  const { store, db, outbox, client } = options;
  const clock = options.clock ?? systemClock;
  const result: DiscoursePushResult = { created: 0, recovered: 0, retrying: 0, failed: [] };

  for (const entry of await outbox.inDoubt("discourse")) {
    const found = await findSent(entry).catch(() => undefined);
    if (found) {
      await settle(entry, found);
      result.recovered++;
    } else if (found === null) {
      await outbox.failed(entry.id, "not found after a crash; sending again", { retryAt: clock() });
    }
  }

  // Replies written here to topics that are Discourse topics, not yet posts there.
  for (const post of await store.list(options.course, "post")) {
    if (post.deleted || post.external.discourse || !post.topic) continue;
    if (!(await remoteIdOf(db, "discourse", post.topic, "topic"))) continue;
    await outbox.enqueue("discourse", post.url, "create");
  }

  for (const entry of await outbox.due("discourse")) {
    const post = await store.find<"post">(entry.doc_url as DocUrl);
    const topicId = post?.topic ? await remoteIdOf(db, "discourse", post.topic, "topic") : undefined;
    if (!post || !topicId) {
      await outbox.failed(entry.id, "the reply or its topic is gone", { status: "failed" });
      continue;
    }
    await outbox.begin(entry.id);
    try {
      const replyTo = post.parent ? await postNumberOf(post.parent) : undefined;
      const response = await client.request<PostPayload>("POST", "/posts.json", {
        json: { topic_id: Number(topicId), raw: `${post.message}${sendMark(entry.idempotency_key)}`, ...(replyTo ? { reply_to_post_number: replyTo } : {}) },
      });
      await settle(entry, response.body);
      result.created++;
    } catch (error) {
      const retryable = error instanceof RemoteError && ["throttled", "server", "network"].includes(error.problem.kind);
      await outbox.failed(entry.id, (error as Error).message, retryable ? { retryAt: new Date(clock().getTime() + 60_000) } : { status: "failed" });
      if (retryable) result.retrying++;
      else result.failed.push({ url: entry.doc_url, error: (error as Error).message });
    }
  }
  return result;

  /** The post an in-doubt entry made, null if the topic has none with its key (undefined if unsure). */
  async function findSent(entry: OutboxEntry): Promise<PostPayload | null> {
    const post = await store.find<"post">(entry.doc_url as DocUrl);
    const topicId = post?.topic ? await remoteIdOf(db, "discourse", post.topic, "topic") : undefined;
    if (!topicId) return null;
    const mark = sendMark(entry.idempotency_key).trim();
    const topic = await client.request<{ post_stream?: { stream?: number[] } }>("GET", `/t/${topicId}.json`);
    const ids = topic.body.post_stream?.stream ?? [];
    // The newest posts first: a reply in doubt is one of the last made.
    for (let end = ids.length; end > 0; end -= 20) {
      const chunk = ids.slice(Math.max(0, end - 20), end);
      const posts = await client.request<{ post_stream?: { posts?: PostPayload[] } }>("GET", `/t/${topicId}/posts.json`, { query: { "post_ids[]": chunk, include_raw: "true" } });
      const match = posts.body.post_stream?.posts?.find((p) => p.raw?.includes(mark));
      if (match) return match;
    }
    return null;
  }

  async function settle(entry: OutboxEntry, post: PostPayload): Promise<void> {
    const url = entry.doc_url as DocUrl;
    await store.change<"post">(url, (draft) => {
      draft.external.discourse = String(post.id);
    });
    await outbox.sent(entry.id, { type: "post", id: String(post.id) });
    await recordInSync(db, store, { system: "discourse", type: "post", remoteId: String(post.id), url, remoteVersion: post.updated_at ?? null }, clock);
  }

  async function postNumberOf(parent: DocUrl): Promise<number | undefined> {
    const id = await remoteIdOf(db, "discourse", parent, "post");
    if (!id) return undefined;
    const response = await client.request<PostPayload>("GET", `/posts/${id}.json`).catch(() => undefined);
    return response?.body.post_number;
  }
}

