import { plainText } from "../../src/connectors/canvas/canvas-requests.js";
import { mappedUrl } from "../../src/connectors/remote-records.js";
import type { DocUrl } from "../../src/crdt/ids.js";
import type { Entity } from "../../src/crdt/schema/document.js";
import { canvasDocument, EDITED, type CourseChanges, type Created, type CreatedKind, type EditedField } from "./course-changes.js";
import type { FaultyLms } from "./faulty-lms.js";

type Side = "node" | "canvas" | "discourse";

/**
 * Everything that must hold once the node has synced with both systems after the faults: each
 * object made anywhere is once on every side it belongs to (and the node's document is mapped
 * to exactly that object), each edited field holds its last edit everywhere, nothing is left
 * in the outbox or out of step, no side holds two copies of anything, and each document and
 * remote object are mapped one to one. Returns what does not hold, one line each.
 */
export async function courseProblems(lms: FaultyLms, changes: CourseChanges): Promise<string[]> {
  return [...(await createdProblems(lms, changes.created)), ...(await editProblems(lms, changes)), ...(await duplicateProblems(lms)), ...(await bookkeepingProblems(lms))];
}

async function createdProblems(lms: FaultyLms, created: readonly Created[]): Promise<string[]> {
  const problems: string[] = [];
  const nodeDocs = await courseDocuments(lms);
  for (const made of created) {
    const what = `${made.kind} ${made.tag} made in ${made.origin}`;
    const docs = nodeDocs.filter((doc) => KIND_OF[made.kind] === doc.kind && textOf(doc).includes(made.tag));
    if (docs.length !== 1) problems.push(`${what}: ${docs.length} documents on the node, not 1`);
    for (const [side, ids] of [
      ["canvas", canvasIds(lms, made.kind, made.tag)],
      ["discourse", discourseIds(lms, made.kind, made.tag)],
    ] as const) {
      if (ids.length !== made[side]) problems.push(`${what}: ${ids.length} in ${side} (${ids.join(", ")}), not ${made[side]}`);
      else if (ids.length === 1 && docs.length === 1 && docs[0]!.external[side] !== ids[0]) {
        problems.push(`${what}: its document says ${side} ${docs[0]!.external[side] ?? "nothing"}, ${side} holds it as ${ids[0]}`);
      }
    }
  }
  return problems;
}

async function editProblems(lms: FaultyLms, changes: CourseChanges): Promise<string[]> {
  const problems: string[] = [];
  for (const [field, tag] of changes.lastEdit) {
    for (const [side, text] of Object.entries(await editedTexts(lms, field))) {
      if (!text.includes(tag)) problems.push(`${field}: ${side} does not hold the last edit ${tag}: ${JSON.stringify(text.slice(0, 120))}`);
    }
  }
  if (changes.lastScore !== null) {
    const doc = await lms.store.find<"grade">(await canvasDocument(lms, "grade", EDITED.grade));
    const submission = lms.canvas.state.submissions.find((s) => String(s.id) === EDITED.grade);
    if (doc?.score !== changes.lastScore || submission?.score !== changes.lastScore) {
      problems.push(`grade: last given ${changes.lastScore}, the node holds ${String(doc?.score)}, Canvas ${String(submission?.score)}`);
    }
  }
  return problems;
}

/** An edited field's text on each side it lives on. */
async function editedTexts(lms: FaultyLms, field: EditedField): Promise<Partial<Record<Side, string>>> {
  const { state: canvas } = lms.canvas;
  const discourse = (postId: number | undefined) => (postId === undefined ? "" : (lms.discourse.state.posts.get(postId)?.raw ?? ""));
  const entry = (topic: number, id: string) => canvas.entries.get(topic)?.find((e) => String(e.id) === id)?.message ?? "";
  const node = async (type: "assignment" | "page" | "entry" | "discussion_topic", id: string) => textOf(await lms.store.find(await canvasDocument(lms, type, id)));
  switch (field) {
    case "assignment title":
      return { node: await node("assignment", EDITED.assignment), canvas: canvas.assignments.find((a) => String(a.id) === EDITED.assignment)?.name ?? "" };
    case "page body":
      return { node: await node("page", EDITED.page), canvas: canvas.pages.find((p) => String(p.page_id) === EDITED.page)?.body ?? "" };
    case "entry message":
      return { node: await node("entry", EDITED.entry.canvas), canvas: entry(41001, EDITED.entry.canvas), discourse: discourse(EDITED.entry.discourse) };
    case "topic message":
      return {
        node: await node("discussion_topic", EDITED.topic.canvas),
        canvas: canvas.topics.find((t) => String(t.id) === EDITED.topic.canvas)?.message ?? "",
        discourse: discourse(lms.discourse.state.topics.get(EDITED.topic.discourse)?.post_ids[0]),
      };
    case "assignment description in Canvas":
      return { node: await node("assignment", EDITED.remoteAssignment), canvas: String(canvas.assignments.find((a) => String(a.id) === EDITED.remoteAssignment)?.description ?? "") };
    case "post in Discourse":
      return { node: await node("entry", EDITED.remotePost.canvas), canvas: entry(41001, EDITED.remotePost.canvas), discourse: discourse(EDITED.remotePost.discourse) };
  }
}

/** Two objects of a kind in one place with the same words: one was made twice. */
async function duplicateProblems(lms: FaultyLms): Promise<string[]> {
  const { state: canvas } = lms.canvas;
  const discourse = lms.discourse.state;
  const liveEntries = [...canvas.entries].flatMap(([topic, entries]) => entries.filter((e) => e.deleted !== true).map((e) => ({ topic, text: e.message ?? "" })));
  const livePosts = [...discourse.posts.values()].filter((p) => p.deleted_at === null && p.post_number > 1);
  const docs = await courseDocuments(lms);
  const groups: Array<[string, string[]]> = [
    ["Canvas assignments", canvas.assignments.map((a) => a.name)],
    ["Canvas pages", canvas.pages.map((p) => p.title)],
    ["Canvas topics", canvas.topics.map((t) => `${String(t.is_announcement)} ${t.title}`)],
    ["Canvas entries", liveEntries.map((e) => `${e.topic} ${words(e.text)}`)],
    ["Discourse topics", [...discourse.topics.values()].filter((t) => t.deleted_at === null).map((t) => t.title)],
    ["Discourse replies", livePosts.map((p) => `${p.topic_id} ${words(p.raw)}`)],
    ["documents", docs.filter((d) => d.kind !== "post").map((d) => `${d.kind} ${String((d as { announcement?: boolean }).announcement)} ${(d as { title?: string }).title ?? ""}`)],
    ["replies on the node", docs.filter((d): d is Entity<"post"> => d.kind === "post").filter((p) => !p.deleted).map((p) => `${p.topic ?? ""} ${words(p.message)}`)],
  ];
  return groups.flatMap(([where, keys]) => twice(keys).map((key) => `${where}: two with ${JSON.stringify(key.slice(0, 100))}`));
}

/** The outbox is empty, every document is in step with both systems, and documents and remote objects are mapped one to one. */
async function bookkeepingProblems(lms: FaultyLms): Promise<string[]> {
  const { db, store } = lms;
  const problems: string[] = [];
  const open = await db.selectFrom("outbox").select(["system", "doc_url", "operation", "status", "attempts", "last_error"]).where("status", "!=", "sent").execute();
  for (const entry of open) problems.push(`outbox: ${entry.system} ${entry.operation} of ${entry.doc_url} is ${entry.status} after ${entry.attempts} attempts (${entry.last_error ?? "no error"})`);
  const unsettled = await db.selectFrom("remote_sync").select(["system", "doc_url", "state"]).where("state", "!=", "in_sync").execute();
  for (const row of unsettled) problems.push(`${row.doc_url} is ${row.state} with ${row.system}`);
  const doubled = await db
    .selectFrom("remote_ids")
    .select(["system", "remote_type", "doc_url"])
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .groupBy(["system", "remote_type", "doc_url"])
    .having((eb) => eb.fn.countAll(), ">", 1)
    .execute();
  for (const row of doubled) problems.push(`${row.doc_url} is mapped to ${row.n} ${row.system} ${row.remote_type}s`);
  for (const doc of await courseDocuments(lms)) {
    for (const side of ["canvas", "discourse"] as const) {
      const id = doc.external[side];
      const type = side === "canvas" ? CANVAS_TYPE[doc.kind] : DISCOURSE_TYPE[doc.kind];
      if (id === undefined || type === undefined) continue;
      const mapped = await mappedUrl(db, side, type, id);
      if (mapped !== doc.url) problems.push(`${doc.kind} ${doc.url} says ${side} ${type} ${id}, which is mapped to ${mapped ?? "nothing"}`);
    }
  }
  for (const row of await db.selectFrom("remote_ids").select(["system", "remote_type", "remote_id", "doc_url"]).execute()) {
    if (!(await store.find(row.doc_url as DocUrl))) problems.push(`${row.system} ${row.remote_type} ${row.remote_id} is mapped to ${row.doc_url}, which is gone`);
  }
  return problems;
}

const KIND_OF: Record<CreatedKind, Entity["kind"]> = { assignment: "assignment", page: "page", topic: "discussion_topic", announcement: "discussion_topic", reply: "post" };
const CANVAS_TYPE: Partial<Record<Entity["kind"], string>> = { assignment: "assignment", page: "page", discussion_topic: "discussion_topic", post: "entry", grade: "grade" };
const DISCOURSE_TYPE: Partial<Record<Entity["kind"], string>> = { discussion_topic: "topic", post: "post" };

/** The ids of the Canvas objects whose title or text holds `tag`. */
function canvasIds(lms: FaultyLms, kind: CreatedKind, tag: string): string[] {
  const { state } = lms.canvas;
  const has = (...texts: unknown[]) => texts.some((text) => typeof text === "string" && text.includes(tag));
  switch (kind) {
    case "assignment":
      return state.assignments.filter((a) => has(a.name, a.description)).map((a) => String(a.id));
    case "page":
      return state.pages.filter((p) => has(p.title, p.body)).map((p) => String(p.page_id));
    case "topic":
    case "announcement":
      return state.topics.filter((t) => t.is_announcement === (kind === "announcement") && has(t.title, t.message)).map((t) => String(t.id));
    case "reply":
      return [...state.entries.values()].flat().filter((e) => e.deleted !== true && has(e.message)).map((e) => String(e.id));
  }
}

/** The ids of the Discourse topics (by title) or replies (by raw) that hold `tag`. */
function discourseIds(lms: FaultyLms, kind: CreatedKind, tag: string): string[] {
  const { state } = lms.discourse;
  const topics = [...state.topics.values()].filter((t) => t.deleted_at === null && t.title.includes(tag)).map((t) => String(t.id));
  const replies = [...state.posts.values()].filter((p) => p.deleted_at === null && p.post_number > 1 && p.raw.includes(tag)).map((p) => String(p.id));
  return kind === "reply" ? replies : kind === "topic" ? topics : [...topics, ...replies];
}

async function courseDocuments(lms: FaultyLms): Promise<Entity[]> {
  const docs: Entity[] = [];
  for (const kind of ["assignment", "page", "discussion_topic", "post"] as const) docs.push(...(await lms.store.list(lms.course, kind)));
  return docs;
}

/** A document's title and text, whichever of them its kind has. */
function textOf(doc: Entity | undefined): string {
  if (!doc) return "";
  const fields = doc as unknown as Record<string, unknown>;
  return ["title", "message", "body", "description"].map((field) => (typeof fields[field] === "string" ? fields[field] : "")).join(" ");
}

/** The words of markdown or HTML, without markup or the outbox's hidden mark. */
function words(text: string): string {
  return plainText(text).toLowerCase();
}

function twice(keys: readonly string[]): string[] {
  const seen = new Set<string>();
  const doubled = new Set<string>();
  for (const key of keys) (seen.has(key) ? doubled : seen).add(key);
  return [...doubled];
}
