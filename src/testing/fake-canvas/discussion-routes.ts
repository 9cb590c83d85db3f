// Fake Canvas routes for discussion topics, their entries and `/view`, and announcements.
import { denied, invalid, notFound, ok, requesterZone, type Reply, type RouteContext, type RouteHandler } from "./canvas-reply.js";
import { displayUser, isStaff, type CanvasEntry, type CanvasTopic } from "./canvas-state.js";
import { formatCanvasTime, paramBoolean, paramList, paramString, parseCanvasTime, rewriteUserHtml, type JsonObject } from "./canvas-wire.js";

/** How many replies `/entries` flattens into `recent_replies`. */
const RECENT_REPLIES = 10;
const DAY_MS = 86_400_000;

function findTopic(ctx: RouteContext): CanvasTopic | undefined {
  return ctx.state.topics.find((t) => String(t.id) === ctx.params.topic_id);
}

function entriesOf(ctx: RouteContext, topicId: number): CanvasEntry[] {
  let list = ctx.state.entries.get(topicId);
  if (!list) {
    list = [];
    ctx.state.entries.set(topicId, list);
  }
  return list;
}

/** Newest first; ties broken by id so the order is stable. */
function newestFirst(a: CanvasEntry, b: CanvasEntry): number {
  return Date.parse(b.created_at) - Date.parse(a.created_at) || b.id - a.id;
}

function listTopics(ctx: RouteContext): Reply {
  const announcements = paramBoolean(ctx.input.only_announcements) === true;
  const staff = isStaff(ctx.state, ctx.userId);
  const list = ctx.state.topics.filter((t) => t.is_announcement === announcements && (staff || t.published === true));
  const scopes = (paramString(ctx.input.scope) ?? "").split(",").filter((s) => s !== "");
  // Canvas applies locked/unlocked after paginating, so pages can come back short with `next` still present.
  const afterPage = scopes.includes("locked")
    ? (t: JsonObject) => t.locked === true
    : scopes.includes("unlocked")
      ? (t: JsonObject) => t.locked !== true
      : undefined;
  return { status: 200, list, paging: "numbered", ...(afterPage ? { afterPage } : {}) };
}

function getTopic(ctx: RouteContext): Reply {
  const topic = findTopic(ctx);
  return topic ? ok(topic) : notFound();
}

function applyTopicFields(ctx: RouteContext, topic: CanvasTopic): Reply | null {
  const { input } = ctx;
  const title = paramString(input.title);
  if (title !== undefined) topic.title = title;
  const message = paramString(input.message);
  if (message !== undefined) topic.message = rewriteUserHtml(message, ctx.origin);
  const type = paramString(input.discussion_type);
  if (type !== undefined) topic.discussion_type = type;
  for (const key of ["published", "pinned", "locked", "require_initial_post", "allow_rating"] as const) {
    const value = paramBoolean(input[key]);
    if (value !== undefined) topic[key] = value;
  }
  const delayed = paramString(input.delayed_post_at);
  if (delayed !== undefined) {
    const ms = delayed === "" ? null : parseCanvasTime(delayed, requesterZone(ctx));
    if (delayed !== "" && ms === null) return invalid("delayed_post_at", "invalid");
    topic.delayed_post_at = ms === null ? null : formatCanvasTime(ms);
  }
  return null;
}

function createTopic(ctx: RouteContext): Reply {
  if (!isStaff(ctx.state, ctx.userId)) return denied(ctx);
  const id = ctx.state.nextId++;
  const now = formatCanvasTime(ctx.now());
  const isAnnouncement = paramBoolean(ctx.input.is_announcement) === true;
  const author = ctx.state.users.find((u) => u.id === ctx.userId);
  const topic: CanvasTopic = {
    id, title: "", message: "", is_announcement: isAnnouncement, posted_at: now, created_at: now, last_reply_at: null,
    delayed_post_at: null, lock_at: null, locked: false, pinned: false, published: true, discussion_type: "side_comment",
    require_initial_post: false, allow_rating: false, discussion_subentry_count: 0, assignment_id: null,
    position: isAnnouncement ? null : ctx.state.topics.filter((t) => !t.is_announcement).length + 1,
    user_name: author?.name ?? "", author: displayUser(ctx.state, ctx.userId, ctx.origin), read_state: "read", unread_count: 0,
    html_url: `${ctx.origin}/courses/${ctx.state.course.id}/discussion_topics/${id}`,
    url: `${ctx.origin}/courses/${ctx.state.course.id}/discussion_topics/${id}`, attachments: [], topic_children: [],
  };
  const error = applyTopicFields(ctx, topic);
  if (error) return error;
  if (topic.title.trim() === "") topic.title = "No Title";
  ctx.state.topics.push(topic);
  return ok(topic);
}

function updateTopic(ctx: RouteContext): Reply {
  if (!isStaff(ctx.state, ctx.userId)) return denied(ctx);
  const topic = findTopic(ctx);
  if (!topic) return notFound();
  const draft = { ...topic };
  const error = applyTopicFields(ctx, draft);
  if (error) return error;
  Object.assign(topic, draft);
  return ok(topic);
}

/** Canvas answers a topic delete with a legacy model dump; connectors must treat the body as opaque. */
function deleteTopic(ctx: RouteContext): Reply {
  if (!isStaff(ctx.state, ctx.userId)) return denied(ctx);
  const topic = findTopic(ctx);
  if (!topic) return notFound();
  ctx.state.topics = ctx.state.topics.filter((t) => t !== topic);
  return ok({ discussion_topic: { id: topic.id, title: topic.title, workflow_state: "deleted", context_id: ctx.state.course.id } });
}

/** All live descendants of an entry, however deep. */
function descendants(all: CanvasEntry[], parentId: number): CanvasEntry[] {
  const children = all.filter((e) => e.parent_id === parentId);
  return children.flatMap((child) => [child, ...descendants(all, child.id)]);
}

function requireInitialPost(ctx: RouteContext, topic: CanvasTopic): Reply | null {
  if (topic.require_initial_post !== true || isStaff(ctx.state, ctx.userId)) return null;
  const posted = entriesOf(ctx, topic.id).some((e) => e.user_id === ctx.userId && !e.deleted);
  return posted ? null : { status: 403, text: '"require_initial_post"', contentType: "application/json; charset=utf-8" };
}

/** Top-level entries newest first, each with up to ten flattened `recent_replies`; deleted entries vanish here. */
function listEntries(ctx: RouteContext): Reply {
  const topic = findTopic(ctx);
  if (!topic) return notFound();
  const blocked = requireInitialPost(ctx, topic);
  if (blocked) return blocked;
  const all = entriesOf(ctx, topic.id);
  const list = all
    .filter((e) => e.parent_id === null && !e.deleted)
    .sort(newestFirst)
    .map((entry) => {
      const replies = descendants(all, entry.id).filter((e) => !e.deleted).sort(newestFirst);
      if (replies.length === 0) return entry;
      return { ...entry, recent_replies: replies.slice(0, RECENT_REPLIES), has_more_replies: replies.length > RECENT_REPLIES };
    });
  return { status: 200, list, paging: "numbered" };
}

/** Every live reply under a top-level entry, however deep, newest first (Canvas: `flattened_discussion_subentries`); 404 for a reply's id. */
function listReplies(ctx: RouteContext): Reply {
  const topic = findTopic(ctx);
  const all = topic ? entriesOf(ctx, topic.id) : [];
  const parent = all.find((e) => String(e.id) === ctx.params.entry_id && e.parent_id === null && !e.deleted);
  if (!topic || !parent) return notFound();
  const blocked = requireInitialPost(ctx, topic);
  if (blocked) return blocked;
  const list = descendants(all, parent.id).filter((e) => !e.deleted).sort(newestFirst);
  return { status: 200, list, paging: "numbered" };
}

function createEntry(ctx: RouteContext): Reply {
  const topic = findTopic(ctx);
  if (!topic) return notFound();
  const all = entriesOf(ctx, topic.id);
  let parentId: number | null = null;
  if (ctx.params.entry_id !== undefined) {
    const parent = all.find((e) => String(e.id) === ctx.params.entry_id && !e.deleted);
    if (!parent) return notFound();
    parentId = parent.id;
  }
  const message = paramString(ctx.input.message) ?? "";
  if (message.trim() === "") return invalid("message", "blank");
  const now = formatCanvasTime(ctx.now());
  const author = ctx.state.users.find((u) => u.id === ctx.userId);
  const entry: CanvasEntry = {
    id: ctx.state.nextId++, user_id: ctx.userId, parent_id: parentId, created_at: now, updated_at: now, rating_count: null,
    rating_sum: null, user_name: author?.name ?? "", message: rewriteUserHtml(message, ctx.origin),
    user: displayUser(ctx.state, ctx.userId, ctx.origin), read_state: "read", forced_read_state: false,
  };
  all.push(entry);
  topic.last_reply_at = now;
  topic.discussion_subentry_count = all.filter((e) => !e.deleted).length;
  return ok(entry, 201);
}

function findEntry(ctx: RouteContext): { topic: CanvasTopic; entry: CanvasEntry } | undefined {
  const topic = findTopic(ctx);
  const entry = topic ? entriesOf(ctx, topic.id).find((e) => String(e.id) === ctx.params.entry_id && !e.deleted) : undefined;
  return topic && entry ? { topic, entry } : undefined;
}

function updateEntry(ctx: RouteContext): Reply {
  const found = findEntry(ctx);
  if (!found) return notFound();
  if (found.entry.user_id !== ctx.userId && !isStaff(ctx.state, ctx.userId)) return { ...denied(ctx), status: 401 };
  const message = paramString(ctx.input.message);
  if (message !== undefined) found.entry.message = rewriteUserHtml(message, ctx.origin);
  found.entry.updated_at = formatCanvasTime(ctx.now());
  found.entry.editor_id = ctx.userId;
  return ok(found.entry);
}

/** 204; the entry stays as a tombstone (no user, no message) in `/view` and vanishes from `/entries`. */
function deleteEntry(ctx: RouteContext): Reply {
  const found = findEntry(ctx);
  if (!found) return notFound();
  if (found.entry.user_id !== ctx.userId && !isStaff(ctx.state, ctx.userId)) return { ...denied(ctx), status: 401 };
  const { entry, topic } = found;
  for (const key of ["user_id", "user_name", "message", "user"]) delete entry[key];
  entry.deleted = true;
  entry.updated_at = formatCanvasTime(ctx.now());
  topic.discussion_subentry_count = entriesOf(ctx, topic.id).filter((e) => !e.deleted).length;
  return { status: 204, text: "" };
}

function viewNode(entry: CanvasEntry): JsonObject {
  if (entry.deleted) return { id: entry.id, parent_id: entry.parent_id, created_at: entry.created_at, updated_at: entry.updated_at, deleted: true };
  const { id, user_id, parent_id, created_at, updated_at, rating_count, rating_sum, message } = entry;
  return { id, user_id, parent_id, created_at, updated_at, rating_count, rating_sum, message };
}

/** `entry_list?ids[]=…`: the entries asked for, in id order, at any depth; a deleted one as a stub with `deleted: true`. */
function listEntriesById(ctx: RouteContext): Reply {
  const topic = findTopic(ctx);
  if (!topic) return notFound();
  const blocked = requireInitialPost(ctx, topic);
  if (blocked) return blocked;
  const ids = new Set(paramList(ctx.input.ids));
  const found = entriesOf(ctx, topic.id).filter((e) => ids.has(String(e.id))).sort((a, b) => a.id - b.id);
  return ok(found.map((e) => (e.deleted ? viewNode(e) : e)));
}

/**
 * The materialized thread, oldest first with nested `replies`. "building" answers 503 with an empty body;
 * "stale" shows only the entries cached when it went stale, newer ones flat in `new_entries` if asked for.
 */
function getView(ctx: RouteContext): Reply {
  const topic = findTopic(ctx);
  if (!topic) return notFound();
  const blocked = requireInitialPost(ctx, topic);
  if (blocked) return blocked;
  const mode = ctx.state.knobs.viewMode;
  if (mode === "building") return { status: 503, text: "" };
  const all = [...entriesOf(ctx, topic.id)].sort((a, b) => Date.parse(a.created_at) - Date.parse(b.created_at) || a.id - b.id);
  const cached = mode === "stale" ? all.filter((e) => ctx.state.viewCachedEntryIds.has(e.id)) : all;
  const fresh = mode === "stale" ? all.filter((e) => !ctx.state.viewCachedEntryIds.has(e.id)) : [];
  const build = (parentId: number | null): JsonObject[] =>
    cached
      .filter((e) => e.parent_id === parentId)
      .map((e) => {
        const replies = build(e.id);
        return replies.length > 0 ? { ...viewNode(e), replies } : viewNode(e);
      });
  const authors = [...new Set(all.map((e) => e.user_id).filter((id): id is number => id !== undefined))];
  return ok({
    unread_entries: all.filter((e) => e.read_state === "unread" && !e.deleted).map((e) => e.id),
    forced_entries: [],
    entry_ratings: {},
    participants: authors.map((id) => displayUser(ctx.state, id, ctx.origin)),
    view: build(null),
    new_entries: paramBoolean(ctx.input.include_new_entries) === true ? fresh.map(viewNode) : [],
  });
}

/** Needs `context_codes[]`; without dates only announcements posted in [now − 14 days, that + 28 days] come back. */
function listAnnouncements(ctx: RouteContext): Reply {
  const codes = paramList(ctx.input.context_codes);
  if (codes.length === 0) return { status: 400, json: { message: "Missing context_codes" } };
  const code = `course_${ctx.state.course.id}`;
  if (!codes.every((c) => c === code)) return denied(ctx);
  const zone = requesterZone(ctx);
  const startRaw = paramString(ctx.input.start_date);
  const endRaw = paramString(ctx.input.end_date);
  const start = (startRaw === undefined ? null : parseCanvasTime(startRaw, zone, "start")) ?? ctx.now() - 14 * DAY_MS;
  const end = (endRaw === undefined ? null : parseCanvasTime(endRaw, zone, "end")) ?? start + 28 * DAY_MS;
  const list = ctx.state.topics
    .filter((t) => t.is_announcement && t.posted_at !== null)
    .filter((t) => {
      const posted = Date.parse(t.posted_at ?? "");
      return posted >= start && posted <= end;
    })
    .sort((a, b) => Date.parse(b.posted_at ?? "") - Date.parse(a.posted_at ?? "") || b.id - a.id)
    .map((t) => ({ ...t, context_code: code }));
  return { status: 200, list, paging: "numbered" };
}

const TOPIC = "/courses/:course_id/discussion_topics/:topic_id";

export const DISCUSSION_ROUTES: [string, string, RouteHandler][] = [
  ["GET", "/courses/:course_id/discussion_topics", listTopics],
  ["POST", "/courses/:course_id/discussion_topics", createTopic],
  ["GET", TOPIC, getTopic],
  ["PUT", TOPIC, updateTopic],
  ["DELETE", TOPIC, deleteTopic],
  ["GET", `${TOPIC}/entries`, listEntries],
  ["POST", `${TOPIC}/entries`, createEntry],
  ["PUT", `${TOPIC}/entries/:entry_id`, updateEntry],
  ["DELETE", `${TOPIC}/entries/:entry_id`, deleteEntry],
  ["GET", `${TOPIC}/entries/:entry_id/replies`, listReplies],
  ["POST", `${TOPIC}/entries/:entry_id/replies`, createEntry],
  ["GET", `${TOPIC}/view`, getView],
  ["GET", `${TOPIC}/entry_list`, listEntriesById],
  ["GET", "/announcements", listAnnouncements],
];
