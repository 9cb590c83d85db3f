import type { CreateInput } from "../../crdt/doc-store.js";
import type { DocUrl, ExternalIdentity } from "../../crdt/ids.js";
import type { EnrollmentRole, Kind, ModuleItem } from "../../crdt/schema/kinds.js";
import { importedDocument, instant, nullableText, remoteIdentity, remoteUrl, text, type Imported } from "../remote-documents.js";

export { instant, type Imported };

/**
 * Canvas payloads to document fields, and back: pure functions, no I/O. Every Canvas object
 * gets a document whose URL follows from (instance, type, id), so the same object imported on
 * two laptops offline is one document, and a reference (an enrollment's user, a submission's
 * assignment) is a URL computed from the id, with no lookup.
 */

/** One Canvas instance: documents of two instances never collide. */
export interface CanvasInstance {
  /** `canvas:<host>`, the `system` of every identity from this instance. */
  system: string;
}

export function canvasInstance(baseUrl: string): CanvasInstance {
  return { system: `canvas:${new URL(baseUrl).host}` };
}

/** Canvas object types as they appear in identities. */
export type CanvasType = "course" | "user" | "enrollment" | "module" | "assignment" | "submission" | "grade" | "discussion_topic" | "entry" | "page";

const KIND_OF: Record<CanvasType, Kind> = {
  course: "course",
  user: "user",
  enrollment: "enrollment",
  module: "module",
  assignment: "assignment",
  submission: "submission",
  grade: "grade",
  discussion_topic: "discussion_topic",
  entry: "post",
  page: "page",
};

export function identityOf(instance: CanvasInstance, type: CanvasType, id: string | number): ExternalIdentity {
  return remoteIdentity(instance.system, type, id);
}

export function urlOf(instance: CanvasInstance, type: CanvasType, id: string | number | null | undefined): DocUrl | null {
  return remoteUrl(KIND_OF[type], instance.system, type, id);
}

function imported<K extends Kind>(instance: CanvasInstance, type: CanvasType, id: string | number, kind: K, fields: CreateInput<K>): Imported<K> {
  return importedDocument(instance.system, type, id, kind, "canvas", fields);
}

const number = (value: unknown, fallback = 0): number => (typeof value === "number" && Number.isFinite(value) ? value : typeof value === "string" && value.trim() !== "" && Number.isFinite(Number(value)) ? Number(value) : fallback);
const nullableNumber = (value: unknown): number | null => {
  const n = number(value, Number.NaN);
  return Number.isNaN(n) ? null : n;
};

type Payload = Record<string, unknown>;

export function courseFrom(instance: CanvasInstance, c: Payload): Imported<"course"> {
  return imported(instance, "course", String(c.id), "course", {
    name: text(c.name),
    courseCode: text(c.course_code),
    term: nullableText((c.term as Payload | undefined)?.name),
    startAt: instant(c.start_at),
    endAt: instant(c.end_at),
    timeZone: text(c.time_zone) || "UTC",
    published: c.workflow_state !== "unpublished",
  });
}

export function userFrom(instance: CanvasInstance, u: Payload): Imported<"user"> {
  return imported(instance, "user", String(u.id), "user", {
    name: text(u.name),
    sortableName: text(u.sortable_name) || text(u.name),
    email: nullableText(u.email),
    loginId: nullableText(u.login_id),
    avatarUrl: nullableText(u.avatar_url),
  });
}

const ROLE_OF: Record<string, EnrollmentRole> = {
  TeacherEnrollment: "teacher",
  TaEnrollment: "ta",
  StudentEnrollment: "student",
  ObserverEnrollment: "observer",
  DesignerEnrollment: "ta",
};
const STATE_OF: Record<string, "active" | "invited" | "completed" | "inactive"> = {
  active: "active",
  invited: "invited",
  creation_pending: "invited",
  completed: "completed",
  inactive: "inactive",
  deleted: "inactive",
  rejected: "inactive",
};

export function enrollmentFrom(instance: CanvasInstance, course: DocUrl, e: Payload): Imported<"enrollment"> {
  return imported(instance, "enrollment", String(e.id), "enrollment", {
    course,
    user: urlOf(instance, "user", e.user_id as string),
    role: ROLE_OF[text(e.type)] ?? "student",
    state: STATE_OF[text(e.enrollment_state)] ?? "active",
    observee: urlOf(instance, "user", e.associated_user_id as string | null),
  });
}

export function assignmentFrom(instance: CanvasInstance, course: DocUrl, a: Payload): Imported<"assignment"> {
  return imported(instance, "assignment", String(a.id), "assignment", {
    course,
    title: text(a.name),
    description: text(a.description),
    dueAt: instant(a.due_at),
    unlockAt: instant(a.unlock_at),
    lockAt: instant(a.lock_at),
    pointsPossible: nullableNumber(a.points_possible),
    published: a.published === true,
    position: number(a.position),
    gradingType: text(a.grading_type) || "points",
    // An answer without the list says nothing about it (undefined writes nothing); "none" is a type of its own.
    submissionTypes: Array.isArray(a.submission_types) ? a.submission_types.filter((t): t is string => typeof t === "string") : undefined,
  });
}

const SUBMISSION_STATE_OF: Record<string, "unsubmitted" | "submitted" | "pending_review" | "graded"> = {
  unsubmitted: "unsubmitted",
  submitted: "submitted",
  pending_review: "pending_review",
  graded: "graded",
};

/** A submission, and its grade when it has one (grades are their own documents: who may write them differs). */
export function submissionFrom(instance: CanvasInstance, course: DocUrl, s: Payload): { submission: Imported<"submission">; grade: Imported<"grade"> | null } {
  const submission = imported(instance, "submission", String(s.id), "submission", {
    course,
    assignment: urlOf(instance, "assignment", s.assignment_id as string),
    student: urlOf(instance, "user", s.user_id as string),
    body: text(s.body),
    link: nullableText(s.url),
    attempt: number(s.attempt),
    submittedAt: instant(s.submitted_at),
    state: SUBMISSION_STATE_OF[text(s.workflow_state)] ?? "unsubmitted",
  });
  const graded = s.score !== null && s.score !== undefined;
  return { submission, grade: graded ? gradeFrom(instance, course, s) : null };
}

/** The grade of a submission, graded or not (a grade cleared in Canvas reads as no score and no grade). */
export function gradeFrom(instance: CanvasInstance, course: DocUrl, s: Payload): Imported<"grade"> {
  const graderId = s.grader_id === null || s.grader_id === undefined ? "" : String(s.grader_id);
  return imported(instance, "grade", String(s.id), "grade", {
    course,
    submission: urlOf(instance, "submission", String(s.id)),
    assignment: urlOf(instance, "assignment", s.assignment_id as string),
    student: urlOf(instance, "user", s.user_id as string),
    score: nullableNumber(s.score),
    grade: nullableText(s.grade),
    gradedAt: instant(s.graded_at),
    // A negative grader id is Canvas's autograder, not a user.
    grader: graderId && !graderId.startsWith("-") ? urlOf(instance, "user", graderId) : null,
    comments: [],
  });
}

export function topicFrom(instance: CanvasInstance, course: DocUrl, t: Payload): Imported<"discussion_topic"> {
  const author = (t.author as Payload | null | undefined)?.id;
  return imported(instance, "discussion_topic", String(t.id), "discussion_topic", {
    course,
    title: text(t.title),
    message: text(t.message),
    author: urlOf(instance, "user", author as string | undefined),
    published: t.published !== false,
    locked: t.locked === true,
    announcement: t.is_announcement === true,
    postedAt: instant(t.posted_at),
    position: number(t.position),
  });
}

/** A discussion entry (a reply at any depth); a deleted one stays as a placeholder. */
export function entryFrom(instance: CanvasInstance, course: DocUrl, topicId: string, e: Payload): Imported<"post"> {
  return imported(instance, "entry", String(e.id), "post", {
    course,
    topic: urlOf(instance, "discussion_topic", topicId),
    parent: urlOf(instance, "entry", e.parent_id as string | null),
    author: urlOf(instance, "user", e.user_id as string | undefined),
    message: e.deleted === true ? "" : text(e.message),
    editedAt: e.updated_at !== e.created_at ? instant(e.updated_at) : null,
    deleted: e.deleted === true,
  });
}

/** A page, identified by `page_id`: its slug changes when it is renamed. */
export function pageFrom(instance: CanvasInstance, course: DocUrl, p: Payload): Imported<"page"> {
  return imported(instance, "page", String(p.page_id), "page", {
    course,
    slug: text(p.url),
    title: text(p.title),
    body: text(p.body),
    published: p.published !== false,
    frontPage: p.front_page === true,
  });
}

const ITEM_TYPE_OF: Record<string, ModuleItem["type"]> = {
  Assignment: "assignment",
  Page: "page",
  Discussion: "discussion",
  ExternalUrl: "external_url",
  SubHeader: "subheader",
};

/** A module with its items; pages are referenced by slug, so `pageIds` maps slug → page_id. */
export function moduleFrom(instance: CanvasInstance, course: DocUrl, m: Payload, items: readonly Payload[], pageIds: ReadonlyMap<string, string>): Imported<"module"> {
  const moduleItems: ModuleItem[] = [];
  for (const item of items) {
    const type = ITEM_TYPE_OF[text(item.type)];
    if (!type) continue;
    const target =
      type === "assignment" ? urlOf(instance, "assignment", item.content_id as string) : type === "discussion" ? urlOf(instance, "discussion_topic", item.content_id as string) : type === "page" ? urlOf(instance, "page", pageIds.get(text(item.page_url))) : null;
    moduleItems.push({ id: String(item.id), type, title: text(item.title), target, url: nullableText(item.external_url), indent: number(item.indent) });
  }
  return imported(instance, "module", String(m.id), "module", { course, name: text(m.name), position: number(m.position), published: m.published !== false, items: moduleItems });
}
