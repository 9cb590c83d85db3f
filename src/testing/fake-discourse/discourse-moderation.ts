import { cookRaw, isoMs } from "./discourse-cook.js";
import { DiscourseStateError, type DiscoursePost, type DiscourseState, type DiscourseUser } from "./discourse-state.js";

/**
 * What Discourse does to posts besides creating and editing them, kept apart from the state so
 * each rule reads on its own: an author's self-delete, background rebakes, hidden revisions and
 * the review queue (CONTRACT §2.7, §5.5-§5.8).
 */

/** The raw Discourse writes over a reply its author deleted (`deleted_by_author_simple`). */
export const DELETED_BY_AUTHOR = "(post deleted by author)";

const isStaff = (user: DiscourseUser): boolean => user.admin || user.moderator;

/**
 * A non-staff author deleting their own reply: the raw is replaced, `user_deleted` is set and the
 * post stays in the stream with no `deleted_at` (Discourse trashes it for good a day later). A
 * staff delete, or the author's post #1, goes through `DiscourseState.deletePost` instead.
 */
export function deleteOwnPost(state: DiscourseState, postId: number, by: DiscourseUser): void {
  const post = state.requirePost(postId);
  if (post.deleted_at !== null || post.user_deleted) throw notFound();
  if (!isStaff(by) && post.user_id !== by.id) throw new DiscourseStateError(403, ["You are not permitted to view the requested resource."], "invalid_access");
  if (isStaff(by) || post.post_number === 1) {
    state.deletePost(postId, by.id);
    return;
  }
  post.raw = DELETED_BY_AUTHOR;
  post.cooked = cookRaw(DELETED_BY_AUTHOR);
  post.user_deleted = true;
  post.updated_at = isoMs(state.clock());
  state.emit({ kind: "post_destroyed", postId });
}

/**
 * A background rebake: `cooked` is rendered again (here a link alone on its line becomes a
 * onebox) with no new version and no new `updated_at`, so `cooked` changes behind a reader's back.
 */
export function rebakePost(state: DiscourseState, postId: number): DiscoursePost {
  const post = state.requirePost(postId);
  post.cooked = cookRaw(post.raw).replace(
    /<p>(https?:\/\/[^\s<]+)<\/p>/g,
    (_all, url: string) => `<aside class="onebox" data-onebox-src="${url}"><article class="onebox-body"><h3><a href="${url}">${url}</a></h3></article></aside>`,
  );
  return post;
}

/**
 * Staff hiding a revision: the raw stays, and the public `version` goes down by one, so a
 * version is no count of writes and can decrease.
 */
export function hideRevision(state: DiscourseState, postId: number, version: number): DiscoursePost {
  const post = state.requirePost(postId);
  const revision = post.revisions.find((r) => r.version === version);
  if (revision === undefined || version === 1 || revision.hidden === true) throw notFound();
  revision.hidden = true;
  post.version = Math.max(1, post.version - 1);
  return post;
}

/** A post waiting in the review queue: it has no post id, no post number and is in no stream. */
export interface PendingPost {
  id: number;
  user_id: number;
  topic_id: number | null;
  raw: string;
  created_at: string;
}

const queues = new WeakMap<DiscourseState, PendingPost[]>();
let nextReviewableId = 5000;

/** Posts waiting for approval on this forum. */
export function pendingPosts(state: DiscourseState): readonly PendingPost[] {
  return queues.get(state) ?? [];
}

/**
 * Queues a create when `approve_unless_trust_level` says so, answering what Discourse answers:
 * 200 with `action: "enqueued"` and the pending post, and no post id. Null when the post goes in.
 */
export function enqueueIfNeeded(state: DiscourseState, by: DiscourseUser, input: { raw: string; topic_id?: number }): Record<string, unknown> | null {
  if (isStaff(by) || by.trust_level >= state.settings.approveUnlessTrustLevel) return null;
  const queue = queues.get(state) ?? [];
  queues.set(state, queue);
  const pending: PendingPost = { id: nextReviewableId++, user_id: by.id, topic_id: input.topic_id ?? null, raw: input.raw, created_at: isoMs(state.clock()) };
  queue.push(pending);
  return { action: "enqueued", pending_post: { ...pending }, pending_count: queue.filter((p) => p.user_id === by.id).length };
}

function notFound(): DiscourseStateError {
  return new DiscourseStateError(404, ["The requested URL or resource could not be found."], "not_found");
}
