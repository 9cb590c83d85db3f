import { isDeepStrictEqual } from "node:util";
import type { DocUrl } from "../../crdt/ids.js";
import type { Entity } from "../../crdt/schema/document.js";
import { systemClock } from "../../util/clock.js";
import { pick } from "../import-documents.js";
import type { OutboxEntry } from "../outbox.js";
import type { SyncBase } from "../reconcile.js";
import { remoteIdOf } from "../remote-records.js";
import { PUSHED_FIELDS } from "./discourse-push-bases.js";
import type { DiscoursePushOptions, DiscoursePushResult, PushContext } from "./discourse-push-context.js";
import { AWAITING_APPROVAL, sendReplyCreate, sendTopicCreate, settleUnconfirmedCreate } from "./discourse-push-create.js";
import { sendUpdate } from "./discourse-push-edit.js";
import { CATEGORY_KEY } from "./discourse-topic-records.js";

export type { DiscoursePushOptions, DiscoursePushResult } from "./discourse-push-context.js";
export { AWAITING_APPROVAL } from "./discourse-push-create.js";

/** Entries one push handles at most; the rest wait for the next. */
const MAX_ENTRIES_PER_PUSH = 5_000;

type Pushed = Entity<"discussion_topic"> | Entity<"post">;

/**
 * Sends this node's work on a course's forum to Discourse, every request through the outbox:
 * - topics written here, or mirrored from Canvas (a published discussion that is no
 *   announcement), become topics of the connected category, exactly once; one whose title
 *   the category already has is linked to that topic (see discourse-push-link.ts);
 * - replies (written here, or Canvas entries) in topics that are Discourse topics become
 *   posts, exactly once, threaded under their parent when it is a Discourse post;
 * - edits of messages and titles, and a topic's move to the connected category, are sent;
 *   an edit Discourse refuses because someone else edited first is settled by the course's
 *   strategy and recorded as a conflict.
 * Entries a crash left in doubt are settled first, by finding what they made. Each send
 * records the sync base from Discourse's answer, so the pull that follows reads back no change.
 * Reports per entry; throws only when the node's own tables cannot be read.
 *
 * @example
 * const result = await pushDiscourseChanges({ client, instance, store: engine.docs, db, outbox: new Outbox(db), course, categoryId: 12 });
 */
export async function pushDiscourseChanges(options: DiscoursePushOptions): Promise<DiscoursePushResult> {
  const context: PushContext = {
    ...options,
    categoryId: String(options.categoryId),
    clock: options.clock ?? systemClock,
    result: { created: 0, linked: 0, edited: 0, recovered: 0, awaitingApproval: 0, conflicts: 0, retrying: 0, deleted: 0, failed: [] },
  };
  const { outbox, store, course } = context;

  for (const entry of await outbox.inDoubt("discourse")) {
    if (entry.operation === "create") await settleUnconfirmedCreate(context, entry, false);
    // An edit is safe to send again: if it went through, its original_text no longer matches and the 409 finds it done.
    else await outbox.failed(entry.id, "interrupted; sending again", { retryAt: context.clock() });
  }

  const topics = await store.list(course, "discussion_topic");
  for (const topic of topics) if (await isNewTopic(context, topic)) await outbox.enqueue("discourse", topic.url, "create");
  await sendCreates(context, "discussion_topic");

  const posts = await store.list(course, "post");
  for (const post of posts) if (await isNewReply(context, post)) await outbox.enqueue("discourse", post.url, "create");
  await sendCreates(context, "post");

  const bases = await syncBases(context);
  for (const doc of [...topics, ...posts]) if (isEdited(context, doc, bases.get(doc.url))) await outbox.enqueue("discourse", doc.url, "update");
  for (const { entry, doc } of await dueEntries(context)) {
    if (entry.operation === "update") await sendUpdate(context, entry, doc);
  }
  context.result.awaitingApproval = await awaitingApproval(context);
  return context.result;
}

/** Creates still waiting for a moderator, whether or not this push looked for them. */
async function awaitingApproval(context: PushContext): Promise<number> {
  const row = await context.db
    .selectFrom("outbox")
    .select((eb) => eb.fn.countAll<number>().as("count"))
    .where("system", "=", "discourse")
    .where("status", "=", "pending")
    .where("last_error", "=", AWAITING_APPROVAL)
    .executeTakeFirst();
  return Number(row?.count ?? 0);
}

/** A topic Discourse should have and does not: written here, or a published Canvas discussion (announcements stay in Canvas). */
async function isNewTopic(context: PushContext, topic: Entity<"discussion_topic">): Promise<boolean> {
  if (topic.external.discourse || topic.announcement || !topic.published) return false;
  return !(await failedSinceLastChange(context, topic));
}

/** A reply not yet in Discourse, in a topic that is a Discourse topic. */
async function isNewReply(context: PushContext, post: Entity<"post">): Promise<boolean> {
  if (post.deleted || post.external.discourse || !post.topic) return false;
  if (!(await remoteIdOf(context.db, "discourse", post.topic, "topic"))) return false;
  return !(await failedSinceLastChange(context, post));
}

/** Whether a create Discourse refused for good (a short title, a duplicate) was refused after the document's last change. */
async function failedSinceLastChange(context: PushContext, doc: Pushed): Promise<boolean> {
  const failed = await context.db.selectFrom("outbox").select("updated_at").where("system", "=", "discourse").where("doc_url", "=", doc.url).where("status", "=", "failed").orderBy("id", "desc").executeTakeFirst();
  return failed !== undefined && Date.parse(failed.updated_at) >= Date.parse(doc.updatedAt);
}

/** Whether a document mapped to Discourse has something to send: a field changed since its base, or a topic outside the connected category. */
function isEdited(context: PushContext, doc: Pushed, base: SyncBase | undefined): boolean {
  if (!base || !doc.external.discourse) return false;
  if (doc.kind === "post" && (doc as Entity<"post">).deleted) return false;
  const fields = doc.kind === "post" ? PUSHED_FIELDS.post : PUSHED_FIELDS.discussion_topic;
  const here = pick(doc, fields);
  if (fields.some((field) => !isDeepStrictEqual(here[field] ?? null, base.local[field] ?? null))) return true;
  const category = base.remote[CATEGORY_KEY];
  return doc.kind === "discussion_topic" && typeof category === "string" && category !== context.categoryId;
}

/** Sends the due creates of one kind; replies after their parents, so that they can be threaded. */
async function sendCreates(context: PushContext, kind: "discussion_topic" | "post"): Promise<void> {
  const creates = (await dueEntries(context)).filter(({ entry, doc }) => entry.operation === "create" && doc.kind === kind);
  const waiting = new Set(creates.map(({ doc }) => doc.url));
  const ordered = kind === "post" ? parentsFirst(creates, waiting) : creates;
  for (const { entry, doc } of ordered) {
    if (entry.last_error === AWAITING_APPROVAL) await settleUnconfirmedCreate(context, entry, true);
    else if (doc.kind === "discussion_topic") await sendTopicCreate(context, entry, doc as Entity<"discussion_topic">);
    else await sendReplyCreate(context, entry, doc as Entity<"post">);
  }
}

/** Replies ordered so that a parent waiting to be created comes before its children. */
function parentsFirst(creates: Array<{ entry: OutboxEntry; doc: Pushed }>, waiting: ReadonlySet<DocUrl>): Array<{ entry: OutboxEntry; doc: Pushed }> {
  const byUrl = new Map(creates.map((c) => [c.doc.url, c]));
  const ordered: Array<{ entry: OutboxEntry; doc: Pushed }> = [];
  const placed = new Set<DocUrl>();
  const place = (create: { entry: OutboxEntry; doc: Pushed }, depth: number): void => {
    if (placed.has(create.doc.url)) return;
    const parent = (create.doc as Entity<"post">).parent;
    const pending = parent && waiting.has(parent) ? byUrl.get(parent) : undefined;
    // A cycle of parents (a damaged thread) stops here instead of recursing forever.
    if (pending && depth < creates.length) place(pending, depth + 1);
    placed.add(create.doc.url);
    ordered.push(create);
  };
  for (const create of creates) place(create, 0);
  return ordered;
}

/** Due entries with their documents; an entry whose document is gone closes as failed. */
async function dueEntries(context: PushContext): Promise<Array<{ entry: OutboxEntry; doc: Pushed }>> {
  const due: Array<{ entry: OutboxEntry; doc: Pushed }> = [];
  for (const entry of await context.outbox.due("discourse", MAX_ENTRIES_PER_PUSH)) {
    const doc = await context.store.find(entry.doc_url as DocUrl);
    if (!doc || (doc.kind !== "discussion_topic" && doc.kind !== "post") || entry.operation === "delete") {
      const reason = doc ? "deletions are not sent to Discourse" : "the document is gone";
      await context.outbox.failed(entry.id, reason, { status: "failed" });
      continue;
    }
    due.push({ entry, doc: doc as Pushed });
  }
  return due;
}

async function syncBases(context: PushContext): Promise<Map<string, SyncBase>> {
  const rows = await context.db.selectFrom("remote_sync").select(["doc_url", "base"]).where("system", "=", "discourse").where("base", "is not", null).execute();
  const bases = new Map<string, SyncBase>();
  for (const row of rows) {
    try {
      const base = JSON.parse(row.base!) as SyncBase;
      if (base && typeof base.local === "object" && typeof base.remote === "object") bases.set(row.doc_url, base);
    } catch {
      // A damaged base is as good as none: the next pull records a new one.
    }
  }
  return bases;
}
