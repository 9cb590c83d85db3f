import type { DocUrl } from "../../crdt/ids.js";
import type { Entity } from "../../crdt/schema/document.js";
import { TEXT_FIELDS } from "../import-documents.js";
import type { OutboxEntry } from "../outbox.js";
import { reconcile, type FieldValues, type SyncBase } from "../reconcile.js";
import { recordInSync } from "../remote-records.js";
import { readBase, recordConflicts, strategyFor } from "../sync-base.js";
import { postFrom, sendMarkKey, withoutSendMark } from "./discourse-mapping.js";
import { baseAfterPush, changedHere, PUSHED_FIELDS } from "./discourse-push-bases.js";
import { isEditConflict, recordFailure, type PostPayload, type PushContext } from "./discourse-push-context.js";
import { editPostBody, editTopicBody, heldRaw, outgoingRaw, outgoingTitle } from "./discourse-requests.js";
import { CATEGORY_KEY, firstPostIdOf, recordTopicPlace } from "./discourse-topic-records.js";

/**
 * Sending edits of topics and posts. A message edit is `PUT /posts/{id}.json` with
 * `original_text` set to the raw the sync base says Discourse holds, so Discourse refuses it
 * (409) if someone else edited first. Then the post is read, the two versions reconciled by the
 * course's strategy for the kind (the conflict recorded), the document given what it must
 * take, and the edit sent again against the raw just read. A title has no such guard, so a
 * title change reads the topic first and reconciles the same way. Category moves and titles go
 * through `PUT /t/-/{id}.json`. Afterwards the base records what Discourse answered.
 */

/** 409s met in a row before an edit waits for the next push: each means another edit came in meanwhile. */
export const MAX_EDIT_ROUNDS = 3;

type Payload = Record<string, unknown>;

export async function sendUpdate(context: PushContext, entry: OutboxEntry, doc: Entity<"discussion_topic"> | Entity<"post">): Promise<void> {
  const url = entry.doc_url as DocUrl;
  const base = await readBase(context.db, url, "discourse");
  const remoteId = doc.external.discourse;
  if (!base || !remoteId) {
    // Only a pull makes a base for an object it did not create; until then there is nothing to compare with.
    await context.outbox.failed(entry.id, "not yet pulled from Discourse: sent after the next pull", { retryAt: context.clock() });
    return;
  }
  if (!(await context.outbox.begin(entry.id))) return;
  try {
    const type = doc.kind === "post" ? "post" : "topic";
    const sent = doc.kind === "post" ? await updatePost(context, doc as Entity<"post">, base) : await updateTopic(context, doc as Entity<"discussion_topic">, base);
    await context.outbox.sent(entry.id, { type, id: remoteId });
    if (sent) context.result.edited++;
  } catch (error) {
    await recordFailure(context, entry, error);
  }
}

/** Sends a reply's new message; a deleted reply sends nothing (deletions stay on the side they were made). */
async function updatePost(context: PushContext, doc: Entity<"post">, base: SyncBase): Promise<boolean> {
  const postId = doc.external.discourse!;
  if (doc.deleted || changedHere(doc, base, PUSHED_FIELDS.post).length === 0) {
    await record(context, doc.url, "post", postId, null, baseAfterPush(doc, base.remote, []));
    return false;
  }
  const { post, sent } = await editMessage(context, doc, base, postId);
  const mapped = postFrom(context.instance, context.course, post.topic_id ?? "", post as unknown as Payload, new Map()).fields;
  const remote = { ...base.remote, message: mapped.message, editedAt: mapped.editedAt };
  await record(context, doc.url, "post", postId, post.version, baseAfterPush(await current(context, doc.url), remote, PUSHED_FIELDS.post));
  return sent;
}

/** Sends a topic's new title, its move to the connected category, and its new message (post #1). */
async function updateTopic(context: PushContext, doc: Entity<"discussion_topic">, base: SyncBase): Promise<boolean> {
  const { client } = context;
  const topicId = doc.external.discourse!;
  const changed = changedHere(doc, base, PUSHED_FIELDS.discussion_topic);
  const move = typeof base.remote[CATEGORY_KEY] === "string" && base.remote[CATEGORY_KEY] !== context.categoryId;
  const remote: FieldValues = { ...base.remote };
  let sent = false;
  if (changed.includes("title") || move) {
    let title: string | undefined;
    if (changed.includes("title")) {
      const { body: view } = await client.request<Payload>("GET", `/t/${encodeURIComponent(topicId)}.json`);
      remote.title = view.title;
      title = await settleTitle(context, doc, base, String(view.title ?? ""));
    }
    if (title !== undefined || move) {
      const { body } = await client.request<{ basic_topic?: { title?: string } }>("PUT", `/t/-/${encodeURIComponent(topicId)}.json`, { json: editTopicBody({ title, categoryId: move ? context.categoryId : undefined }) });
      if (title !== undefined) remote.title = body.basic_topic?.title ?? outgoingTitle(title);
      if (move) remote[CATEGORY_KEY] = context.categoryId;
      sent = true;
    }
  }
  let version: number | undefined;
  if (changed.includes("message")) {
    const firstPostId = await firstPostOf(context, doc.url, topicId);
    const edit = await editMessage(context, await current(context, doc.url), base, firstPostId);
    remote.message = withoutSendMark(edit.post.raw ?? "");
    version = edit.post.version;
    sent ||= edit.sent;
  }
  await record(context, doc.url, "topic", topicId, version, baseAfterPush(await current(context, doc.url), remote, PUSHED_FIELDS.discussion_topic));
  return sent;
}

/**
 * Edits a post's message against the raw the base says it has. On a 409 the clash is settled
 * in Discourse's form (markdown, as sent), so a text merge compares like with like.
 */
async function editMessage(context: PushContext, doc: Entity, base: SyncBase, postId: string): Promise<{ post: PostPayload; sent: boolean }> {
  const { client, db, store } = context;
  const path = `/posts/${encodeURIComponent(postId)}.json`;
  let markKey = await createKeyOf(context, doc.url);
  let original = heldRaw(String(base.remote.message ?? ""), markKey);
  let sides: SyncBase = { local: { message: outgoingRaw(String(base.local.message ?? ""), null) }, remote: { message: base.remote.message } };
  let message = String((doc as unknown as { message: string }).message);
  for (let round = 1; ; round++) {
    try {
      const { body } = await client.request<{ post: PostPayload }>("PUT", path, { json: editPostBody(message, original, markKey) });
      return { post: body.post, sent: true };
    } catch (error) {
      if (!isEditConflict(error) || round >= MAX_EDIT_ROUNDS) throw error;
    }
    // Someone else edited first: read what Discourse holds and let the strategy decide.
    const { body: held } = await client.request<PostPayload>("GET", path);
    const latest = await current(context, doc.url);
    const here = outgoingRaw(String((latest as unknown as { message: string }).message), null);
    const strategy = await strategyFor(db, latest.course, latest.kind);
    const outcome = reconcile({ system: "discourse", base: sides, local: { message: here }, remote: { message: withoutSendMark(held.raw ?? "") }, strategy, localTime: latest.updatedAt, remoteTime: held.updated_at ?? null, textFields: TEXT_FIELDS });
    await recordConflicts(db, doc.url, "discourse", strategy, outcome.conflicts, context.clock);
    context.result.conflicts += outcome.conflicts.length;
    if ("message" in outcome.toLocal) {
      // Topics and replies both hold their text in `message`.
      await store.change(doc.url, (draft) => {
        (draft as unknown as { message: string }).message = String(outcome.toLocal.message);
      });
    }
    if (!("message" in outcome.toRemote)) return { post: held, sent: false };
    message = String(outcome.toRemote.message);
    original = held.raw ?? "";
    markKey = sendMarkKey(original);
    sides = outcome.nextBase;
  }
}

/** A title both sides changed is settled like a message; returns the title to send, if any. */
async function settleTitle(context: PushContext, doc: Entity<"discussion_topic">, base: SyncBase, remoteTitle: string): Promise<string | undefined> {
  const sides: SyncBase = { local: { title: outgoingTitle(String(base.local.title ?? "")) }, remote: { title: base.remote.title } };
  const strategy = await strategyFor(context.db, doc.course, doc.kind);
  const outcome = reconcile({ system: "discourse", base: sides, local: { title: outgoingTitle(doc.title) }, remote: { title: remoteTitle }, strategy, localTime: doc.updatedAt, remoteTime: null });
  await recordConflicts(context.db, doc.url, "discourse", strategy, outcome.conflicts, context.clock);
  context.result.conflicts += outcome.conflicts.length;
  if ("title" in outcome.toLocal) {
    await context.store.change<"discussion_topic">(doc.url, (draft) => {
      draft.title = String(outcome.toLocal.title);
    });
  }
  return "title" in outcome.toRemote ? String(outcome.toRemote.title) : undefined;
}

/** The outbox key of the create that made this document's Discourse post: its raw carries that mark. */
async function createKeyOf(context: PushContext, url: DocUrl): Promise<string | null> {
  const row = await context.db
    .selectFrom("outbox")
    .select("idempotency_key")
    .where("system", "=", "discourse")
    .where("doc_url", "=", url)
    .where("operation", "=", "create")
    .where("status", "=", "sent")
    .orderBy("id", "desc")
    .executeTakeFirst();
  return row?.idempotency_key ?? null;
}

async function firstPostOf(context: PushContext, url: DocUrl, topicId: string): Promise<string> {
  const known = await firstPostIdOf(context.db, url);
  if (known) return known;
  const { body } = await context.client.request<PostPayload>("GET", `/posts/by_number/${encodeURIComponent(topicId)}/1.json`);
  await recordTopicPlace(context.db, url, { firstPostId: String(body.id) });
  return String(body.id);
}

async function current(context: PushContext, url: DocUrl): Promise<Entity> {
  const doc = await context.store.find(url, { includeDeleted: true });
  if (!doc) throw new Error(`${url} is gone`);
  return doc;
}

async function record(context: PushContext, url: DocUrl, type: "topic" | "post", remoteId: string, version: number | undefined | null, base: SyncBase): Promise<void> {
  await recordInSync(context.db, context.store, { system: "discourse", type, remoteId, url, remoteVersion: version != null ? String(version) : null, base }, context.clock);
}
