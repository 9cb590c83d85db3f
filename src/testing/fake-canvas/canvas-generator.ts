// Grows the fixture course into a large one, deterministically from a seed, for benchmarks and paging tests.
import { placeholder } from "./course-routes.js";
import { displayUser, type CanvasAssignment, type CanvasEntry, type CanvasState, type CanvasTopic } from "./canvas-state.js";
import { formatCanvasTime } from "./canvas-wire.js";
import { createRandom } from "../../util/random.js";

export interface CourseScale {
  students?: number;
  assignments?: number;
  topics?: number;
  entriesPerTopic?: number;
}


const FIRST_NAMES = ["Ada", "Bo", "Chen", "Dara", "Eli", "Fatima", "Gus", "Hana", "Ivo", "Jun", "Kemi", "Lior"];
const LAST_NAMES = ["Abara", "Berg", "Costa", "Dube", "Ekström", "Fofana", "Garcia", "Huang", "Ito", "Jensen"];
/** Generated objects start at these ids, clear of the fixtures' (7xxx, 31xxx, 41xxx, 51xxx, 61xxx, 88xxx). */
const BASE = { user: 100_000, enrollment: 200_000, assignment: 300_000, submission: 400_000, topic: 500_000, entry: 600_000 };
const TERM_START = Date.parse("2025-01-13T06:00:00Z");
const HOUR = 3_600_000;

/** Adds students (with enrollments), published assignments (with a submission row per student), topics and entries. */
export function scaleCanvasCourse(state: CanvasState, scale: CourseScale, seed: number, origin: string): void {
  const random = createRandom(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;
  const courseId = state.course.id;
  const newStudents: number[] = [];
  for (let i = 0; i < (scale.students ?? 0); i++) {
    const id = BASE.user + i;
    const first = pick(FIRST_NAMES);
    const last = pick(LAST_NAMES);
    const created = formatCanvasTime(TERM_START - 30 * 24 * HOUR + i * HOUR);
    state.users.push({ id, name: `${first} ${last}`, short_name: `${first} ${last}`, sortable_name: `${last}, ${first}`, created_at: created, login_id: `s${id}@example.edu`, email: `s${id}@example.edu`, sis_user_id: null, integration_id: null });
    state.enrollments.push({ id: BASE.enrollment + i, user_id: id, course_id: courseId, type: "StudentEnrollment", role: "StudentEnrollment", enrollment_state: "active", created_at: created, updated_at: created, course_section_id: 5301, html_url: `${origin}/courses/${courseId}/users/${id}` });
    newStudents.push(id);
  }
  const students = state.enrollments.filter((e) => e.type === "StudentEnrollment").map((e) => e.user_id);
  let submissionId = BASE.submission;
  for (let i = 0; i < (scale.assignments ?? 0); i++) {
    const id = BASE.assignment + i;
    const due = formatCanvasTime(TERM_START + (i + 1) * 7 * 24 * HOUR - 1000);
    const assignment: CanvasAssignment = { id, name: `Generated assignment ${i + 1}`, description: `<p>Task ${i + 1}</p>`, due_at: due, unlock_at: null, lock_at: null, points_possible: 10, grading_type: "points", assignment_group_id: 9101, created_at: formatCanvasTime(TERM_START), updated_at: formatCanvasTime(TERM_START), position: state.assignments.length + 1, course_id: courseId, submission_types: ["online_text_entry"], published: true, workflow_state: "published", html_url: `${origin}/courses/${courseId}/assignments/${id}` };
    state.assignments.push(assignment);
    for (const userId of students) {
      const row = placeholder(submissionId++, id, userId, due);
      if (random() < 0.6) {
        const submitted = Date.parse(due) - Math.floor(random() * 72) * HOUR;
        Object.assign(row, { workflow_state: "submitted", submitted_at: formatCanvasTime(submitted), body: `<p>Answer by ${userId}</p>`, submission_type: "online_text_entry", attempt: 1 });
        if (random() < 0.5) {
          const score = Math.round(random() * 20) / 2;
          const graded = formatCanvasTime(submitted + 48 * HOUR);
          Object.assign(row, { workflow_state: "graded", grade: String(score), score, entered_grade: String(score), entered_score: score, graded_at: graded, posted_at: graded, grader_id: 7001 });
        }
      }
      state.submissions.push(row);
    }
  }
  // The fixture assignments also get rows for the new students, as Canvas would.
  for (const assignment of state.assignments.filter((a) => a.published && a.id < BASE.assignment)) {
    for (const userId of newStudents) state.submissions.push(placeholder(submissionId++, assignment.id, userId, assignment.due_at));
  }
  let entryId = BASE.entry;
  for (let t = 0; t < (scale.topics ?? 0); t++) {
    const id = BASE.topic + t;
    const posted = formatCanvasTime(TERM_START + t * 24 * HOUR);
    const topic: CanvasTopic = { id, title: `Generated topic ${t + 1}`, message: `<p>Discuss ${t + 1}</p>`, is_announcement: false, posted_at: posted, created_at: posted, locked: false, published: true, pinned: false, discussion_type: "threaded", require_initial_post: false, last_reply_at: null, discussion_subentry_count: 0, position: state.topics.length + 1, user_name: "Maria Okafor", author: displayUser(state, 7001, origin), html_url: `${origin}/courses/${courseId}/discussion_topics/${id}`, url: `${origin}/courses/${courseId}/discussion_topics/${id}` };
    const entries: CanvasEntry[] = [];
    for (let e = 0; e < (scale.entriesPerTopic ?? 0); e++) {
      const userId = students.length > 0 ? pick(students) : 7001;
      const created = formatCanvasTime(Date.parse(posted) + (e + 1) * HOUR);
      const parent = entries.length > 0 && random() < 0.5 ? pick(entries).id : null;
      const user = state.users.find((u) => u.id === userId);
      entries.push({ id: entryId++, user_id: userId, parent_id: parent, created_at: created, updated_at: created, rating_count: null, rating_sum: null, user_name: user?.name ?? "", message: `<p>Post ${e + 1} in topic ${t + 1}</p>`, user: displayUser(state, userId, origin), read_state: "read", forced_read_state: false });
    }
    topic.discussion_subentry_count = entries.length;
    topic.last_reply_at = entries.at(-1)?.created_at ?? null;
    state.topics.push(topic);
    state.entries.set(id, entries);
  }
}
