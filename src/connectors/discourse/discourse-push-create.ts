import type { DocUrl } from "../../crdt/ids.js";
import type { Entity } from "../../crdt/schema/document.js";
import type { OutboxEntry } from "../outbox.js";
import { recordInSync, remoteIdOf } from "../remote-records.js";
import { listTopics, readCategory } from "./discourse-category.js";
import { sendMark, urlOf, type DiscourseType } from "./discourse-mapping.js";
import { baseAfterPush, PUSHED_FIELDS, remotePostFields, remoteTopicFields } from "./discourse-push-bases.js";
import { isInvalid, recordFailure, type PostPayload, type PushContext } from "./discourse-push-context.js";
import { linkSameTitledTopic } from "./discourse-push-link.js";
import { createPostBody, createTopicBody } from "./discourse-requests.js";
import { recordTopicPlace } from "./discourse-topic-records.js";

/**
 * Creating topics and replies exactly once. The raw of each carries its outbox entry's key (an
 * HTML comment Discourse does not show), and the entry is `sending` before the request leaves.
 * A create whose answer is lost (a dropped connection, a timeout, a 5xx) is not repeated: its
 * entry stays `sending`, and the next push, like one after a crash, settles it by finding the
 * object with its key before anything is sent again. Discourse's 120 s memo of identical creates
 * would cover a quick retry, but not one after a restart or after throttled waits (a 429 asks
 * for 42 s and more), and a create sent twice would then be a second post, or be refused
 * ("Title has already been used", "Body is too similar") while the first one stands.
 *
 * A create Discourse puts in its approval queue (`action: "enqueued"`, no id) is neither sent
 * nor failed: the entry stays pending with `AWAITING_APPROVAL` as its note, is never sent again,
 * and is looked for now and then until a moderator approves it.
 */

/** The note of an entry whose create waits for a moderator. */
export const AWAITING_APPROVAL = "waiting for a Discourse moderator's approval; not sent again, recorded once approved";

/** How often a create awaiting approval is looked for: each look reads the category or the topic. */
export const APPROVAL_RECHECK_MS = 5 * 60_000;

type Payload = Record<string, unknown>;
type CreateAnswer = PostPayload | { action: "enqueued"; pending_post?: unknown };

interface ParentPost {
  postId: string;
  postNumber: number;
  url: DocUrl;
}

export async function sendTopicCreate(context: PushContext, entry: OutboxEntry, topic: Entity<"discussion_topic">): Promise<void> {
  const body = createTopicBody(topic, context.categoryId, entry.idempotency_key);
  if (!(await context.outbox.begin(entry.id))) return;
  try {
    const answer = await context.client.request<CreateAnswer>("POST", "/posts.json", { json: body, headers: await asAuthor(context, topic.author), once: true });
    if (await awaitedApproval(context, entry, answer.body)) return;
    const first = answer.body as PostPayload;
    const view = { id: first.topic_id, title: body.title, user_id: first.user_id, created_at: first.created_at, visible: true, closed: false, archived: false };
    await settleTopic(context, entry, view, first);
    context.result.created++;
  } catch (error) {
    if (isInvalid(error) && (await linkSameTitledTopic(context, entry, topic).catch(() => false))) context.result.linked++;
    else await recordFailure(context, entry, error);
  }
}

export async function sendReplyCreate(context: PushContext, entry: OutboxEntry, post: Entity<"post">): Promise<void> {
  const topicId = post.topic ? await remoteIdOf(context.db, "discourse", post.topic, "topic") : undefined;
  if (!topicId || !post.topic) {
    await context.outbox.failed(entry.id, "its topic is not a Discourse topic", { status: "failed" });
    context.result.failed.push({ url: entry.doc_url, error: "its topic is not a Discourse topic" });
    return;
  }
  const parent = post.parent ? await parentPost(context, post.parent) : null;
  if (!(await context.outbox.begin(entry.id))) return;
  try {
    const answer = await context.client.request<CreateAnswer>("POST", "/posts.json", { json: createPostBody(post, topicId, entry.idempotency_key, parent?.postNumber), headers: await asAuthor(context, post.author), once: true });
    if (await awaitedApproval(context, entry, answer.body)) return;
    await settleReply(context, entry, answer.body as PostPayload, { id: topicId, url: post.topic }, parent);
    context.result.created++;
  } catch (error) {
    await recordFailure(context, entry, error);
  }
}

/**
 * Settles a create a crash left in doubt, or one waiting for approval: records the object if
 * Discourse has it. An entry in doubt whose object is not there is sent again; one waiting for
 * approval keeps waiting. If Discourse cannot be read now, the entry is left as it is.
 */
export async function settleUnconfirmedCreate(context: PushContext, entry: OutboxEntry, awaitingApproval: boolean): Promise<void> {
  const doc = await context.store.find(entry.doc_url as DocUrl);
  if (!doc || (doc.kind !== "discussion_topic" && doc.kind !== "post")) {
    await context.outbox.failed(entry.id, "the document is gone", { status: "failed" });
    return;
  }
  let settled: boolean;
  try {
    settled = doc.kind === "discussion_topic" ? await settleFoundTopic(context, entry, doc as Entity<"discussion_topic">) : await settleFoundReply(context, entry, doc as Entity<"post">);
  } catch {
    // Discourse cannot be read now: the entry stays as it is until the next push.
    return;
  }
  if (settled) {
    if (awaitingApproval) context.result.created++;
    else context.result.recovered++;
  } else if (awaitingApproval) {
    await context.outbox.failed(entry.id, AWAITING_APPROVAL, { retryAt: new Date(context.clock().getTime() + APPROVAL_RECHECK_MS) });
  } else {
    await context.outbox.failed(entry.id, "not found after a crash; sending again", { retryAt: context.clock() });
  }
}

async function settleFoundTopic(context: PushContext, entry: OutboxEntry, topic: Entity<"discussion_topic">): Promise<boolean> {
  const found = await findTopic(context, topic.title, sendMark(entry.idempotency_key).trim());
  if (found) await settleTopic(context, entry, found.view, found.first);
  return found !== null;
}

async function settleFoundReply(context: PushContext, entry: OutboxEntry, post: Entity<"post">): Promise<boolean> {
  const topicId = post.topic ? await remoteIdOf(context.db, "discourse", post.topic, "topic") : undefined;
  if (!topicId || !post.topic) return false;
  const found = await findReply(context, topicId, sendMark(entry.idempotency_key).trim());
  if (!found) return false;
  const parent = post.parent && found.reply_to_post_number ? await parentPost(context, post.parent) : null;
  await settleReply(context, entry, found, { id: topicId, url: post.topic }, parent);
  return true;
}

async function awaitedApproval(context: PushContext, entry: OutboxEntry, answer: CreateAnswer): Promise<boolean> {
  if ((answer as { action?: unknown }).action === "enqueued") {
    await context.outbox.failed(entry.id, AWAITING_APPROVAL, { retryAt: new Date(context.clock().getTime() + APPROVAL_RECHECK_MS) });
    return true;
  }
  if ((answer as PostPayload).id === undefined) throw new Error("Discourse answered the create without a post");
  return false;
}

async function settleTopic(context: PushContext, entry: OutboxEntry, view: Payload, first: PostPayload): Promise<void> {
  const { store, db } = context;
  const url = entry.doc_url as DocUrl;
  const topicId = String(view.id as number);
  await store.change<"discussion_topic">(url, (draft) => {
    draft.external.discourse = topicId;
  });
  await context.outbox.sent(entry.id, { type: "topic", id: topicId });
  const doc = (await store.find(url, { includeDeleted: true }))!;
  const category = typeof view.category_id === "number" ? String(view.category_id) : context.categoryId;
  const remote = remoteTopicFields(context.instance, context.course, view, first as unknown as Payload, category);
  await recordInSync(db, store, { system: "discourse", type: "topic", remoteId: topicId, url, remoteVersion: first.version != null ? String(first.version) : null, base: baseAfterPush(doc, remote, PUSHED_FIELDS.discussion_topic) }, context.clock);
  await recordTopicPlace(db, url, { firstPostId: String(first.id) });
  await dropPulledCopy(context, "topic", topicId, url);
}

async function settleReply(context: PushContext, entry: OutboxEntry, post: PostPayload, topic: { id: string; url: DocUrl }, parent: ParentPost | null): Promise<void> {
  const { store, db } = context;
  const url = entry.doc_url as DocUrl;
  const postId = String(post.id);
  await store.change<"post">(url, (draft) => {
    draft.external.discourse = postId;
  });
  await context.outbox.sent(entry.id, { type: "post", id: postId });
  const doc = (await store.find(url, { includeDeleted: true }))!;
  const threaded = parent !== null && post.reply_to_post_number === parent.postNumber ? parent : null;
  const remote = remotePostFields(context.instance, context.course, post as unknown as Payload, { topicId: topic.id, topic: topic.url, parent: threaded });
  await recordInSync(db, store, { system: "discourse", type: "post", remoteId: postId, url, remoteVersion: post.version != null ? String(post.version) : null, base: baseAfterPush(doc, remote, PUSHED_FIELDS.post) }, context.clock);
  await dropPulledCopy(context, "post", postId, url);
}

/** A pull that ran while a create was in doubt made a document of its own for the object: the pushed document is the one. */
async function dropPulledCopy(context: PushContext, type: DiscourseType, remoteId: string, url: DocUrl): Promise<void> {
  const copy = urlOf(context.instance, type, remoteId);
  if (copy && copy !== url && (await context.store.find(copy))) await context.store.delete(copy);
}

/** The Discourse post a parent document is, with its number in the topic (what threading names). */
async function parentPost(context: PushContext, parent: DocUrl): Promise<ParentPost | null> {
  const postId = await remoteIdOf(context.db, "discourse", parent, "post");
  if (!postId) return null;
  const response = await context.client.request<PostPayload>("GET", `/posts/${encodeURIComponent(postId)}.json`).catch(() => undefined);
  const number = response?.body.post_number;
  return typeof number === "number" ? { postId, postNumber: number, url: parent } : null;
}

/**
 * The topic in the category whose post #1 carries `mark`. Titles are unique in a category, so
 * a topic with the document's title is looked at first; then, newest first, the topics this
 * node has no document for (Discourse may have tidied the title).
 */
async function findTopic(context: PushContext, title: string, mark: string): Promise<{ view: Payload; first: PostPayload } | null> {
  const { client, db } = context;
  const listed = await listTopics(client, (await readCategory(client, context.categoryId)).listPath);
  const known = new Set((await db.selectFrom("remote_ids").select("remote_id").where("system", "=", "discourse").where("remote_type", "=", "topic").execute()).map((row) => row.remote_id));
  const wanted = title.trim().toLowerCase();
  const titled = (t: Payload) => typeof t.title === "string" && t.title.trim().toLowerCase() === wanted;
  const candidates = listed.filter((t) => titled(t) || !known.has(String(t.id))).sort((a, b) => Number(titled(b)) - Number(titled(a)) || Number(b.id) - Number(a.id));
  for (const candidate of candidates) {
    const { body: view } = await client.request<Payload>("GET", `/t/${encodeURIComponent(String(candidate.id))}.json`, { query: { include_raw: "true" } });
    const posts = ((view.post_stream as Payload | undefined)?.posts as PostPayload[] | undefined) ?? [];
    const first = posts.find((p) => p.post_number === 1);
    if (first?.raw?.includes(mark)) return { view, first };
  }
  return null;
}

/** The post of a topic that carries `mark`, newest first: a reply in doubt is one of the last made. */
async function findReply(context: PushContext, topicId: string, mark: string): Promise<PostPayload | null> {
  const { client } = context;
  const topic = await client.request<{ post_stream?: { stream?: number[] } }>("GET", `/t/${encodeURIComponent(topicId)}.json`);
  const ids = topic.body.post_stream?.stream ?? [];
  for (let end = ids.length; end > 0; end -= 20) {
    const chunk = ids.slice(Math.max(0, end - 20), end);
    const posts = await client.request<{ post_stream?: { posts?: PostPayload[] } }>("GET", `/t/${encodeURIComponent(topicId)}/posts.json`, { query: { "post_ids[]": chunk, include_raw: "true" } });
    const match = posts.body.post_stream?.posts?.find((p) => p.raw?.includes(mark));
    if (match) return match;
  }
  return null;
}

/**
 * Posts by a Discourse user go out as that user: an admin API key may act as anyone
 * (`Api-Username`), so a student's reply written offline is the student's on the forum too.
 * Authors Discourse does not know (a Canvas user) post as the configured user.
 */
async function asAuthor(context: PushContext, author: DocUrl | null): Promise<Record<string, string>> {
  const user = author ? await context.store.find<"user">(author) : undefined;
  return user?.external.discourse && user.loginId ? { "api-username": user.loginId } : {};
}
