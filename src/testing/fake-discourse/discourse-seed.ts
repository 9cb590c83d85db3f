import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { uncook } from "./discourse-cook.js";
import type { DiscourseCategory, DiscoursePost, DiscourseState, DiscourseTopic, DiscourseUser } from "./discourse-state.js";

/** Where the fixtures live in the repo (tests run on a clone without `../shared`). */
export const DEFAULT_DISCOURSE_FIXTURES_DIR = fileURLToPath(new URL("../../../tests/fixtures/lms/discourse/", import.meta.url));

type Json = Record<string, unknown>;

function readBody(dir: string, file: string): Json {
  const parsed = JSON.parse(readFileSync(join(dir, file), "utf8")) as { body: Json };
  return parsed.body;
}

function str(value: unknown, fallback = ""): string {
  return typeof value === "string" ? value : fallback;
}

function num(value: unknown, fallback = 0): number {
  return typeof value === "number" ? value : fallback;
}

/** Reads one fixture's `body` (for tests comparing the fake's answers with the real shapes). */
export function readDiscourseFixture(file: string, dir = DEFAULT_DISCOURSE_FIXTURES_DIR): Json {
  return readBody(dir, file);
}

/**
 * Seeds the state with the BIO101 forum of the fixtures (CONTRACT §6): users, categories 1 and 12,
 * topics 300 (About), 301 (four posts) and 302. Posts the fixtures show only cooked get a raw
 * derived from their cooked HTML. Posts and topics the create fixtures return are not seeded:
 * the connector creates them.
 */
export function seedDiscourseFromFixtures(state: DiscourseState, dir = DEFAULT_DISCOURSE_FIXTURES_DIR): void {
  const listing = readBody(dir, "category_12_topics.json");
  const priya = (readBody(dir, "user_priya_n.json").user ?? {}) as Json;
  const topicView = readBody(dir, "topic_301.json");
  const participants = ((topicView.details as Json).participants ?? []) as Json[];
  for (const u of (listing.users ?? []) as Json[]) {
    const id = num(u.id);
    const participant = participants.find((p) => p.id === id);
    const isPriya = id === priya.id;
    const user: DiscourseUser = {
      id,
      username: str(u.username),
      name: str(u.name),
      avatar_template: str(u.avatar_template),
      trust_level: num(isPriya ? priya.trust_level : participant?.trust_level, id < 0 ? 4 : 2),
      admin: id < 0 || participant?.admin === true || id === 21,
      moderator: id < 0 || id === 22,
      created_at: str(isPriya ? priya.created_at : undefined, "2025-01-06T15:00:00.000Z"),
      last_seen_at: isPriya ? str(priya.last_seen_at) : null,
      external_id: isPriya ? str(priya.external_id) : null,
      extra: isPriya ? { ...priya } : {},
    };
    state.users.set(id, user);
  }

  const categories = ((readBody(dir, "categories.json").category_list as Json).categories ?? []) as Json[];
  for (const c of categories) {
    const { id, name, slug, color, text_color, position, description, ...extra } = c;
    const category: DiscourseCategory = {
      id: num(id),
      name: str(name),
      slug: str(slug),
      color: str(color),
      text_color: str(text_color),
      position: num(position),
      parent_category_id: typeof c.parent_category_id === "number" ? c.parent_category_id : null,
      about_topic_id: null,
      fallback_description: typeof description === "string" ? description : null,
      deleted: false,
      extra,
    };
    state.categories.set(category.id, category);
    state.reserveIdsAbove("category", category.id);
  }

  const rawById = new Map<number, string>();
  for (const p of ((readBody(dir, "topic_301_posts_with_raw.json").post_stream as Json).posts ?? []) as Json[]) rawById.set(num(p.id), str(p.raw));
  for (const p of (readBody(dir, "posts_latest.json").latest_posts ?? []) as Json[]) rawById.set(num(p.id), str(p.raw));
  const post1002 = readBody(dir, "post_1002.json");
  rawById.set(num(post1002.id), str(post1002.raw));

  const listedPosts: Json[] = [...(((topicView.post_stream as Json).posts ?? []) as Json[]), post1002];
  const latest = (readBody(dir, "posts_latest.json").latest_posts ?? []) as Json[];
  for (const item of ((listing.topic_list as Json).topics ?? []) as Json[]) {
    const topic: DiscourseTopic = {
      id: num(item.id),
      title: str(item.title),
      slug: str(item.slug),
      category_id: num(item.category_id),
      user_id: num((item.posters as Json[] | undefined)?.[0]?.user_id),
      created_at: str(item.created_at),
      bumped_at: str(item.bumped_at),
      last_posted_at: str(item.last_posted_at),
      pinned: item.pinned === true,
      closed: item.closed === true,
      archived: item.archived === true,
      visible: item.visible !== false,
      views: num(item.views),
      external_id: null,
      deleted_at: null,
      deleted_by_id: null,
      post_ids: [],
      highest_post_number: num(item.highest_post_number),
    };
    state.topics.set(topic.id, topic);
    state.reserveIdsAbove("topic", topic.id);
    let sources = [...listedPosts, ...latest].filter((p) => p.topic_id === topic.id);
    if (sources.length === 0 && topic.pinned) {
      // The About topic's first post is not in any fixture: rebuild it from the category description.
      const category = state.categories.get(topic.category_id);
      sources = [{ id: 1000, topic_id: topic.id, post_number: 1, user_id: topic.user_id, cooked: category?.fallback_description ?? "<p></p>", created_at: topic.created_at, updated_at: topic.created_at }];
      if (category !== undefined) category.about_topic_id = topic.id;
    }
    const byId = new Map<number, Json>();
    for (const p of sources) byId.set(num(p.id), { ...byId.get(num(p.id)), ...p });
    for (const p of [...byId.values()].sort((a, b) => num(a.post_number) - num(b.post_number))) {
      const post = postFromFixture(p, rawById.get(num(p.id)));
      state.posts.set(post.id, post);
      state.reserveIdsAbove("post", post.id);
      topic.post_ids.push(post.id);
    }
  }
}

function postFromFixture(p: Json, raw: string | undefined): DiscoursePost {
  const cooked = str(p.cooked);
  const created = str(p.created_at);
  const updated = str(p.updated_at, created);
  const version = num(p.version, 1);
  const userId = num(p.user_id);
  const source = raw ?? uncook(cooked);
  return {
    id: num(p.id),
    topic_id: num(p.topic_id),
    post_number: num(p.post_number, 1),
    post_type: num(p.post_type, 1),
    user_id: userId,
    raw: source,
    cooked,
    created_at: created,
    updated_at: updated,
    version,
    last_version_at: updated,
    last_editor_id: userId,
    reply_to_post_number: typeof p.reply_to_post_number === "number" ? p.reply_to_post_number : null,
    edit_reason: typeof p.edit_reason === "string" ? p.edit_reason : null,
    deleted_at: null,
    user_deleted: false,
    reads: num(p.reads),
    score: num(p.score),
    revisions: [{ version, raw: source, editor_id: userId, at: updated }],
  };
}

/** Shape of a generated forum: `topics` topics of `postsPerTopic` posts each in one category. */
export interface DiscourseScale {
  categoryId?: number;
  topics: number;
  postsPerTopic: number;
  /** Start of the generated timeline; each post is one minute after the previous one. */
  startMs?: number;
}

/**
 * Adds a large, deterministic forum to the state (same input, same ids and text), authored
 * round-robin by the seeded non-system users. Use it to exercise `post_stream` chunking and
 * topic-list pages.
 */
export function generateDiscourseForum(state: DiscourseState, scale: DiscourseScale): DiscourseTopic[] {
  const categoryId = scale.categoryId ?? 12;
  const authors = [...state.users.values()].filter((u) => u.id > 0).map((u) => u.id);
  if (authors.length === 0) authors.push(-1);
  let minute = 0;
  const startMs = scale.startMs ?? Date.parse("2025-02-01T09:00:00.000Z");
  const at = (): string => new Date(startMs + minute++ * 60_000).toISOString();
  const created: DiscourseTopic[] = [];
  for (let t = 0; t < scale.topics; t++) {
    const author = authors[t % authors.length] ?? -1;
    const topic = state.insertTopic({
      title: `Generated discussion number ${t + 1}`,
      raw: `Opening post of generated discussion ${t + 1}, long enough to be valid.`,
      category_id: categoryId,
      user_id: author,
      created_at: at(),
    });
    for (let p = 1; p < scale.postsPerTopic; p++) {
      state.insertPost({
        topic_id: topic.id,
        raw: `Reply ${p + 1} in generated discussion ${t + 1}: it's a "quoted" thought.`,
        user_id: authors[(t + p) % authors.length] ?? -1,
        created_at: at(),
      });
    }
    created.push(topic);
  }
  return created;
}
