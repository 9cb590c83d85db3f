import { sql, type Kysely } from "kysely";
import type { DocUrl } from "../crdt/ids.js";
import type { EnrollmentRole } from "../crdt/schema/kinds.js";
import type { AssignmentRow, Database, PostRow } from "./database.js";
import { normalizeTime } from "./snapshot-projector.js";

/** Roster order: staff first, then students, then observers. Keyed by every role, so a new role is a compile error here. */
const ROLE_ORDER = { teacher: 0, ta: 1, student: 2, observer: 3 } as const satisfies Record<EnrollmentRole, number>;

/** Results per page of `searchText` when the caller does not say: one screen of hits. */
export const DEFAULT_SEARCH_LIMIT = 20;

/**
 * Search terms kept from one query. Each term is a phrase the index must look up and
 * intersect; a pasted paragraph should not turn into hundreds of them.
 */
export const DEFAULT_MAX_SEARCH_TERMS = 32;

/**
 * bm25 weights of `search`'s columns (doc_url, kind, course_url, title, body): a word in a
 * title says more about a document than the same word somewhere in its body.
 */
const SEARCH_WEIGHTS = [0, 0, 0, 10, 1] as const;

/** Snippet length in tokens: about one line of context around the hit. */
const SNIPPET_TOKENS = 12;

/** One member of a course, with their user row when it has arrived (else the user columns are null). */
export interface RosterEntry {
  enrollment_url: DocUrl;
  user_url: DocUrl | null;
  role: string;
  state: string;
  observee_url: DocUrl | null;
  name: string | null;
  sortable_name: string | null;
  email: string | null;
  avatar_url: string | null;
}

/**
 * A course's enrollments with their users: teachers, then TAs, students and observers,
 * each group by sortable name (case-insensitive), enrollments whose user has not synced yet last.
 */
export async function courseRoster(db: Kysely<Database>, courseUrl: DocUrl): Promise<RosterEntry[]> {
  return db
    .selectFrom("enrollments as e")
    .leftJoin("users as u", "u.doc_url", "e.user_url")
    .where("e.course_url", "=", courseUrl)
    .select([
      "e.doc_url as enrollment_url",
      "e.user_url",
      "e.role",
      "e.state",
      "e.observee_url",
      "u.name",
      "u.sortable_name",
      "u.email",
      "u.avatar_url",
    ])
    .orderBy((eb) =>
      eb
        .case()
        .when("e.role", "=", "teacher")
        .then<number>(ROLE_ORDER.teacher)
        .when("e.role", "=", "ta")
        .then(ROLE_ORDER.ta)
        .when("e.role", "=", "student")
        .then(ROLE_ORDER.student)
        .when("e.role", "=", "observer")
        .then(ROLE_ORDER.observer)
        .else(Object.keys(ROLE_ORDER).length)
        .end(),
    )
    .orderBy("u.sortable_name", (ob) => ob.collate("nocase").nullsLast())
    // Names equal but for case ("Lee" and "lee") still come in one order on every peer.
    .orderBy("u.sortable_name")
    .orderBy("e.doc_url")
    .execute();
}

/** A time bound: a `Date` or an ISO-8601 instant. */
export type TimeBound = Date | string;

/**
 * A course's assignments due in `[from, to)`, by due date (then position). Either bound may
 * be left out; assignments without a due date never match.
 */
export async function assignmentsDue(
  db: Kysely<Database>,
  courseUrl: DocUrl,
  range: { from?: TimeBound; to?: TimeBound } = {},
): Promise<AssignmentRow[]> {
  let query = db.selectFrom("assignments").selectAll().where("course_url", "=", courseUrl).where("due_at", "is not", null);
  if (range.from !== undefined) query = query.where("due_at", ">=", toTimeText(range.from));
  if (range.to !== undefined) query = query.where("due_at", "<", toTimeText(range.to));
  return query.orderBy("due_at").orderBy("position").orderBy("doc_url").execute();
}

function toTimeText(bound: TimeBound): string {
  // Stored times are normalized by the projector; bounds must be too, or text comparison lies.
  return bound instanceof Date ? bound.toISOString() : (normalizeTime(bound) ?? bound);
}

/** A student's submission with its assignment's title and its grade, if graded. */
export interface StudentSubmission {
  submission_url: DocUrl;
  assignment_url: DocUrl | null;
  assignment_title: string | null;
  due_at: string | null;
  points_possible: number | null;
  state: string;
  attempt: number;
  submitted_at: string | null;
  body: string;
  url: string | null;
  grade_url: DocUrl | null;
  score: number | null;
  grade: string | null;
  graded_at: string | null;
}

/**
 * A student's submissions in a course, by due date, each with its assignment title and
 * grade. A submission graded twice (two grade documents) shows its latest grade.
 */
export async function studentSubmissions(
  db: Kysely<Database>,
  courseUrl: DocUrl,
  studentUrl: DocUrl,
): Promise<StudentSubmission[]> {
  return db
    .selectFrom("submissions as s")
    .leftJoin("assignments as a", "a.doc_url", "s.assignment_url")
    .leftJoin("grades as g", (join) =>
      join.on("g.doc_url", "=", (eb) =>
        eb
          .selectFrom("grades as latest")
          .select("latest.doc_url")
          .whereRef("latest.submission_url", "=", "s.doc_url")
          .orderBy("latest.graded_at", (ob) => ob.desc().nullsLast())
          .orderBy("latest.doc_url", "desc")
          .limit(1),
      ),
    )
    .where("s.course_url", "=", courseUrl)
    .where("s.student_url", "=", studentUrl)
    .select([
      "s.doc_url as submission_url",
      "s.assignment_url",
      "a.title as assignment_title",
      "a.due_at",
      "a.points_possible",
      "s.state",
      "s.attempt",
      "s.submitted_at",
      "s.body",
      "s.url",
      "g.doc_url as grade_url",
      "g.score",
      "g.grade",
      "g.graded_at",
    ])
    .orderBy("a.due_at", (ob) => ob.asc().nullsLast())
    .orderBy("a.title")
    .orderBy("s.doc_url")
    .execute();
}

/** A post in a thread, with how deep it is nested (0 for a reply to the topic itself). */
export type ThreadPost = PostRow & { depth: number };

/**
 * A topic's posts in reading order: depth-first, each post followed by its replies, siblings
 * by creation time then URL. A post whose parent is not in the topic (not synced yet, or
 * deleted) is shown at the top level rather than hidden.
 */
export async function topicThread(db: Kysely<Database>, topicUrl: DocUrl): Promise<ThreadPost[]> {
  // `path` orders the thread: each level appends "created_at doc_url" after a char(1), which
  // sorts below every character of a segment, so a post always comes right before its
  // replies and siblings compare by their own segment. created_at is normalized to a fixed
  // width, so segments compare by time first.
  const rows = await db
    .withRecursive("thread(doc_url, depth, path)", (qb) =>
      qb
        .selectFrom("posts as root")
        .where("root.topic_url", "=", topicUrl)
        .where((eb) =>
          eb.or([
            eb("root.parent_url", "is", null),
            eb.not(
              eb.exists(
                eb
                  .selectFrom("posts as parent")
                  .select("parent.doc_url")
                  .whereRef("parent.doc_url", "=", "root.parent_url")
                  .where("parent.topic_url", "=", topicUrl),
              ),
            ),
          ]),
        )
        .select([
          "root.doc_url",
          sql<number>`0`.as("depth"),
          sql<string>`root.created_at || ' ' || root.doc_url`.as("path"),
        ])
        .unionAll((union) =>
          union
            .selectFrom("posts as child")
            .innerJoin("thread", "thread.doc_url", "child.parent_url")
            .where("child.topic_url", "=", topicUrl)
            .select([
              "child.doc_url",
              sql<number>`thread.depth + 1`.as("depth"),
              sql<string>`thread.path || char(1) || child.created_at || ' ' || child.doc_url`.as("path"),
            ]),
        ),
    )
    .selectFrom("thread")
    .innerJoin("posts", "posts.doc_url", "thread.doc_url")
    .selectAll("posts")
    .select("thread.depth")
    .orderBy("thread.path")
    .execute();
  return rows;
}

/** One search hit. */
export interface SearchHit {
  doc_url: DocUrl;
  kind: string;
  course_url: DocUrl | null;
  title: string;
  /** bm25 score: lower is better (SQLite's convention, so ascending order ranks). */
  rank: number;
  /** A few words around the best match, matches between `[` and `]`. */
  snippet: string;
}

export interface SearchOptions {
  /** Only documents of this course. */
  courseUrl?: DocUrl;
  /** Hits per page; see `DEFAULT_SEARCH_LIMIT`. */
  limit?: number;
  /** Hits to skip, for later pages. */
  offset?: number;
}

/**
 * Full-text search over titles and bodies (course and user names, assignment descriptions,
 * topic and post messages, page bodies), best first. Every word of `words` must match.
 * User input is taken as plain words: FTS5 operators (`AND`, `OR`, `NEAR`, `*`, `"`, `(`)
 * in it are searched for as text, never interpreted, so no input can cause an SQL error.
 *
 * @example
 * ```ts
 * const hits = await searchText(db, "photosynthesis essay", { courseUrl, limit: 10 });
 * ```
 */
export async function searchText(db: Kysely<Database>, words: string, options: SearchOptions = {}): Promise<SearchHit[]> {
  const match = toFtsQuery(words);
  if (match === null) return [];
  const limit = Math.max(0, Math.floor(options.limit ?? DEFAULT_SEARCH_LIMIT));
  const offset = Math.max(0, Math.floor(options.offset ?? 0));
  const weights = sql.join(SEARCH_WEIGHTS.map((w) => sql.lit(w)));
  const rank = sql<number>`bm25(search, ${weights})`;
  let query = db
    .selectFrom("search")
    .select([
      "doc_url",
      "kind",
      "course_url",
      "title",
      rank.as("rank"),
      sql<string>`snippet(search, -1, '[', ']', '…', ${sql.lit(SNIPPET_TOKENS)})`.as("snippet"),
    ])
    .where(sql<boolean>`search MATCH ${match}`);
  if (options.courseUrl !== undefined) query = query.where("course_url", "=", options.courseUrl);
  return query.orderBy(rank).orderBy("doc_url").limit(limit).offset(offset).execute();
}

/**
 * Turns user input into an FTS5 query that means "all these words": each whitespace-separated
 * term becomes a quoted phrase (inner quotes doubled), so operators and punctuation are
 * only ever text. Terms with no letter or digit are dropped (the tokenizer would ignore
 * them anyway). Null when nothing searchable is left.
 */
export function toFtsQuery(words: string): string | null {
  const terms = words
    .split(/\s+/u)
    .filter((term) => /[\p{L}\p{N}]/u.test(term))
    .slice(0, DEFAULT_MAX_SEARCH_TERMS);
  if (terms.length === 0) return null;
  return terms.map((term) => `"${term.replaceAll('"', '""')}"`).join(" ");
}
