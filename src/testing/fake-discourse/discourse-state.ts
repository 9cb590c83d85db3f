import { cookRaw, isoMs, slugify, textOf } from "./discourse-cook.js";

/** A forum user. System users have negative ids (`system` is -1). */
export interface DiscourseUser {
  id: number;
  username: string;
  name: string;
  avatar_template: string;
  trust_level: number;
  admin: boolean;
  moderator: boolean;
  created_at: string;
  last_seen_at: string | null;
  external_id: string | null;
  /** Fields of the fixture's user payload the model does not name, served back unchanged. */
  extra: Record<string, unknown>;
}

/** A category; its description is the cooked first post of its About topic. */
export interface DiscourseCategory {
  id: number;
  name: string;
  slug: string;
  color: string;
  text_color: string;
  position: number;
  parent_category_id: number | null;
  /** The pinned "About the X category" topic, or null (Uncategorized has none). */
  about_topic_id: number | null;
  /** Used when there is no About topic (Uncategorized). */
  fallback_description: string | null;
  deleted: boolean;
  extra: Record<string, unknown>;
}

export interface DiscourseTopic {
  id: number;
  title: string;
  slug: string;
  category_id: number;
  user_id: number;
  created_at: string;
  bumped_at: string;
  last_posted_at: string;
  pinned: boolean;
  closed: boolean;
  archived: boolean;
  visible: boolean;
  views: number;
  external_id: string | null;
  deleted_at: string | null;
  deleted_by_id: number | null;
  /** Every post of the topic in post-number order, deleted ones included. */
  post_ids: number[];
  highest_post_number: number;
}

export interface DiscoursePostRevision {
  version: number;
  raw: string;
  editor_id: number;
  at: string;
  /** Hidden by staff: the post's public version no longer counts it. */
  hidden?: boolean;
}

export interface DiscoursePost {
  id: number;
  topic_id: number;
  post_number: number;
  post_type: number;
  user_id: number;
  raw: string;
  cooked: string;
  created_at: string;
  updated_at: string;
  version: number;
  /** When the current version began: edits by the same user inside the grace period keep it. */
  last_version_at: string;
  last_editor_id: number;
  reply_to_post_number: number | null;
  edit_reason: string | null;
  deleted_at: string | null;
  user_deleted: boolean;
  reads: number;
  score: number;
  revisions: DiscoursePostRevision[];
}

/** Limits Discourse applies to posts; the defaults are the site-setting defaults (§2.7). */
export interface DiscourseSettings {
  /** `editing_grace_period`: same-user edits inside it keep the version. */
  editingGracePeriodMs: number;
  minTopicTitleLength: number;
  minFirstPostLength: number;
  minPostLength: number;
  /** API creates are memoized for 120 s on a hash of their params and user. */
  createMemoMs: number;
  /** `approve_unless_trust_level`: posts by non-staff users below it wait in the review queue (0: none do). */
  approveUnlessTrustLevel: number;
}

export const DEFAULT_DISCOURSE_SETTINGS: DiscourseSettings = {
  editingGracePeriodMs: 300_000,
  minTopicTitleLength: 15,
  minFirstPostLength: 20,
  minPostLength: 20,
  createMemoMs: 120_000,
  approveUnlessTrustLevel: 0,
};

/** A change the forum would announce through a webhook. */
export type DiscourseChange =
  | { kind: "post_created" | "post_edited" | "post_destroyed" | "post_recovered"; postId: number }
  | { kind: "topic_created" | "topic_edited" | "topic_destroyed" | "topic_recovered"; topicId: number }
  | { kind: "category_created" | "category_updated"; categoryId: number };

/** A refused write, answered as a 4xx by the HTTP layer. */
export class DiscourseStateError extends Error {
  constructor(
    readonly status: 403 | 404 | 409 | 422,
    readonly errors: string[],
    readonly code: "not_found" | "edit_conflict" | "create_post" | "record_invalid" | "invalid_access",
  ) {
    super(errors.join(" "));
    this.name = "DiscourseStateError";
  }
}

/**
 * The forum's in-memory state. Tests read it and mutate it through these methods as "remote
 * edits": every mutation follows the same rules as the HTTP routes and announces its change to
 * the webhook emitter, so a change made here looks exactly like one made by a forum user.
 */
export class DiscourseState {
  readonly users = new Map<number, DiscourseUser>();
  readonly categories = new Map<number, DiscourseCategory>();
  readonly topics = new Map<number, DiscourseTopic>();
  readonly posts = new Map<number, DiscoursePost>();
  readonly settings: DiscourseSettings;
  // New ids follow the seeded ones, so a created topic gets 303 and post 1006 as in the create fixtures.
  private nextIds = { category: 1, topic: 1, post: 1 };
  private readonly listeners: ((change: DiscourseChange) => void)[] = [];

  constructor(
    readonly clock: () => number,
    settings: Partial<DiscourseSettings> = {},
  ) {
    this.settings = { ...DEFAULT_DISCOURSE_SETTINGS, ...settings };
  }

  /** Called on every change; the webhook emitter subscribes here. */
  onChange(listener: (change: DiscourseChange) => void): void {
    this.listeners.push(listener);
  }

  /** Announces a change; public so that state operations kept in other files announce theirs too. */
  emit(change: DiscourseChange): void {
    for (const listener of this.listeners) listener(change);
  }

  private now(): string {
    return isoMs(this.clock());
  }

  /** Ids handed out after seeding start above every seeded id, so they never collide. */
  reserveIdsAbove(kind: "category" | "topic" | "post", id: number): void {
    this.nextIds[kind] = Math.max(this.nextIds[kind], id + 1);
  }

  private takeId(kind: "category" | "topic" | "post"): number {
    return this.nextIds[kind]++;
  }

  userByName(username: string): DiscourseUser | undefined {
    const wanted = username.toLowerCase();
    for (const user of this.users.values()) if (user.username.toLowerCase() === wanted) return user;
    return undefined;
  }

  requireUser(id: number): DiscourseUser {
    const user = this.users.get(id);
    if (user === undefined) throw new Error(`fake-discourse: no user ${id}`);
    return user;
  }

  requireTopic(id: number): DiscourseTopic {
    const topic = this.topics.get(id);
    if (topic === undefined) throw notFound();
    return topic;
  }

  requirePost(id: number): DiscoursePost {
    const post = this.posts.get(id);
    if (post === undefined) throw notFound();
    return post;
  }

  /** Posts of a topic that are not deleted, in post-number order: the topic's `stream`. */
  visiblePosts(topic: DiscourseTopic): DiscoursePost[] {
    return topic.post_ids.map((id) => this.requirePost(id)).filter((post) => post.deleted_at === null);
  }

  firstPost(topic: DiscourseTopic): DiscoursePost {
    const id = topic.post_ids[0];
    if (id === undefined) throw new Error(`fake-discourse: topic ${topic.id} has no posts`);
    return this.requirePost(id);
  }

  /** Creates a category and its pinned About topic, as `POST /categories.json` does. */
  createCategory(input: { name: string; color?: string; text_color?: string; slug?: string; parent_category_id?: number | null; description?: string }, byUserId = -1): DiscourseCategory {
    const name = input.name.trim();
    if (name === "") throw new DiscourseStateError(422, ["Name can't be blank"], "record_invalid");
    for (const other of this.categories.values()) {
      if (!other.deleted && other.name.toLowerCase() === name.toLowerCase()) {
        throw new DiscourseStateError(422, ["Category Name has already been taken"], "record_invalid");
      }
    }
    const category: DiscourseCategory = {
      id: this.takeId("category"),
      name,
      slug: input.slug ?? slugify(name),
      color: input.color ?? "0088CC",
      text_color: input.text_color ?? "FFFFFF",
      position: this.categories.size,
      parent_category_id: input.parent_category_id ?? null,
      about_topic_id: null,
      fallback_description: null,
      deleted: false,
      extra: {},
    };
    this.categories.set(category.id, category);
    const about = this.insertTopic({
      title: `About the ${name} category`,
      raw: input.description ?? `(Replace this first paragraph with a brief description of your new category.)`,
      category_id: category.id,
      user_id: byUserId,
      pinned: true,
    });
    category.about_topic_id = about.id;
    this.emit({ kind: "category_created", categoryId: category.id });
    return category;
  }

  /** Creates a topic with its first post, skipping the validation of the create route. */
  insertTopic(input: { title: string; raw: string; category_id: number; user_id: number; pinned?: boolean; external_id?: string | null; created_at?: string }): DiscourseTopic {
    const at = input.created_at ?? this.now();
    const topic: DiscourseTopic = {
      id: this.takeId("topic"),
      title: input.title,
      slug: slugify(input.title) || "topic",
      category_id: input.category_id,
      user_id: input.user_id,
      created_at: at,
      bumped_at: at,
      last_posted_at: at,
      pinned: input.pinned ?? false,
      closed: false,
      archived: false,
      visible: true,
      views: 0,
      external_id: input.external_id ?? null,
      deleted_at: null,
      deleted_by_id: null,
      post_ids: [],
      highest_post_number: 0,
    };
    this.topics.set(topic.id, topic);
    this.insertPost({ topic_id: topic.id, raw: input.raw, user_id: input.user_id, created_at: at });
    this.emit({ kind: "topic_created", topicId: topic.id });
    return topic;
  }

  /** Adds a post to a topic and bumps it, skipping the validation of the create route. */
  insertPost(input: { topic_id: number; raw: string; user_id: number; reply_to_post_number?: number | null; created_at?: string }): DiscoursePost {
    const topic = this.requireTopic(input.topic_id);
    const at = input.created_at ?? this.now();
    topic.highest_post_number += 1;
    const post: DiscoursePost = {
      id: this.takeId("post"),
      topic_id: topic.id,
      post_number: topic.highest_post_number,
      post_type: 1,
      user_id: input.user_id,
      raw: input.raw,
      cooked: cookRaw(input.raw),
      created_at: at,
      updated_at: at,
      version: 1,
      last_version_at: at,
      last_editor_id: input.user_id,
      reply_to_post_number: input.reply_to_post_number ?? null,
      edit_reason: null,
      deleted_at: null,
      user_deleted: false,
      reads: 0,
      score: 0,
      revisions: [{ version: 1, raw: input.raw, editor_id: input.user_id, at }],
    };
    this.posts.set(post.id, post);
    topic.post_ids.push(post.id);
    topic.bumped_at = at;
    topic.last_posted_at = at;
    this.emit({ kind: "post_created", postId: post.id });
    return post;
  }

  /** Validates and creates a topic as `POST /posts.json` with a title does (§2.7 rules). */
  createTopic(input: { title: string; raw: string; category_id: number; user_id: number; external_id?: string | null; created_at?: string }): DiscoursePost {
    const errors: string[] = [];
    const title = input.title.trim();
    if (title.length < this.settings.minTopicTitleLength) errors.push(`Title must be at least ${this.settings.minTopicTitleLength} characters`);
    else if (this.titleTaken(title, null)) errors.push("Title has already been used");
    if (input.raw.trim().length < this.settings.minFirstPostLength) errors.push(`Body must be at least ${this.settings.minFirstPostLength} characters`);
    if (!this.categories.has(input.category_id)) errors.push("Category can't be blank");
    if (errors.length > 0) throw new DiscourseStateError(422, errors, "create_post");
    const topic = this.insertTopic({ ...input, title });
    return this.firstPost(topic);
  }

  /** Validates and creates a reply as `POST /posts.json` with a `topic_id` does. */
  createReply(input: { topic_id: number; raw: string; user_id: number; reply_to_post_number?: number | null; created_at?: string }): DiscoursePost {
    const topic = this.topics.get(input.topic_id);
    if (topic === undefined || topic.deleted_at !== null) throw notFound();
    const errors: string[] = [];
    if (input.raw.trim().length < this.settings.minPostLength) errors.push(`Body must be at least ${this.settings.minPostLength} characters`);
    // "Too similar": the same author posting the same body again in the same topic.
    const last = [...topic.post_ids].reverse().map((id) => this.requirePost(id)).find((p) => p.user_id === input.user_id && p.deleted_at === null);
    if (last !== undefined && last.raw.trim() === input.raw.trim()) errors.push("Body is too similar to what you recently posted");
    if (errors.length > 0) throw new DiscourseStateError(422, errors, "create_post");
    return this.insertPost(input);
  }

  private titleTaken(title: string, exceptTopicId: number | null): boolean {
    const wanted = title.toLowerCase();
    for (const topic of this.topics.values()) {
      if (topic.id !== exceptTopicId && topic.deleted_at === null && topic.title.toLowerCase() === wanted) return true;
    }
    return false;
  }

  /**
   * Edits a post's raw. `original_text`, when given, must equal the current raw or the edit is a
   * 409 conflict. The version bumps only for another editor or after the grace period (§2.7).
   */
  editPost(postId: number, input: { raw: string; editor_id: number; edit_reason?: string | null; original_text?: string }): DiscoursePost {
    const post = this.requirePost(postId);
    if (post.deleted_at !== null) throw notFound();
    if (input.original_text !== undefined && input.original_text !== post.raw) {
      throw new DiscourseStateError(409, ["The post was edited by someone else. Your changes were not saved."], "edit_conflict");
    }
    const minLength = post.post_number === 1 ? this.settings.minFirstPostLength : this.settings.minPostLength;
    if (input.raw.trim().length < minLength) throw new DiscourseStateError(422, [`Body must be at least ${minLength} characters`], "record_invalid");
    if (input.raw === post.raw) return post;
    const nowMs = this.clock();
    const now = isoMs(nowMs);
    const sinceVersion = nowMs - Date.parse(post.last_version_at);
    if (input.editor_id !== post.last_editor_id || sinceVersion > this.settings.editingGracePeriodMs) {
      post.version += 1;
      post.last_version_at = now;
      post.last_editor_id = input.editor_id;
      post.revisions.push({ version: post.version, raw: input.raw, editor_id: input.editor_id, at: now });
    } else {
      const current = post.revisions[post.revisions.length - 1];
      if (current !== undefined) current.raw = input.raw;
    }
    post.raw = input.raw;
    post.cooked = cookRaw(input.raw);
    post.updated_at = now;
    if (input.edit_reason !== undefined) post.edit_reason = input.edit_reason;
    this.emit({ kind: "post_edited", postId: post.id });
    return post;
  }

  /** Changes a topic's title or category. Neither bumps the topic (§5.6). */
  updateTopic(topicId: number, input: { title?: string; category_id?: number }): DiscourseTopic {
    const topic = this.requireTopic(topicId);
    if (topic.deleted_at !== null) throw notFound();
    if (input.title !== undefined) {
      const title = input.title.trim();
      if (title.length < this.settings.minTopicTitleLength) {
        throw new DiscourseStateError(422, [`Title must be at least ${this.settings.minTopicTitleLength} characters`], "record_invalid");
      }
      if (this.titleTaken(title, topic.id)) throw new DiscourseStateError(422, ["Title has already been used"], "record_invalid");
      topic.title = title;
      topic.slug = slugify(title) || "topic";
    }
    if (input.category_id !== undefined) {
      if (!this.categories.has(input.category_id)) throw new DiscourseStateError(422, ["Category can't be blank"], "record_invalid");
      topic.category_id = input.category_id;
    }
    this.emit({ kind: "topic_edited", topicId: topic.id });
    return topic;
  }

  /** Staff soft delete: `deleted_at` is set. Deleting post #1 deletes the whole topic (§2.7). */
  deletePost(postId: number, byUserId: number): void {
    const post = this.requirePost(postId);
    if (post.deleted_at !== null) throw notFound();
    if (post.post_number === 1) {
      this.deleteTopic(post.topic_id, byUserId);
      return;
    }
    post.deleted_at = this.now();
    this.emit({ kind: "post_destroyed", postId: post.id });
  }

  deleteTopic(topicId: number, byUserId: number): void {
    const topic = this.requireTopic(topicId);
    if (topic.deleted_at !== null) throw notFound();
    const now = this.now();
    topic.deleted_at = now;
    topic.deleted_by_id = byUserId;
    const first = this.firstPost(topic);
    first.deleted_at = now;
    this.emit({ kind: "post_destroyed", postId: first.id });
    this.emit({ kind: "topic_destroyed", topicId: topic.id });
  }

  recoverPost(postId: number): DiscoursePost {
    const post = this.requirePost(postId);
    if (post.post_number === 1) {
      this.recoverTopic(post.topic_id);
      return post;
    }
    post.deleted_at = null;
    this.emit({ kind: "post_recovered", postId: post.id });
    return post;
  }

  recoverTopic(topicId: number): DiscourseTopic {
    const topic = this.requireTopic(topicId);
    topic.deleted_at = null;
    topic.deleted_by_id = null;
    this.firstPost(topic).deleted_at = null;
    this.emit({ kind: "topic_recovered", topicId: topic.id });
    return topic;
  }

  /** The category's description: the cooked first post of its About topic. */
  categoryDescription(category: DiscourseCategory): string | null {
    if (category.about_topic_id === null) return category.fallback_description;
    const about = this.topics.get(category.about_topic_id);
    return about === undefined ? category.fallback_description : this.firstPost(about).cooked;
  }

  categoryDescriptionText(category: DiscourseCategory): string | null {
    const cooked = this.categoryDescription(category);
    return cooked === null ? null : textOf(cooked);
  }
}

function notFound(): DiscourseStateError {
  return new DiscourseStateError(404, ["The requested URL or resource could not be found."], "not_found");
}
