import { isDeepStrictEqual } from "node:util";
import type { DocUrl } from "../../crdt/ids.js";
import type { Entity } from "../../crdt/schema/document.js";
import { pick, syncedFields } from "../import-documents.js";
import type { FieldValues, SyncBase } from "../reconcile.js";
import { postFrom, topicFrom, type DiscourseInstance } from "./discourse-mapping.js";
import { outgoingRaw, outgoingTitle } from "./discourse-requests.js";
import { CATEGORY_KEY } from "./discourse-topic-records.js";

/**
 * The sync bases a push records: pure functions. After a send, the remote side of the base is
 * what a pull will read back (the payload Discourse answered with, through the same mapping the
 * pull uses), so the next pull finds nothing changed there and echoes nothing back.
 */

/** The fields this node sends to Discourse, per kind; the others are Discourse's alone. */
export const PUSHED_FIELDS = {
  discussion_topic: ["title", "message"],
  post: ["message"],
} as const satisfies Record<string, readonly string[]>;

export type PushedKind = keyof typeof PUSHED_FIELDS;

/** Whether a document's value is what Discourse holds once it was sent (HTML arrives as markdown). */
export function inStep(field: string, local: unknown, remote: unknown): boolean {
  if (field === "message" && typeof local === "string") return outgoingRaw(local, null) === remote;
  if (field === "title" && typeof local === "string") return outgoingTitle(local) === remote;
  return isDeepStrictEqual(local ?? null, remote ?? null);
}

/**
 * The base to record once a document and Discourse's `remote` fields stand as they do. A sent
 * field the document no longer matches (it changed while the request was out) keeps Discourse's
 * value as its local base, so it shows as changed here and goes at the next push; every other
 * field is taken as it is here (the fields this node does not send are not Discourse's to hold).
 */
export function baseAfterPush(doc: Entity, remote: FieldValues, pushed: readonly string[]): SyncBase {
  const fields = Object.keys(remote).filter((field) => field !== CATEGORY_KEY);
  const here = pick(doc, fields);
  const local: FieldValues = {};
  for (const field of fields) local[field] = pushed.includes(field) && !inStep(field, here[field], remote[field]) ? remote[field] : here[field];
  return { local, remote: { ...remote } };
}

/** Which fields of a document differ from its local base: what a push must send. */
export function changedHere(doc: Entity, base: SyncBase, pushed: readonly string[]): string[] {
  const here = pick(doc, pushed);
  return pushed.filter((field) => !isDeepStrictEqual(here[field] ?? null, base.local[field] ?? null));
}

/** A topic's remote fields as a pull would map them, with the category it is in. */
export function remoteTopicFields(instance: DiscourseInstance, course: DocUrl, view: Record<string, unknown>, firstPost: Record<string, unknown> | null, categoryId: string): FieldValues {
  return { ...syncedFields(topicFrom(instance, course, view, firstPost).fields), [CATEGORY_KEY]: categoryId };
}

/**
 * A reply's remote fields as a pull would map them: its topic and parent are the documents it
 * was pushed from (the pull resolves them through `remote_ids` the same way).
 */
export function remotePostFields(instance: DiscourseInstance, course: DocUrl, post: Record<string, unknown>, refs: { topicId: string; topic: DocUrl; parent: { postId: string; url: DocUrl } | null }): FieldValues {
  const replyTo = typeof post.reply_to_post_number === "number" ? post.reply_to_post_number : null;
  const numbers = new Map<number, string>(replyTo !== null && refs.parent ? [[replyTo, refs.parent.postId]] : []);
  const mapped = new Map<string, DocUrl>([[`topic/${refs.topicId}`, refs.topic]]);
  if (refs.parent) mapped.set(`post/${refs.parent.postId}`, refs.parent.url);
  return syncedFields(postFrom(instance, course, refs.topicId, post, numbers, mapped).fields);
}
