import type { DocUrl } from "../ids.js";
import { checkRecord, field, is, type FieldSpec } from "./fields.js";

export const ENROLLMENT_ROLES = ["teacher", "ta", "student", "observer"] as const;
export type EnrollmentRole = (typeof ENROLLMENT_ROLES)[number];

export const ENROLLMENT_STATES = ["active", "invited", "completed", "inactive"] as const;
export const SUBMISSION_STATES = ["unsubmitted", "submitted", "pending_review", "graded"] as const;
export const MODULE_ITEM_TYPES = ["assignment", "page", "discussion", "external_url", "subheader"] as const;

/** One entry of a module: a pointer to another document, a link, or a heading. */
export interface ModuleItem {
  id: string;
  type: (typeof MODULE_ITEM_TYPES)[number];
  title: string;
  target: DocUrl | null;
  url: string | null;
  indent: number;
}

export interface GradeComment {
  id: string;
  author: DocUrl | null;
  body: string;
  createdAt: string;
}

const isModuleItem = checkRecord({
  id: is.string,
  type: (v) => (MODULE_ITEM_TYPES as readonly unknown[]).includes(v),
  title: is.string,
  target: is.nullableDocUrl,
  url: is.nullableString,
  indent: is.number,
});

const isGradeComment = checkRecord({
  id: is.string,
  author: is.nullableDocUrl,
  body: is.string,
  createdAt: is.time,
});

/**
 * The fields of every kind, in one table: the single source for validation, reading,
 * storing and the typed API.
 *
 * Adding a field with a fallback keeps the kind's version: a document written before reads
 * the fallback, and a node that does not know the field yet validates and reads the others
 * and leaves the key alone (bumping would quarantine every new document of the kind on such
 * nodes). Changing what an existing field holds, or removing one, means bumping the kind's
 * version in `SCHEMA_VERSIONS` and adding an upgrade step.
 */
export const KIND_FIELDS = {
  user: {
    name: field.string(),
    sortableName: field.string(),
    email: field.nullableString(),
    loginId: field.nullableString(),
    avatarUrl: field.nullableString(),
  },
  course: {
    name: field.string(),
    courseCode: field.string(),
    term: field.nullableString(),
    startAt: field.time(),
    endAt: field.time(),
    timeZone: field.string("UTC"),
    published: field.boolean(true),
  },
  enrollment: {
    user: field.docUrl(),
    role: field.oneOf(ENROLLMENT_ROLES, "student"),
    state: field.oneOf(ENROLLMENT_STATES, "active"),
    /** For observers: the student they observe. */
    observee: field.docUrl(),
  },
  module: {
    name: field.string(),
    position: field.number(),
    published: field.boolean(true),
    items: field.list<ModuleItem>(isModuleItem, "module items"),
  },
  assignment: {
    title: field.string(),
    description: field.text(),
    dueAt: field.time(),
    unlockAt: field.time(),
    lockAt: field.time(),
    pointsPossible: field.nullableNumber(),
    published: field.boolean(),
    position: field.number(),
    gradingType: field.string("points"),
    /**
     * How students hand the work in, as Canvas names it (`online_text_entry`, `online_upload`,
     * `online_url`, `on_paper`, `none`, ...). A new assignment takes text entry: Canvas gives one
     * sent without a list the single type "none", and no student can then submit online.
     */
    submissionTypes: field.stringList(["online_text_entry"]),
  },
  submission: {
    assignment: field.docUrl(),
    student: field.docUrl(),
    body: field.text(),
    /** A submitted link (Canvas `online_url`). Not `url`: that names the document itself. */
    link: field.nullableString(),
    attempt: field.number(),
    submittedAt: field.time(),
    state: field.oneOf(SUBMISSION_STATES, "unsubmitted"),
  },
  grade: {
    submission: field.docUrl(),
    assignment: field.docUrl(),
    student: field.docUrl(),
    score: field.nullableNumber(),
    grade: field.nullableString(),
    gradedAt: field.time(),
    grader: field.docUrl(),
    comments: field.list<GradeComment>(isGradeComment, "grade comments"),
  },
  discussion_topic: {
    title: field.string(),
    message: field.text(),
    author: field.docUrl(),
    published: field.boolean(true),
    locked: field.boolean(),
    announcement: field.boolean(),
    postedAt: field.time(),
    position: field.number(),
  },
  post: {
    topic: field.docUrl(),
    parent: field.docUrl(),
    author: field.docUrl(),
    message: field.text(),
    editedAt: field.time(),
    /** The author or a moderator removed the message; the post stays as a placeholder in the thread. */
    deleted: field.boolean(),
  },
  page: {
    slug: field.string(),
    title: field.string(),
    body: field.text(),
    published: field.boolean(true),
    frontPage: field.boolean(),
  },
} as const satisfies Record<string, Record<string, FieldSpec<unknown>>>;

export type Kind = keyof typeof KIND_FIELDS;
export const KINDS = Object.keys(KIND_FIELDS) as Kind[];

/** The version of each kind's schema a document of that kind is written with. */
export const SCHEMA_VERSIONS: Record<Kind, number> = {
  user: 1,
  course: 1,
  enrollment: 1,
  module: 1,
  assignment: 1,
  submission: 1,
  grade: 1,
  discussion_topic: 1,
  post: 1,
  page: 1,
};

/** References a document of each kind cannot exist without. */
export const REQUIRED_FIELDS: { [K in Kind]: readonly (keyof (typeof KIND_FIELDS)[K])[] } = {
  user: [],
  course: [],
  enrollment: ["user"],
  module: [],
  assignment: [],
  submission: ["assignment", "student"],
  grade: ["submission", "assignment", "student"],
  discussion_topic: [],
  post: ["topic"],
  page: [],
};

export function isKind(value: unknown): value is Kind {
  return typeof value === "string" && Object.hasOwn(KIND_FIELDS, value);
}

type FieldValue<S> = S extends FieldSpec<infer T> ? T : never;

/** The plain fields of a kind, as apps read and write them. */
export type Fields<K extends Kind> = { -readonly [F in keyof (typeof KIND_FIELDS)[K]]: FieldValue<(typeof KIND_FIELDS)[K][F]> };

export type User = Fields<"user">;
export type Course = Fields<"course">;
export type Enrollment = Fields<"enrollment">;
export type Module = Fields<"module">;
export type Assignment = Fields<"assignment">;
export type Submission = Fields<"submission">;
export type Grade = Fields<"grade">;
export type DiscussionTopic = Fields<"discussion_topic">;
export type Post = Fields<"post">;
export type Page = Fields<"page">;
