import type { Generated, Insertable, Selectable } from "kysely";
import type { DocUrl } from "../crdt/ids.js";

/**
 * The projected tables, as kysely sees them. They mirror `migrations/`; a migration that
 * changes a table changes its type here. Times are ISO-8601 UTC strings, booleans 0/1.
 */
export interface Database {
  courses: CoursesTable;
  users: UsersTable;
  enrollments: EnrollmentsTable;
  modules: ModulesTable;
  module_items: ModuleItemsTable;
  assignments: AssignmentsTable;
  submissions: SubmissionsTable;
  grades: GradesTable;
  discussion_topics: DiscussionTopicsTable;
  posts: PostsTable;
  pages: PagesTable;
  doc_heads: DocHeadsTable;
  conflicts: ConflictsTable;
  /** Rows of the full-text index; write here, the `search` index follows by trigger. */
  search_rows: SearchContentTable;
  /** The FTS5 index over `search_rows`: query it with MATCH, never write to it. */
  search: SearchTable;
  projection_state: ProjectionStateTable;
}

/** Facts the projection keeps about itself (see migrations/0002). */
export interface ProjectionStateTable {
  key: string;
  value: string;
}

/** A SQLite boolean: 0 or 1. */
export type SqlBoolean = 0 | 1;

/** The columns every entity row carries. */
export interface EntityColumns {
  doc_url: DocUrl;
  canvas_id: string | null;
  discourse_id: string | null;
  created_at: string;
  updated_at: string;
}

/** Entity columns of documents that belong to a course. */
export interface CourseEntityColumns extends EntityColumns {
  course_url: DocUrl | null;
}

export interface CoursesTable extends EntityColumns {
  name: string;
  course_code: string;
  term: string | null;
  start_at: string | null;
  end_at: string | null;
  time_zone: string;
  published: SqlBoolean;
}

export interface UsersTable extends EntityColumns {
  name: string;
  sortable_name: string;
  email: string | null;
  login_id: string | null;
  avatar_url: string | null;
}

export interface EnrollmentsTable extends CourseEntityColumns {
  user_url: DocUrl | null;
  role: string;
  state: string;
  observee_url: DocUrl | null;
}

export interface ModulesTable extends CourseEntityColumns {
  name: string;
  position: number;
  published: SqlBoolean;
}

export interface ModuleItemsTable {
  module_url: DocUrl;
  /** The item's index in the module's list. */
  position: number;
  item_id: string;
  type: string;
  title: string;
  target_url: DocUrl | null;
  url: string | null;
  indent: number;
}

export interface AssignmentsTable extends CourseEntityColumns {
  title: string;
  description: string;
  due_at: string | null;
  unlock_at: string | null;
  lock_at: string | null;
  points_possible: number | null;
  published: SqlBoolean;
  position: number;
  grading_type: string;
  /** JSON array of Canvas's submission type names, e.g. `["online_text_entry","online_upload"]`. */
  submission_types: string;
}

export interface SubmissionsTable extends CourseEntityColumns {
  assignment_url: DocUrl | null;
  student_url: DocUrl | null;
  body: string;
  url: string | null;
  attempt: number;
  submitted_at: string | null;
  state: string;
}

export interface GradesTable extends CourseEntityColumns {
  submission_url: DocUrl | null;
  assignment_url: DocUrl | null;
  student_url: DocUrl | null;
  score: number | null;
  grade: string | null;
  graded_at: string | null;
  grader_url: DocUrl | null;
  /** JSON array of `{ author, body, createdAt, id }`, keys sorted. */
  comments: string;
}

export interface DiscussionTopicsTable extends CourseEntityColumns {
  title: string;
  message: string;
  author_url: DocUrl | null;
  published: SqlBoolean;
  locked: SqlBoolean;
  announcement: SqlBoolean;
  posted_at: string | null;
  position: number;
}

export interface PostsTable extends CourseEntityColumns {
  topic_url: DocUrl | null;
  parent_url: DocUrl | null;
  author_url: DocUrl | null;
  message: string;
  edited_at: string | null;
  deleted: SqlBoolean;
}

export interface PagesTable extends CourseEntityColumns {
  slug: string;
  title: string;
  body: string;
  published: SqlBoolean;
  front_page: SqlBoolean;
}

/** What the projection last did with a document. */
export type DocStatus = "projected" | "deleted" | "invalid";

export interface DocHeadsTable {
  doc_url: DocUrl;
  /** The kind the store reported; a string, since invalid documents may name any kind. */
  kind: string;
  heads: string;
  status: DocStatus;
  /** When this node projected it: the one column that differs between peers. */
  projected_at: string;
}

export interface ConflictsTable {
  doc_url: DocUrl;
  field: string;
  /** JSON array of the concurrent values, keys sorted. */
  values: string;
}

export interface SearchContentTable {
  id: Generated<number>;
  doc_url: DocUrl;
  kind: string;
  course_url: DocUrl | null;
  title: string;
  body: string;
}

export interface SearchTable {
  doc_url: DocUrl;
  kind: string;
  course_url: DocUrl | null;
  title: string;
  body: string;
}

export type CourseRow = Selectable<CoursesTable>;
export type NewCourseRow = Insertable<CoursesTable>;
export type UserRow = Selectable<UsersTable>;
export type NewUserRow = Insertable<UsersTable>;
export type EnrollmentRow = Selectable<EnrollmentsTable>;
export type NewEnrollmentRow = Insertable<EnrollmentsTable>;
export type ModuleRow = Selectable<ModulesTable>;
export type NewModuleRow = Insertable<ModulesTable>;
export type ModuleItemRow = Selectable<ModuleItemsTable>;
export type NewModuleItemRow = Insertable<ModuleItemsTable>;
export type AssignmentRow = Selectable<AssignmentsTable>;
export type NewAssignmentRow = Insertable<AssignmentsTable>;
export type SubmissionRow = Selectable<SubmissionsTable>;
export type NewSubmissionRow = Insertable<SubmissionsTable>;
export type GradeRow = Selectable<GradesTable>;
export type NewGradeRow = Insertable<GradesTable>;
export type DiscussionTopicRow = Selectable<DiscussionTopicsTable>;
export type NewDiscussionTopicRow = Insertable<DiscussionTopicsTable>;
export type PostRow = Selectable<PostsTable>;
export type NewPostRow = Insertable<PostsTable>;
export type PageRow = Selectable<PagesTable>;
export type NewPageRow = Insertable<PagesTable>;
export type DocHeadRow = Selectable<DocHeadsTable>;
export type NewDocHeadRow = Insertable<DocHeadsTable>;
export type ConflictRow = Selectable<ConflictsTable>;
export type NewConflictRow = Insertable<ConflictsTable>;
export type SearchRow = Selectable<SearchTable>;
export type NewSearchContentRow = Insertable<SearchContentTable>;

/**
 * The tables whose rows belong to one document each, and the column naming that document.
 * Projecting a document deletes its rows from every one of these, whatever its kind, so a
 * row can never outlive the document state that produced it.
 */
export const OWNED_TABLES = {
  courses: "doc_url",
  users: "doc_url",
  enrollments: "doc_url",
  modules: "doc_url",
  module_items: "module_url",
  assignments: "doc_url",
  submissions: "doc_url",
  grades: "doc_url",
  discussion_topics: "doc_url",
  posts: "doc_url",
  pages: "doc_url",
  conflicts: "doc_url",
  search_rows: "doc_url",
} as const satisfies { [T in keyof Database]?: keyof Database[T] & string };

/** A table whose rows are owned by documents. */
export type OwnedTable = keyof typeof OWNED_TABLES;
