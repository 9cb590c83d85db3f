import type { Fields } from "../../crdt/schema/kinds.js";
import { toHtml } from "../content-format.js";
import type { FormFields } from "../http-client.js";
import { canvasInstant } from "./canvas-time.js";

/**
 * Document fields to Canvas request bodies, the way back of canvas-mapping.ts: pure functions,
 * no I/O. Canvas stores HTML, so prose is sent through `toHtml` (a message that arrived as
 * markdown from Discourse stays markdown in its document); times go as instants with `Z`
 * (see canvas-time.ts).
 */

/** A Canvas form body: Rails bracket keys (`assignment[name]`) to values, a list's key ending in `[]`. */
export type CanvasForm = FormFields;

/** The kinds whose local work goes back to Canvas. */
export type PushedKind = "assignment" | "page" | "discussion_topic" | "post" | "grade";

export const PUSHED_KINDS: readonly PushedKind[] = ["assignment", "page", "discussion_topic", "post", "grade"];

/**
 * A create sends every value the document has (an empty one is left to Canvas's default); an
 * update sends only what must change, an emptied value as "" (which clears it in Canvas).
 */
export type RequestMode = "create" | "update";

/** The fields Canvas takes from a request, per kind. */
export const SENT_FIELDS = {
  assignment: ["title", "description", "dueAt", "unlockAt", "lockAt", "pointsPossible", "published", "position", "gradingType", "submissionTypes"],
  page: ["title", "body", "published", "frontPage"],
  discussion_topic: ["title", "message", "published", "locked", "announcement"],
  post: ["message"],
  grade: ["score", "grade"],
} as const satisfies { [K in PushedKind]: ReadonlyArray<keyof Fields<K>> };

/**
 * The fields Canvas alone decides: read back, never sent (a topic's author and posting time, a
 * page's slug, a post's place in its thread, who graded and when). With `SENT_FIELDS` they
 * cover every field of the kind, so no field is dropped without a reason.
 */
export const CANVAS_OWNED = {
  assignment: [],
  page: ["slug"],
  discussion_topic: ["author", "postedAt", "position"],
  post: ["topic", "parent", "author", "editedAt", "deleted"],
  grade: ["submission", "assignment", "student", "gradedAt", "grader", "comments"],
} as const satisfies { [K in PushedKind]: ReadonlyArray<keyof Fields<K>> };

/** Whether Canvas takes a field of a kind in an update (a topic stays an announcement, or not, once made). */
export function isSent(kind: PushedKind, field: string, mode: RequestMode): boolean {
  if (mode === "update" && kind === "discussion_topic" && field === "announcement") return false;
  return (SENT_FIELDS[kind] as readonly string[]).includes(field);
}

/** The request body for a kind: `fields` are the values to send (all of them for a create). */
export function canvasRequest(kind: PushedKind, fields: Record<string, unknown>, mode: RequestMode, timeZone: string): CanvasForm {
  switch (kind) {
    case "assignment":
      return assignmentRequest(fields as Partial<Fields<"assignment">>, mode, timeZone);
    case "page":
      return pageRequest(fields as Partial<Fields<"page">>, mode);
    case "discussion_topic":
      return topicRequest(fields as Partial<Fields<"discussion_topic">>, mode);
    case "post":
      return entryRequest(fields as Partial<Fields<"post">>);
    case "grade":
      return gradeRequest(fields as Partial<Fields<"grade">>);
  }
}

/** Collects form values: on a create an empty value is left out, on an update it is sent as "" to clear. */
function formWriter(mode: RequestMode) {
  const form: CanvasForm = {};
  const put = (key: string, value: string | null | undefined, keepEmpty = false): void => {
    if (value === undefined) return;
    if ((value === null || value === "") && mode === "create" && !keepEmpty) return;
    form[key] = value ?? "";
  };
  return { form, put };
}

const flag = (value: boolean | undefined): string | undefined => (value === undefined ? undefined : String(value));
const html = (value: string | undefined): string | undefined => (value === undefined ? undefined : toHtml(value));

export function assignmentRequest(fields: Partial<Fields<"assignment">>, mode: RequestMode, timeZone: string): CanvasForm {
  const { form, put } = formWriter(mode);
  // A name is required: an empty one is sent for Canvas to refuse, not dropped here.
  put("assignment[name]", fields.title, true);
  put("assignment[description]", html(fields.description));
  for (const [field, key] of [["dueAt", "due_at"], ["unlockAt", "unlock_at"], ["lockAt", "lock_at"]] as const) {
    if (field in fields) put(`assignment[${key}]`, canvasInstant(fields[field], timeZone));
  }
  if ("pointsPossible" in fields) put("assignment[points_possible]", fields.pointsPossible === null || fields.pointsPossible === undefined ? null : String(fields.pointsPossible));
  put("assignment[published]", flag(fields.published));
  // Canvas numbers positions from 1: 0 is "not placed yet", left to Canvas.
  if (fields.position !== undefined && fields.position > 0) put("assignment[position]", String(fields.position));
  put("assignment[grading_type]", fields.gradingType);
  // Sent whole, on a create and an update alike: Canvas replaces the list. Canvas gives an
  // assignment sent without a list the type "none"; an emptied list means that, and is sent as it.
  const types = fields.submissionTypes;
  if (types !== undefined) form["assignment[submission_types][]"] = types.length > 0 ? [...types] : ["none"];
  return form;
}

export function pageRequest(fields: Partial<Fields<"page">>, mode: RequestMode): CanvasForm {
  const { form, put } = formWriter(mode);
  put("wiki_page[title]", fields.title, true);
  put("wiki_page[body]", html(fields.body));
  put("wiki_page[published]", flag(fields.published));
  // Only one page is the front page: a page stops being it when another becomes it.
  if (fields.frontPage === true) put("wiki_page[front_page]", "true");
  return form;
}

export function topicRequest(fields: Partial<Fields<"discussion_topic">>, mode: RequestMode): CanvasForm {
  const { form, put } = formWriter(mode);
  put("title", fields.title, true);
  put("message", html(fields.message));
  // Announcements are published when made; Canvas refuses to unpublish one.
  if (fields.announcement !== true) put("published", flag(fields.published));
  put("locked", flag(fields.locked));
  if (mode === "create") put("is_announcement", flag(fields.announcement));
  return form;
}

export function entryRequest(fields: Partial<Fields<"post">>): CanvasForm {
  return fields.message === undefined ? {} : { message: toHtml(fields.message) };
}

/** A grade is the submission's posted grade: the score when there is one, else the grade as written ("A-", "pass"), else "" (cleared). */
export function gradeRequest(fields: Partial<Fields<"grade">>): CanvasForm {
  const posted = fields.score !== null && fields.score !== undefined ? String(fields.score) : (fields.grade ?? "");
  return { "submission[posted_grade]": posted };
}

/**
 * The words of an HTML or markdown text, for recognising an object Canvas made from what was
 * sent: Canvas rewrites links and sanitizes what it stores, but keeps the words.
 */
export function plainText(text: string): string {
  return toHtml(text)
    .replace(/<[^>]*>/g, " ")
    .replace(/&nbsp;/g, " ")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&#39;|&apos;/g, "'")
    .replace(/&amp;/g, "&")
    .replace(/\s+/g, " ")
    .trim();
}
