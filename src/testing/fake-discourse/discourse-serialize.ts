import { textOf } from "./discourse-cook.js";
import type { DiscourseCategory, DiscoursePost, DiscourseState, DiscourseTopic, DiscourseUser } from "./discourse-state.js";

/** Posts per chunk of `post_stream.posts` (`TopicView#chunk_size`). */
export const DISCOURSE_CHUNK_SIZE = 20;

type Json = Record<string, unknown>;

function basicUser(user: DiscourseUser): Json {
  return { id: user.id, username: user.username, name: user.name, avatar_template: user.avatar_template };
}

function postUrl(topic: DiscourseTopic, post: DiscoursePost): string {
  return `/t/${topic.slug}/${topic.id}/${post.post_number}`;
}

function replyCount(state: DiscourseState, topic: DiscourseTopic, post: DiscoursePost): number {
  return state.visiblePosts(topic).filter((p) => p.reply_to_post_number === post.post_number).length;
}

/** The fields every post payload shares (WebHookPostSerializer is this without the `can_*` ones). */
function corePost(state: DiscourseState, post: DiscoursePost): Json {
  const user = state.requireUser(post.user_id);
  const topic = state.requireTopic(post.topic_id);
  return {
    id: post.id,
    name: user.name,
    username: user.username,
    avatar_template: user.avatar_template,
    created_at: post.created_at,
    cooked: post.cooked,
    post_number: post.post_number,
    post_type: post.post_type,
    updated_at: post.updated_at,
    reply_count: replyCount(state, topic, post),
    reply_to_post_number: post.reply_to_post_number,
    quote_count: 0,
    incoming_link_count: 0,
    reads: post.reads,
    readers_count: Math.max(0, post.reads - 1),
    score: post.score,
    topic_id: topic.id,
    topic_slug: topic.slug,
    display_username: user.name,
    primary_group_name: null,
    flair_name: null,
    flair_group_id: null,
    version: post.version,
    user_title: null,
    bookmarked: false,
    moderator: user.moderator,
    admin: user.admin,
    staff: user.admin || user.moderator,
    user_id: user.id,
    hidden: false,
    trust_level: user.trust_level,
    deleted_at: post.deleted_at,
    user_deleted: post.user_deleted,
    edit_reason: post.edit_reason,
    wiki: false,
    reviewable_id: null,
    reviewable_score_count: 0,
    reviewable_score_pending_count: 0,
    post_url: postUrl(topic, post),
  };
}

/** A post as the REST API shows it to `viewer`; `raw` only where Discourse includes it. */
export function serializePost(state: DiscourseState, post: DiscoursePost, viewer: DiscourseUser | null, withRaw: boolean): Json {
  const staff = viewer !== null && (viewer.admin || viewer.moderator);
  const json: Json = {
    ...corePost(state, post),
    yours: viewer?.id === post.user_id,
    flair_url: null,
    flair_bg_color: null,
    flair_color: null,
    badges_granted: [],
    can_edit: staff || viewer?.id === post.user_id,
    can_delete: post.post_number !== 1 && (staff || viewer?.id === post.user_id),
    can_recover: post.deleted_at !== null && staff,
    can_see_hidden_post: staff,
    can_wiki: staff,
    can_view_edit_history: true,
    actions_summary: [{ id: 2, can_act: true }],
    mentioned_users: [],
  };
  if (withRaw) json.raw = post.raw;
  return json;
}

/** The body of a `post_*` webhook (WebHookPostSerializer, §2.6). */
export function serializeWebhookPost(state: DiscourseState, post: DiscoursePost): Json {
  const topic = state.requireTopic(post.topic_id);
  const visible = state.visiblePosts(topic).length;
  return {
    ...corePost(state, post),
    raw: post.raw,
    topic_title: topic.title,
    category_id: topic.category_id,
    topic_posts_count: visible,
    topic_filtered_posts_count: visible,
    topic_archetype: "regular",
    category_slug: state.categories.get(topic.category_id)?.slug ?? "",
  };
}

function posters(state: DiscourseState, topic: DiscourseTopic): Json[] {
  const posts = state.visiblePosts(topic);
  const ids = [...new Set(posts.map((p) => p.user_id))].slice(0, 5);
  const lastPoster = posts[posts.length - 1]?.user_id;
  return ids.map((id, i) => ({
    extras: id === lastPoster ? (ids.length === 1 ? "latest single" : "latest") : null,
    description: i === 0 ? "Original Poster, Most Recent Poster" : "Frequent Poster",
    user_id: id,
    primary_group_id: null,
    flair_group_id: null,
  }));
}

/** One entry of `topic_list.topics`. */
export function serializeListTopic(state: DiscourseState, topic: DiscourseTopic): Json {
  const posts = state.visiblePosts(topic);
  const last = posts[posts.length - 1];
  const json: Json = {
    id: topic.id,
    title: topic.title,
    fancy_title: topic.title,
    slug: topic.slug,
    posts_count: posts.length,
    reply_count: posts.filter((p) => p.reply_to_post_number !== null).length,
    highest_post_number: topic.highest_post_number,
    image_url: null,
    created_at: topic.created_at,
    last_posted_at: topic.last_posted_at,
    bumped: topic.bumped_at !== topic.created_at,
    bumped_at: topic.bumped_at,
    archetype: "regular",
    unseen: false,
    pinned: topic.pinned,
    unpinned: null,
    visible: topic.visible,
    closed: topic.closed,
    archived: topic.archived,
    bookmarked: null,
    liked: null,
    tags: [],
    tags_descriptions: {},
    views: topic.views,
    like_count: 0,
    has_summary: false,
    last_poster_username: last === undefined ? null : state.requireUser(last.user_id).username,
    category_id: topic.category_id,
    pinned_globally: false,
    featured_link: null,
    posters: posters(state, topic),
  };
  // Discourse sends an excerpt for pinned topics only.
  if (topic.pinned) json.excerpt = textOf(state.firstPost(topic).cooked);
  return json;
}

/** The users a topic list refers to (`users[]` beside `topic_list`). */
export function listUsers(state: DiscourseState, topics: DiscourseTopic[]): Json[] {
  const ids = new Set<number>();
  for (const topic of topics) for (const post of state.visiblePosts(topic)) ids.add(post.user_id);
  return [...ids].sort((a, b) => a - b).map((id) => basicUser(state.requireUser(id)));
}

/** `GET /t/{id}.json`: the first chunk of posts and the ids of all of them. */
export function serializeTopicView(state: DiscourseState, topic: DiscourseTopic, viewer: DiscourseUser | null, withRaw: boolean): Json {
  const posts = state.visiblePosts(topic);
  return {
    post_stream: {
      posts: posts.slice(0, DISCOURSE_CHUNK_SIZE).map((p) => serializePost(state, p, viewer, withRaw)),
      stream: posts.map((p) => p.id),
    },
    timeline_lookup: [[1, 0]],
    suggested_topics: [],
    tags: [],
    ...serializeTopicFields(state, topic),
    chunk_size: DISCOURSE_CHUNK_SIZE,
    draft_key: `topic_${topic.id}`,
    message_bus_last_id: 0,
  };
}

/** The topic view without `post_stream`: also the body of `topic_*` webhooks (§2.6). */
export function serializeTopicFields(state: DiscourseState, topic: DiscourseTopic): Json {
  const posts = state.visiblePosts(topic);
  const last = posts[posts.length - 1];
  const participants = [...new Set(posts.map((p) => p.user_id))].map((id) => {
    const user = state.requireUser(id);
    return { ...basicUser(user), post_count: posts.filter((p) => p.user_id === id).length, admin: user.admin, moderator: user.moderator, trust_level: user.trust_level };
  });
  const createdBy = basicUser(state.requireUser(topic.user_id));
  const lastPoster = last === undefined ? createdBy : basicUser(state.requireUser(last.user_id));
  return {
    id: topic.id,
    title: topic.title,
    fancy_title: topic.title,
    posts_count: posts.length,
    created_at: topic.created_at,
    views: topic.views,
    reply_count: posts.filter((p) => p.reply_to_post_number !== null).length,
    like_count: 0,
    last_posted_at: topic.last_posted_at,
    visible: topic.visible,
    closed: topic.closed,
    archived: topic.archived,
    has_summary: false,
    archetype: "regular",
    slug: topic.slug,
    category_id: topic.category_id,
    word_count: posts.reduce((n, p) => n + p.raw.split(/\s+/).filter(Boolean).length, 0),
    deleted_at: topic.deleted_at,
    user_id: topic.user_id,
    featured_link: null,
    pinned_globally: false,
    pinned_at: topic.pinned ? topic.created_at : null,
    pinned_until: null,
    pinned: topic.pinned,
    highest_post_number: topic.highest_post_number,
    deleted_by: topic.deleted_by_id === null ? null : basicUser(state.requireUser(topic.deleted_by_id)),
    has_deleted: topic.post_ids.length > posts.length,
    participant_count: participants.length,
    created_by: createdBy,
    last_poster: lastPoster,
    details: {
      can_edit: true,
      can_create_post: !topic.closed,
      participants,
      created_by: createdBy,
      last_poster: lastPoster,
    },
  };
}

/** A category payload; counts exclude the About topic, as Discourse's do. */
export function serializeCategory(state: DiscourseState, category: DiscourseCategory): Json {
  const topics = [...state.topics.values()].filter((t) => t.category_id === category.id && t.deleted_at === null && t.id !== category.about_topic_id);
  const about = category.about_topic_id === null ? undefined : state.topics.get(category.about_topic_id);
  const description = state.categoryDescription(category);
  const descriptionText = state.categoryDescriptionText(category);
  const children = [...state.categories.values()].filter((c) => c.parent_category_id === category.id && !c.deleted);
  const json: Json = {
    ...category.extra,
    id: category.id,
    name: category.name,
    color: category.color,
    text_color: category.text_color,
    slug: category.slug,
    topic_count: topics.length,
    post_count: topics.reduce((n, t) => n + state.visiblePosts(t).length, 0),
    position: category.position,
    description,
    description_text: descriptionText,
    description_excerpt: descriptionText,
    topic_url: about === undefined ? "/t/" : `/t/${about.slug}/${about.id}`,
    has_children: children.length > 0,
    subcategory_ids: children.map((c) => c.id),
    can_edit: true,
  };
  if (category.parent_category_id !== null) json.parent_category_id = category.parent_category_id;
  json.style_type ??= "square";
  json.read_restricted ??= false;
  json.permission ??= 1;
  json.notification_level ??= 1;
  return json;
}

/** `GET /u/{username}.json`. */
export function serializeUser(state: DiscourseState, user: DiscourseUser): Json {
  const posts = [...state.posts.values()].filter((p) => p.user_id === user.id && p.deleted_at === null);
  const last = posts.map((p) => p.created_at).sort().at(-1) ?? null;
  return {
    user_badges: [],
    user: {
      ...user.extra,
      ...basicUser(user),
      created_at: user.created_at,
      last_posted_at: last,
      last_seen_at: user.last_seen_at,
      trust_level: user.trust_level,
      admin: user.admin,
      moderator: user.moderator,
      title: null,
      custom_fields: {},
      post_count: posts.filter((p) => p.post_number > 1).length,
      topic_count: posts.filter((p) => p.post_number === 1).length,
      locale: null,
      external_id: user.external_id,
    },
  };
}
