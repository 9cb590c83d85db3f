import { toMarkdown } from "../content-format.js";
import { sendMark } from "./discourse-mapping.js";

/**
 * Documents to Discourse request bodies: pure functions, no I/O. Discourse is sent markdown
 * (`raw`); `cooked` is its rendering and is never written. A post this node creates carries its
 * outbox key as a send mark (see `sendMark`), and keeps it through later edits, so that the raw
 * Discourse holds is always the text sent plus that mark and the edit's `original_text` can be
 * told from the sync base alone.
 */

/** `POST /posts.json` with a title: a topic, its message as post #1. */
export interface CreateTopicBody {
  title: string;
  raw: string;
  category: number;
}

/** `POST /posts.json` with a `topic_id`: a reply, threaded when its parent is a Discourse post. */
export interface CreatePostBody {
  topic_id: number;
  raw: string;
  reply_to_post_number?: number;
}

/** `PUT /posts/{id}.json`: a new raw, refused with a 409 unless `original_text` is the raw Discourse holds. */
export interface EditPostBody {
  post: { raw: string; original_text: string };
}

/** `PUT /t/-/{id}.json`: a topic's title and category (neither is part of post #1's raw). */
export interface EditTopicBody {
  topic: { title?: string; category_id?: number };
}

/**
 * The raw Discourse is sent for a message: markdown (HTML from Canvas is converted), without
 * trailing whitespace (Discourse strips it, and what is sent must be what is read back), then
 * the send mark when the post is one this node made.
 */
export function outgoingRaw(message: string, markKey: string | null): string {
  const markdown = toMarkdown(message).trimEnd();
  return markKey === null ? markdown : `${markdown}${sendMark(markKey)}`;
}

/** A topic title as Discourse keeps it (it trims). */
export function outgoingTitle(title: string): string {
  return title.trim();
}

export function createTopicBody(topic: { title: string; message: string }, categoryId: string | number, markKey: string): CreateTopicBody {
  return { title: outgoingTitle(topic.title), raw: outgoingRaw(topic.message, markKey), category: Number(categoryId) };
}

/** A reply to post #1 is a reply to the topic itself: it names no post. */
export function createPostBody(post: { message: string }, topicId: string | number, markKey: string, replyToPostNumber?: number): CreatePostBody {
  const body: CreatePostBody = { topic_id: Number(topicId), raw: outgoingRaw(post.message, markKey) };
  if (replyToPostNumber !== undefined && replyToPostNumber > 1) body.reply_to_post_number = replyToPostNumber;
  return body;
}

/** An edit of a message; `originalText` is the exact raw the edit replaces. */
export function editPostBody(message: string, originalText: string, markKey: string | null): EditPostBody {
  return { post: { raw: outgoingRaw(message, markKey), original_text: originalText } };
}

/** Only what changes is sent: an absent title or category is left as Discourse has it. */
export function editTopicBody(change: { title?: string; categoryId?: string | number }): EditTopicBody {
  const topic: EditTopicBody["topic"] = {};
  if (change.title !== undefined) topic.title = outgoingTitle(change.title);
  if (change.categoryId !== undefined) topic.category_id = Number(change.categoryId);
  return { topic };
}

/** The raw Discourse holds for a message recorded in a sync base (which keeps it without the mark). */
export function heldRaw(baseMessage: string, markKey: string | null): string {
  return markKey === null ? baseMessage : `${baseMessage}${sendMark(markKey)}`;
}
