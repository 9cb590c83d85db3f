import type { Insertable } from "kysely";
import type { DocUrl } from "../crdt/ids.js";
import type { Entity } from "../crdt/schema/document.js";
import type { Kind } from "../crdt/schema/kinds.js";
import type { DocSnapshot } from "../crdt/snapshot.js";
import { OWNED_TABLES, type CourseEntityColumns, type Database, type EntityColumns, type OwnedTable, type SqlBoolean } from "./database.js";
import { ProjectionError } from "./projection-errors.js";

/** The rows one document owns, per table. Tables it owns nothing in are absent. */
export type RowSet = { [T in OwnedTable]?: Array<Insertable<Database[T]>> };

/**
 * Writes one kind's rows. `docUrl` is passed apart from the entity because an entity's own
 * `url` key is not reliable: a submission's `url` field (the link it submits) shares it.
 */
type Projector<K extends Kind> = (entity: Entity<K>, docUrl: DocUrl, rows: RowSet) => void;

/**
 * One projector per kind. The `satisfies` makes adding a kind to the schema a compile
 * error here until it has a projector.
 */
const PROJECTORS: { [K in Kind]: Projector<K> } = {
  course(course, docUrl, rows) {
    rows.courses = [
      {
        ...entityColumns(course, docUrl),
        name: course.name,
        course_code: course.courseCode,
        term: course.term,
        start_at: normalizeTime(course.startAt),
        end_at: normalizeTime(course.endAt),
        time_zone: course.timeZone,
        published: toSqlBoolean(course.published),
      },
    ];
    rows.search_rows = [searchRow(course, docUrl, course.name, course.courseCode)];
  },
  user(user, docUrl, rows) {
    rows.users = [
      {
        ...entityColumns(user, docUrl),
        name: user.name,
        sortable_name: user.sortableName,
        email: user.email,
        login_id: user.loginId,
        avatar_url: user.avatarUrl,
      },
    ];
    // Names only: email and login stay out of an index every course member can query.
    rows.search_rows = [searchRow(user, docUrl, user.name, user.sortableName)];
  },
  enrollment(enrollment, docUrl, rows) {
    rows.enrollments = [
      {
        ...courseEntityColumns(enrollment, docUrl),
        user_url: enrollment.user,
        role: enrollment.role,
        state: enrollment.state,
        observee_url: enrollment.observee,
      },
    ];
  },
  module(module, docUrl, rows) {
    rows.modules = [
      {
        ...courseEntityColumns(module, docUrl),
        name: module.name,
        position: module.position,
        published: toSqlBoolean(module.published),
      },
    ];
    rows.module_items = module.items.map((item, position) => ({
      module_url: docUrl,
      position,
      item_id: item.id,
      type: item.type,
      title: item.title,
      target_url: item.target ?? null,
      url: item.url ?? null,
      indent: item.indent,
    }));
    rows.search_rows = [searchRow(module, docUrl, module.name, module.items.map((item) => item.title).join("\n"))];
  },
  assignment(assignment, docUrl, rows) {
    rows.assignments = [
      {
        ...courseEntityColumns(assignment, docUrl),
        title: assignment.title,
        description: assignment.description,
        due_at: normalizeTime(assignment.dueAt),
        unlock_at: normalizeTime(assignment.unlockAt),
        lock_at: normalizeTime(assignment.lockAt),
        points_possible: assignment.pointsPossible,
        published: toSqlBoolean(assignment.published),
        position: assignment.position,
        grading_type: assignment.gradingType,
        submission_types: JSON.stringify(assignment.submissionTypes),
      },
    ];
    rows.search_rows = [searchRow(assignment, docUrl, assignment.title, assignment.description)];
  },
  // Submissions and grades stay out of `search`: it has no per-student partition, and a
  // course-wide search must never show one student's work to another.
  submission(submission, docUrl, rows) {
    rows.submissions = [
      {
        ...courseEntityColumns(submission, docUrl),
        assignment_url: submission.assignment,
        student_url: submission.student,
        body: submission.body,
        url: submission.link,
        attempt: submission.attempt,
        submitted_at: normalizeTime(submission.submittedAt),
        state: submission.state,
      },
    ];
  },
  grade(grade, docUrl, rows) {
    rows.grades = [
      {
        ...courseEntityColumns(grade, docUrl),
        submission_url: grade.submission,
        assignment_url: grade.assignment,
        student_url: grade.student,
        score: grade.score,
        grade: grade.grade,
        graded_at: normalizeTime(grade.gradedAt),
        grader_url: grade.grader,
        comments: stringifyCanonical(grade.comments),
      },
    ];
  },
  discussion_topic(topic, docUrl, rows) {
    rows.discussion_topics = [
      {
        ...courseEntityColumns(topic, docUrl),
        title: topic.title,
        message: topic.message,
        author_url: topic.author,
        published: toSqlBoolean(topic.published),
        locked: toSqlBoolean(topic.locked),
        announcement: toSqlBoolean(topic.announcement),
        posted_at: normalizeTime(topic.postedAt),
        position: topic.position,
      },
    ];
    rows.search_rows = [searchRow(topic, docUrl, topic.title, topic.message)];
  },
  post(post, docUrl, rows) {
    rows.posts = [
      {
        ...courseEntityColumns(post, docUrl),
        topic_url: post.topic,
        parent_url: post.parent,
        author_url: post.author,
        message: post.message,
        edited_at: normalizeTime(post.editedAt),
        deleted: toSqlBoolean(post.deleted),
      },
    ];
    // A removed post stays in its thread as a placeholder, but its words must not be findable.
    if (!post.deleted) rows.search_rows = [searchRow(post, docUrl, "", post.message)];
  },
  page(page, docUrl, rows) {
    rows.pages = [
      {
        ...courseEntityColumns(page, docUrl),
        slug: page.slug,
        title: page.title,
        body: page.body,
        published: toSqlBoolean(page.published),
        front_page: toSqlBoolean(page.frontPage),
      },
    ];
    rows.search_rows = [searchRow(page, docUrl, page.title, page.body)];
  },
};

/**
 * The tables each kind's projector writes to (besides `conflicts`, which any kind may).
 * Projecting a document again deletes its old rows from these tables alone, not from all
 * thirteen; `projectSnapshot` refuses rows anywhere else, so the list cannot fall behind.
 */
const KIND_TABLES: { [K in Kind]: readonly OwnedTable[] } = {
  course: ["courses", "search_rows"],
  user: ["users", "search_rows"],
  enrollment: ["enrollments"],
  module: ["modules", "module_items", "search_rows"],
  assignment: ["assignments", "search_rows"],
  submission: ["submissions"],
  grade: ["grades"],
  discussion_topic: ["discussion_topics", "search_rows"],
  post: ["posts", "search_rows"],
  page: ["pages", "search_rows"],
};

const ALL_TABLES = Object.keys(OWNED_TABLES) as OwnedTable[];

/** The tables a document of this kind may own rows in; every table for a kind the projection does not know. */
export function tablesOfKind(kind: string): readonly OwnedTable[] {
  return isProjectedKind(kind) ? [...KIND_TABLES[kind], "conflicts"] : ALL_TABLES;
}

/** Whether the projection knows this kind; documents of other kinds (catalogs) are not projected. */
export function isProjectedKind(kind: string): kind is Kind {
  return Object.hasOwn(PROJECTORS, kind);
}

/** What a snapshot projects to: rows, or only a `deleted` mark once the entity has a tombstone. */
export function statusOfSnapshot(snapshot: DocSnapshot): "projected" | "deleted" {
  return snapshot.entity.tombstone === null ? "projected" : "deleted";
}

/**
 * The rows a document owns, as a pure function of its snapshot: its entity row (a module
 * also gets one `module_items` row per item), its `search_rows` row and one `conflicts`
 * row per conflicted field. A deleted document owns no rows.
 *
 * Deterministic on purpose: the same snapshot gives the same rows on every peer, in every
 * run (no clock, no randomness, JSON with sorted keys), so peers with equal heads hold
 * byte-identical tables.
 *
 * @example
 * ```ts
 * const rows = projectSnapshot(snapshot);
 * rows.assignments?.[0]?.title; // "Essay 1"
 * ```
 */
export function projectSnapshot(snapshot: DocSnapshot): RowSet {
  const rows: RowSet = {};
  if (statusOfSnapshot(snapshot) === "deleted") return rows;
  const projector = isProjectedKind(snapshot.kind) ? (PROJECTORS[snapshot.kind] as Projector<Kind>) : undefined;
  if (!projector) throw new ProjectionError(`cannot project a document of kind ${JSON.stringify(snapshot.kind)}`, snapshot.url);
  projector(snapshot.entity, snapshot.url, rows);
  const owned = KIND_TABLES[snapshot.kind as Kind];
  for (const table of Object.keys(rows) as OwnedTable[]) {
    if (!owned.includes(table)) throw new ProjectionError(`a ${snapshot.kind} projected rows into ${table}, which its kind does not declare`, snapshot.url);
  }
  const fields = Object.keys(snapshot.conflicts).sort();
  if (fields.length > 0) {
    rows.conflicts = fields.map((field) => ({
      doc_url: snapshot.url,
      field,
      values: stringifyCanonical(snapshot.conflicts[field] ?? []),
    }));
  }
  return rows;
}

function entityColumns(entity: Entity, docUrl: DocUrl): EntityColumns {
  return {
    doc_url: docUrl,
    canvas_id: entity.external.canvas ?? null,
    discourse_id: entity.external.discourse ?? null,
    created_at: normalizeTime(entity.createdAt) ?? entity.createdAt,
    updated_at: normalizeTime(entity.updatedAt) ?? entity.updatedAt,
  };
}

function courseEntityColumns(entity: Entity, docUrl: DocUrl): CourseEntityColumns {
  return { ...entityColumns(entity, docUrl), course_url: entity.course };
}

function searchRow(entity: Entity, docUrl: DocUrl, title: string, body: string): Insertable<Database["search_rows"]> {
  return { doc_url: docUrl, kind: entity.kind, course_url: entity.course, title, body };
}

function toSqlBoolean(value: boolean): SqlBoolean {
  return value ? 1 : 0;
}

// An ISO-8601 instant with an explicit offset: the only form whose meaning does not depend
// on the local time zone of the peer that parses it.
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

const CANONICAL_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/**
 * Rewrites an ISO-8601 instant as `toISOString()` does (UTC, milliseconds, `Z`), so that
 * times written as `…T10:00Z`, `…T10:00:00.000Z` or `…T12:00+02:00` compare correctly as
 * text in SQL. Any other string is kept as written: parsing it would depend on the time
 * zone of the peer, and rows must be the same everywhere.
 */
export function normalizeTime(value: string | null): string | null {
  // Most times are already written by toISOString(); skip parsing them (a hot path).
  if (value === null || CANONICAL_INSTANT.test(value) || !ISO_INSTANT.test(value)) return value;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? value : new Date(ms).toISOString();
}

/**
 * JSON with object keys sorted at every level: converged replicas may hold the same map
 * with keys in a different order, and the rows must not show it.
 */
export function stringifyCanonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== "object" || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(v).sort()) sorted[key] = (v as Record<string, unknown>)[key];
    return sorted;
  });
}
