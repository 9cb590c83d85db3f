import { createHash } from "node:crypto";
import { int, notFoundReply, str, errorReply, type Params, type RouteReply } from "./discourse-http.js";
import { listUsers, serializeCategory, serializeListTopic, serializePost, serializeTopicView, serializeUser } from "./discourse-serialize.js";
import { DiscourseStateError, type DiscourseState, type DiscourseTopic, type DiscourseUser } from "./discourse-state.js";

/** What a route sees: the caller (null when anonymous), query and body merged, path captures. */
export interface RouteContext {
  state: DiscourseState;
  viewer: DiscourseUser | null;
  params: Params;
  match: string[];
  /** Memo of API creates: key → post id and when it was created (§2.7, 120 s). */
  createMemo: Map<string, { postId: number; atMs: number }>;
}

interface Route {
  method: string;
  /** Matched against the path with `.json` removed. */
  pattern: RegExp;
  write?: boolean;
  handle: (ctx: RouteContext) => RouteReply;
}

const isStaff = (user: DiscourseUser | null): boolean => user !== null && (user.admin || user.moderator);
const ok = (json: unknown): RouteReply => ({ status: 200, json });
const EMPTY_OK: RouteReply = { status: 200, text: "", contentType: "text/plain" };

/** Reads a topic the viewer may see: deleted topics are visible to staff only (§5.7). */
function visibleTopic(ctx: RouteContext, id: number | undefined): DiscourseTopic | undefined {
  const topic = id === undefined ? undefined : ctx.state.topics.get(id);
  if (topic === undefined || (topic.deleted_at !== null && !isStaff(ctx.viewer))) return undefined;
  return topic;
}

function sub(params: Params, key: string): Params {
  const value = params[key];
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Params) : {};
}

function bool(value: unknown): boolean {
  return value === true || value === "true";
}

/** `topic_list` with `more_topics_url` only when the page is full (§5, "also worth faking"). */
function topicList(ctx: RouteContext, topics: DiscourseTopic[], basePath: string): RouteReply {
  const perPage = Math.min(100, Math.max(1, int(ctx.params.per_page) ?? 30));
  const page = Math.max(0, int(ctx.params.page) ?? 0);
  const slice = topics.slice(page * perPage, (page + 1) * perPage);
  const list: Params = { can_create_topic: true, per_page: perPage, top_tags: [], topics: slice.map((t) => serializeListTopic(ctx.state, t)) };
  if (slice.length === perPage) {
    const query = new URLSearchParams();
    for (const key of ["order", "ascending", "per_page"]) {
      const value = str(ctx.params[key]);
      if (value !== undefined) query.set(key, value);
    }
    query.set("page", String(page + 1));
    list.more_topics_url = `${basePath}?${query.toString()}`;
  }
  return ok({ users: listUsers(ctx.state, slice), primary_groups: [], flair_groups: [], topic_list: list });
}

function liveTopics(state: DiscourseState): DiscourseTopic[] {
  return [...state.topics.values()].filter((t) => t.deleted_at === null && t.visible);
}

function byBumpedDesc(a: DiscourseTopic, b: DiscourseTopic): number {
  return b.bumped_at.localeCompare(a.bumped_at) || b.id - a.id;
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

function categoryTopics(ctx: RouteContext): RouteReply {
  const id = Number(ctx.match[2]);
  const category = ctx.state.categories.get(id);
  if (category === undefined || category.deleted) return notFoundReply(true);
  const topics = liveTopics(ctx.state)
    .filter((t) => t.category_id === id)
    .sort((a, b) => Number(b.pinned) - Number(a.pinned) || byBumpedDesc(a, b));
  return topicList(ctx, topics, `/c/${ctx.match[1] ?? category.slug}/${id}/l/latest`);
}

function latestTopics(ctx: RouteContext): RouteReply {
  const order = str(ctx.params.order) ?? "default";
  const ascending = bool(ctx.params.ascending);
  const key = order === "created" ? "created_at" : "bumped_at";
  const topics = liveTopics(ctx.state).sort((a, b) => b[key].localeCompare(a[key]) || b.id - a.id);
  if (ascending) topics.reverse();
  return topicList(ctx, topics, "/latest");
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

function createCategory(ctx: RouteContext): RouteReply {
  const name = str(ctx.params.name) ?? "";
  const parent = int(ctx.params.parent_category_id);
  const color = str(ctx.params.color);
  const textColor = str(ctx.params.text_color);
  const slug = str(ctx.params.slug);
  const category = ctx.state.createCategory(
    {
      name,
      ...(color === undefined ? {} : { color }),
      ...(textColor === undefined ? {} : { text_color: textColor }),
      ...(slug === undefined ? {} : { slug }),
      ...(parent === undefined ? {} : { parent_category_id: parent }),
    },
    ctx.viewer?.id ?? -1,
  );
  return ok({ category: serializeCategory(ctx.state, category) });
}

/** Every route of CONTRACT §2.4 the fake serves. Order matters: the first match wins. */
export const DISCOURSE_ROUTES: Route[] = [
  { method: "GET", pattern: /^\/categories$/, handle: (ctx) => ok({ category_list: { can_create_category: true, can_create_topic: true, categories: [...ctx.state.categories.values()].filter((c) => !c.deleted && (c.parent_category_id === null || bool(ctx.params.include_subcategories))).map((c) => serializeCategory(ctx.state, c)) } }) },
  { method: "GET", pattern: /^\/site$/, handle: (ctx) => ok({ categories: [...ctx.state.categories.values()].filter((c) => !c.deleted).map((c) => serializeCategory(ctx.state, c)) }) },
  { method: "POST", pattern: /^\/categories$/, write: true, handle: createCategory },
  {
    method: "PUT", pattern: /^\/categories\/(\d+)$/, write: true,
    handle: (ctx) => {
      const category = ctx.state.categories.get(Number(ctx.match[1]));
      if (category === undefined || category.deleted) return notFoundReply();
      const name = str(ctx.params.name);
      if (name !== undefined) category.name = name;
      category.color = str(ctx.params.color) ?? category.color;
      category.text_color = str(ctx.params.text_color) ?? category.text_color;
      category.slug = str(ctx.params.slug) ?? category.slug;
      return ok({ success: "OK", category: serializeCategory(ctx.state, category) });
    },
  },
  {
    method: "DELETE", pattern: /^\/categories\/(\d+)$/, write: true,
    handle: (ctx) => {
      const category = ctx.state.categories.get(Number(ctx.match[1]));
      if (category === undefined || category.deleted) return notFoundReply();
      const hasTopics = liveTopics(ctx.state).some((t) => t.category_id === category.id && t.id !== category.about_topic_id);
      if (hasTopics) return errorReply(403, ["You are not permitted to view the requested resource."], "invalid_access");
      category.deleted = true;
      return EMPTY_OK;
    },
  },
  {
    method: "GET", pattern: /^\/c\/(\d+)\/show$/,
    handle: (ctx) => {
      const category = ctx.state.categories.get(Number(ctx.match[1]));
      return category === undefined || category.deleted ? notFoundReply(true) : ok({ category: serializeCategory(ctx.state, category) });
    },
  },
  { method: "GET", pattern: /^\/c\/(?:[^/]+\/)*?([^/]+)\/(\d+)(?:\/l\/latest)?$/, handle: categoryTopics },
  { method: "GET", pattern: /^\/latest$/, handle: latestTopics },
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
      if (post === undefined || post.deleted_at !== null) return notFoundReply();
      ctx.state.deletePost(post.id, ctx.viewer?.id ?? -1);
      return EMPTY_OK;
    },
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
