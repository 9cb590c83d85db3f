import type { CreateInput } from "../../crdt/doc-store.js";
import type { DocUrl, ExternalIdentity } from "../../crdt/ids.js";
import type { Kind } from "../../crdt/schema/kinds.js";
import { importedDocument, instant, nullableText, remoteIdentity, remoteUrl, text, type Imported } from "../remote-documents.js";

export { instant, type Imported };

/**
 * Discourse payloads to document fields: pure functions, no I/O. Like the Canvas mapping,
 * every Discourse object gets a document whose URL follows from (instance, type, id), so the
 * same post imported on two laptops offline is one document, and a reference (a post's topic,
 * parent or author) is a URL computed from an id, with no lookup.
 *
 * A topic is one `discussion_topic` whose message is post #1's `raw`; post #1 is not also a
 * `post` document. `raw` is the source of every message: `cooked` is Discourse's rendering,
 * re-baked at will, and is never read.
 */

/** One Discourse instance: documents of two forums never collide. */
export interface DiscourseInstance {
  /** `discourse:<host>`, the `system` of every identity from this forum. */
  system: string;
}

export function discourseInstance(baseUrl: string): DiscourseInstance {
  return { system: `discourse:${new URL(baseUrl).host}` };
}

/** Discourse object types as they appear in identities. */
export type DiscourseType = "user" | "topic" | "post";

/**
 * What a node appends to the raw of a post it creates: an HTML comment (Discourse renders
 * nothing for it) naming the outbox entry, so after a crash the node can tell whether its
 * request created the post before it sends again. Pulls take it off.
 */
export function sendMark(key: string): string {
  return `\n\n<!-- ordo:${key} -->`;
}

const SEND_MARK = /\n*<!-- ordo:([0-9a-f-]{36}) -->\s*$/;

export function withoutSendMark(raw: string): string {
  return raw.replace(SEND_MARK, "");
}

/** The outbox key a raw carries, if this node made the post: an edit keeps the mark where it was. */
export function sendMarkKey(raw: string): string | null {
  return SEND_MARK.exec(raw)?.[1] ?? null;
}

const KIND_OF = { user: "user", topic: "discussion_topic", post: "post" } as const satisfies Record<DiscourseType, Kind>;

export function identityOf(instance: DiscourseInstance, type: DiscourseType, id: string | number): ExternalIdentity {
  return remoteIdentity(instance.system, type, id);
}

export function urlOf(instance: DiscourseInstance, type: DiscourseType, id: string | number | null | undefined): DocUrl | null {
  return remoteUrl(KIND_OF[type], instance.system, type, id);
}

/**
 * Documents that are Discourse objects without the URL their identity gives: a topic or post
 * made on this node (or mirrored from Canvas) and pushed. Keyed `type/id`, from `remote_ids`.
 */
export type MappedUrls = ReadonlyMap<string, DocUrl>;

/** The document a Discourse object is: the one it was pushed from, else the one its identity names. */
export function refOf(instance: DiscourseInstance, type: DiscourseType, id: string | number | null | undefined, mapped?: MappedUrls): DocUrl | null {
  if (id === null || id === undefined || id === "") return null;
  return mapped?.get(`${type}/${String(id)}`) ?? urlOf(instance, type, id);
}

function imported<K extends Kind>(instance: DiscourseInstance, type: DiscourseType, id: string | number, kind: K, fields: CreateInput<K>): Imported<K> {
  return importedDocument(instance.system, type, id, kind, "discourse", fields);
}

const idOf = (value: unknown): string | null => (typeof value === "number" || (typeof value === "string" && value !== "") ? String(value) : null);

type Payload = Record<string, unknown>;

/** Discourse asks for an avatar at a size; 120 px is what its own user cards use. */
const DEFAULT_AVATAR_SIZE = "120";

/**
 * A user, from `/u/{username}.json`'s `user` or from the user fields every post carries
 * (`user_id`, `username`, `name`, `avatar_template`): both give the same document, so a pull
 * needs no request per user. Users are identified by id (usernames can be renamed).
 */
export function userFrom(instance: DiscourseInstance, u: Payload): Imported<"user"> {
  const id = idOf(u.id) ?? idOf(u.user_id) ?? "";
  const username = text(u.username);
  const name = text(u.name) || username;
  const avatar = nullableText(u.avatar_template);
  return imported(instance, "user", id, "user", {
    name,
    sortableName: name,
    email: nullableText(u.email),
    loginId: username || null,
    avatarUrl: avatar === null ? null : avatar.replace("{size}", DEFAULT_AVATAR_SIZE),
  });
}

/** The user fields a post carries, as a user payload for `userFrom`. */
export function postAuthor(post: Payload): Payload | null {
  const id = idOf(post.user_id);
  if (id === null) return null;
  return { id, username: post.username, name: post.name, avatar_template: post.avatar_template };
}

/**
 * A topic, from a topic view or list item and its post #1 (which holds the message). The
 * topic belongs to the node's course: the category is configured, not mapped per topic.
 */
export function topicFrom(instance: DiscourseInstance, course: DocUrl, topic: Payload, firstPost: Payload | null): Imported<"discussion_topic"> {
  const createdBy = ((topic.details as Payload | undefined)?.created_by as Payload | undefined)?.id;
  const author = idOf(topic.user_id) ?? idOf(createdBy) ?? idOf(firstPost?.user_id);
  return imported(instance, "topic", String(topic.id), "discussion_topic", {
    course,
    title: text(topic.title),
    message: firstPost === null || firstPost.deleted_at ? "" : withoutSendMark(text(firstPost.raw)),
    author: urlOf(instance, "user", author),
    published: topic.visible !== false,
    locked: topic.closed === true || topic.archived === true,
    announcement: false,
    postedAt: instant(topic.created_at),
    position: 0,
  });
}

/**
 * A reply (any post but #1). `reply_to_post_number` names the parent by number within the
 * topic; `postNumberToId` turns it into the parent's id. A reply to post #1 is a reply to the
 * topic itself (post #1 is the topic's message), so it has no parent post; so has a reply to
 * a post this pull could not see. A deleted post (by staff, or by its author) stays as a
 * placeholder with no message.
 * `mapped` names the documents of topics and posts pushed from here, so that a reply made in
 * Discourse to a mirrored thread joins that thread's documents.
 */
export function postFrom(instance: DiscourseInstance, course: DocUrl, topicId: string | number, post: Payload, postNumberToId: ReadonlyMap<number, string | number>, mapped?: MappedUrls): Imported<"post"> {
  const replyTo = typeof post.reply_to_post_number === "number" ? post.reply_to_post_number : null;
  const parentId = replyTo === null || replyTo === 1 ? undefined : postNumberToId.get(replyTo);
  // An author deleting their own reply leaves it in the stream with its raw replaced and `user_deleted`.
  const deleted = (typeof post.deleted_at === "string" && post.deleted_at.length > 0) || post.user_deleted === true;
  return imported(instance, "post", String(post.id), "post", {
    course,
    topic: refOf(instance, "topic", topicId, mapped),
    parent: refOf(instance, "post", parentId, mapped),
    author: urlOf(instance, "user", idOf(post.user_id)),
    message: deleted ? "" : withoutSendMark(text(post.raw)),
    editedAt: post.updated_at !== post.created_at ? instant(post.updated_at) : null,
    deleted,
  });
}
