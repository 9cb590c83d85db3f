import { createHash } from "node:crypto";
import { CATEGORY_ROUTES } from "./discourse-category-routes.js";
import { int, notFoundReply, str, errorReply, type Params, type RouteReply } from "./discourse-http.js";
import { deleteOwnPost, enqueueIfNeeded, hideRevision } from "./discourse-moderation.js";
import { bool, EMPTY_OK, isStaff, ok, sub, type Route, type RouteContext } from "./discourse-route-kit.js";
import { serializeCategory, serializePost, serializeTopicView, serializeUser } from "./discourse-serialize.js";
import { DiscourseStateError, type DiscourseTopic } from "./discourse-state.js";

export type { RouteContext } from "./discourse-route-kit.js";

/** Reads a topic the viewer may see: deleted topics are visible to staff only (§5.7). */
function visibleTopic(ctx: RouteContext, id: number | undefined): DiscourseTopic | undefined {
  const topic = id === undefined ? undefined : ctx.state.topics.get(id);
  if (topic === undefined || (topic.deleted_at !== null && !isStaff(ctx.viewer))) return undefined;
  return topic;
}

function createPost(ctx: RouteContext): RouteReply {
  const viewer = ctx.viewer;
  if (viewer === null) return errorReply(403, ["You need to be logged in to do that."], "not_logged_in");
  const raw = str(ctx.params.raw) ?? "";
  const nowMs = ctx.state.clock();
  const key = createHash("sha256").update(JSON.stringify([viewer.id, ctx.params])).digest("hex");
  const memo = ctx.createMemo.get(key);
  if (memo !== undefined && nowMs - memo.atMs < ctx.state.settings.createMemoMs) {
    const post = ctx.state.posts.get(memo.postId);
    if (post !== undefined) return ok(serializePost(ctx.state, post, viewer, true));
  }
  const topicId = int(ctx.params.topic_id);
  const enqueued = enqueueIfNeeded(ctx.state, viewer, { raw, ...(topicId === undefined ? {} : { topic_id: topicId }) });
  if (enqueued !== null) return ok(enqueued);
  const createdAt = str(ctx.params.created_at);
  const post =
    topicId === undefined
      ? ctx.state.createTopic({
          title: str(ctx.params.title) ?? "",
          raw,
          category_id: int(ctx.params.category) ?? 1,
          user_id: viewer.id,
          external_id: str(ctx.params.external_id) ?? null,
          ...(createdAt === undefined ? {} : { created_at: new Date(createdAt).toISOString() }),
        })
      : ctx.state.createReply({
          topic_id: topicId,
          raw,
          user_id: viewer.id,
          reply_to_post_number: int(ctx.params.reply_to_post_number) ?? null,
          ...(createdAt === undefined ? {} : { created_at: new Date(createdAt).toISOString() }),
        });
  ctx.createMemo.set(key, { postId: post.id, atMs: nowMs });
  return ok(serializePost(ctx.state, post, viewer, true));
}

function updatePost(ctx: RouteContext): RouteReply {
  const viewer = ctx.viewer;
  if (viewer === null) return errorReply(403, ["You need to be logged in to do that."], "not_logged_in");
  const postId = Number(ctx.match[1]);
  const input = sub(ctx.params, "post");
  const current = ctx.state.posts.get(postId);
  if (current === undefined || current.deleted_at !== null) return notFoundReply();
  const raw = str(input.raw) ?? current.raw;
  const originalText = str(input.original_text) ?? str(input.raw_old);
  const post = ctx.state.editPost(postId, {
    raw,
    editor_id: viewer.id,
    ...(input.edit_reason === undefined ? {} : { edit_reason: str(input.edit_reason) ?? null }),
    ...(originalText === undefined ? {} : { original_text: originalText }),
  });
  const json: Params = { post: serializePost(ctx.state, post, viewer, true) };
  if (post.post_number === 1) {
    const title = str(ctx.params.title);
    const categoryId = int(input.category_id);
    if (title !== undefined || categoryId !== undefined) {
      const before = ctx.state.requireTopic(post.topic_id).category_id;
      const topic = ctx.state.updateTopic(post.topic_id, { ...(title === undefined ? {} : { title }), ...(categoryId === undefined ? {} : { category_id: categoryId }) });
      json.post = serializePost(ctx.state, post, viewer, true);
      const category = ctx.state.categories.get(topic.category_id);
      if (topic.category_id !== before && category !== undefined) json.category = serializeCategory(ctx.state, category);
    }
  }
  return ok(json);
}

function updateTopic(ctx: RouteContext): RouteReply {
  const topic = visibleTopic(ctx, Number(ctx.match[1]));
  if (topic === undefined || topic.deleted_at !== null) return notFoundReply(true);
  const nested = sub(ctx.params, "topic");
  const title = str(nested.title) ?? str(ctx.params.title);
  const categoryId = int(nested.category_id) ?? int(ctx.params.category_id);
  const updated = ctx.state.updateTopic(topic.id, { ...(title === undefined ? {} : { title }), ...(categoryId === undefined ? {} : { category_id: categoryId }) });
  return ok({ basic_topic: { id: updated.id, title: updated.title, fancy_title: updated.title, slug: updated.slug, posts_count: ctx.state.visiblePosts(updated).length } });
}

function showTopic(ctx: RouteContext, id: number | undefined): RouteReply {
  const topic = visibleTopic(ctx, id);
  if (topic === undefined) return notFoundReply(true);
  return ok(serializeTopicView(ctx.state, topic, ctx.viewer, bool(ctx.params.include_raw)));
}

function latestPosts(ctx: RouteContext): RouteReply {
  // before is inclusive; only regular public posts of live topics; 50 per call (§2.5).
  const before = int(ctx.params.before) ?? Number.MAX_SAFE_INTEGER;
  const posts = [...ctx.state.posts.values()]
    .filter((p) => p.id <= before && p.deleted_at === null && p.post_type === 1 && ctx.state.topics.get(p.topic_id)?.deleted_at === null)
    .sort((a, b) => b.id - a.id)
    .slice(0, 50);
  return ok({
    latest_posts: posts.map((p) => {
      const topic = ctx.state.requireTopic(p.topic_id);
      return { ...serializePost(ctx.state, p, ctx.viewer, true), topic_title: topic.title, topic_html_title: topic.title, category_id: topic.category_id, excerpt: "", truncated: false };
    }),
  });
}

/** Every route of CONTRACT §2.4 the fake serves. Order matters: the first match wins. */
export const DISCOURSE_ROUTES: Route[] = [
  ...CATEGORY_ROUTES,
  {
    method: "GET", pattern: /^\/t\/(\d+)\/posts$/,
    handle: (ctx) => {
      const topic = visibleTopic(ctx, Number(ctx.match[1]));
      if (topic === undefined) return notFoundReply(true);
      const wanted = new Set((Array.isArray(ctx.params.post_ids) ? ctx.params.post_ids : [ctx.params.post_ids]).map(int));
      const posts = ctx.state.visiblePosts(topic).filter((p) => wanted.has(p.id));
      return ok({ post_stream: { posts: posts.map((p) => serializePost(ctx.state, p, ctx.viewer, bool(ctx.params.include_raw))) }, id: topic.id });
    },
  },
  { method: "GET", pattern: /^\/t\/(\d+)$/, handle: (ctx) => showTopic(ctx, Number(ctx.match[1])) },
  { method: "GET", pattern: /^\/t\/[^/]+\/(\d+)$/, handle: (ctx) => showTopic(ctx, Number(ctx.match[1])) },
  { method: "PUT", pattern: /^\/t\/[^/]+\/(\d+)$/, write: true, handle: updateTopic },
  {
    method: "DELETE", pattern: /^\/t\/(\d+)$/, write: true,
    handle: (ctx) => {
      const topic = ctx.state.topics.get(Number(ctx.match[1]));
      if (topic === undefined || topic.deleted_at !== null) return notFoundReply(true);
      ctx.state.deleteTopic(topic.id, ctx.viewer?.id ?? -1);
      return EMPTY_OK;
    },
  },
  { method: "PUT", pattern: /^\/t\/(\d+)\/recover$/, write: true, handle: (ctx) => (ctx.state.recoverTopic(Number(ctx.match[1])), EMPTY_OK) },
  { method: "POST", pattern: /^\/posts$/, write: true, handle: createPost },
  { method: "GET", pattern: /^\/posts$/, handle: latestPosts },
  {
    method: "GET", pattern: /^\/posts\/(\d+)$/,
    handle: (ctx) => {
      const post = ctx.state.posts.get(Number(ctx.match[1]));
      if (post === undefined || (post.deleted_at !== null && !isStaff(ctx.viewer))) return notFoundReply();
      return ok(serializePost(ctx.state, post, ctx.viewer, true));
    },
  },
  {
    method: "GET", pattern: /^\/posts\/by_number\/(\d+)\/(\d+)$/,
    handle: (ctx) => {
      const topic = visibleTopic(ctx, Number(ctx.match[1]));
      const post = topic?.post_ids.map((id) => ctx.state.requirePost(id)).find((p) => p.post_number === Number(ctx.match[2]));
      if (post === undefined || (post.deleted_at !== null && !isStaff(ctx.viewer))) return notFoundReply();
      return ok(serializePost(ctx.state, post, ctx.viewer, true));
    },
  },
  { method: "PUT", pattern: /^\/posts\/(\d+)$/, write: true, handle: updatePost },
  {
    method: "DELETE", pattern: /^\/posts\/(\d+)$/, write: true,
    handle: (ctx) => {
      const post = ctx.state.posts.get(Number(ctx.match[1]));
      if (post === undefined || post.deleted_at !== null || ctx.viewer === null) return notFoundReply();
      deleteOwnPost(ctx.state, post.id, ctx.viewer);
      return EMPTY_OK;
    },
  },
  {
    method: "PUT", pattern: /^\/posts\/(\d+)\/revisions\/(\d+)\/hide$/, write: true,
    handle: (ctx) => (isStaff(ctx.viewer) ? (hideRevision(ctx.state, Number(ctx.match[1]), Number(ctx.match[2])), EMPTY_OK) : errorReply(403, ["You are not permitted to view the requested resource."], "invalid_access")),
  },
  { method: "PUT", pattern: /^\/posts\/(\d+)\/recover$/, write: true, handle: (ctx) => ok(serializePost(ctx.state, ctx.state.recoverPost(Number(ctx.match[1])), ctx.viewer, true)) },
  {
    method: "GET", pattern: /^\/u\/([^/]+)$/,
    handle: (ctx) => {
      const user = ctx.state.userByName(decodeURIComponent(ctx.match[1] ?? ""));
      return user === undefined ? notFoundReply() : ok(serializeUser(ctx.state, user));
    },
  },
];

/** Runs the first route matching `method` and `path`; state refusals become §2.3 error replies. */
export function dispatchDiscourseRoute(method: string, path: string, ctx: Omit<RouteContext, "match">): RouteReply | undefined {
  for (const route of DISCOURSE_ROUTES) {
    if (route.method !== method) continue;
    const match = route.pattern.exec(path);
    if (match === null) continue;
    if (route.write === true && ctx.viewer === null) return errorReply(403, ["You need to be logged in to do that."], "not_logged_in");
    try {
      return route.handle({ ...ctx, match: [...match].map((m) => m ?? "") });
    } catch (error) {
      if (!(error instanceof DiscourseStateError)) throw error;
      if (error.code === "create_post") return { status: 422, json: { action: "create_post", errors: error.errors } };
      if (error.code === "edit_conflict") return { status: 409, json: { errors: error.errors } };
      if (error.code === "not_found") return notFoundReply();
      return errorReply(error.status, error.errors, error.code);
    }
  }
  return undefined;
}
