import { int, notFoundReply, str, errorReply, type Params, type RouteReply } from "./discourse-http.js";
import { bool, EMPTY_OK, ok, type Route, type RouteContext } from "./discourse-route-kit.js";
import { listUsers, serializeCategory, serializeListTopic } from "./discourse-serialize.js";
import type { DiscourseState, DiscourseTopic } from "./discourse-state.js";

/** The fake Discourse's categories and topic lists (`/categories`, `/c/...`, `/latest`). */

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

/**
 * A category's topics, by `/c/{slug}/{id}` or by `/c/{id}` alone (the id decides; the slug is
 * cosmetic). Pages link to the category's own URL, where an empty slug reads `{id}-category`.
 */
function categoryTopics(ctx: RouteContext): RouteReply {
  const id = Number(ctx.match[2] ?? ctx.match[1]);
  const category = ctx.state.categories.get(id);
  if (category === undefined || category.deleted) return notFoundReply(true);
  const topics = liveTopics(ctx.state)
    .filter((t) => t.category_id === id)
    .sort((a, b) => Number(b.pinned) - Number(a.pinned) || byBumpedDesc(a, b));
  return topicList(ctx, topics, `/c/${category.slug === "" ? `${id}-category` : category.slug}/${id}/l/latest`);
}

function latestTopics(ctx: RouteContext): RouteReply {
  const order = str(ctx.params.order) ?? "default";
  const ascending = bool(ctx.params.ascending);
  const key = order === "created" ? "created_at" : "bumped_at";
  const topics = liveTopics(ctx.state).sort((a, b) => b[key].localeCompare(a[key]) || b.id - a.id);
  if (ascending) topics.reverse();
  return topicList(ctx, topics, "/latest");
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

/** The category and topic-list routes of CONTRACT §2.4, in matching order. */
export const CATEGORY_ROUTES: Route[] = [
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
  { method: "GET", pattern: /^\/c\/(\d+)(?:\/l\/latest)?$/, handle: categoryTopics },
  { method: "GET", pattern: /^\/latest$/, handle: latestTopics },
];
