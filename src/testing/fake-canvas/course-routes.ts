// Fake Canvas routes for the course, people, modules, assignments and submissions.
import { denied, invalid, notFound, ok, requesterZone, type Reply, type RouteContext, type RouteHandler } from "./canvas-reply.js";
import { isStaff, studentIds, type CanvasAssignment, type CanvasSubmission } from "./canvas-state.js";
import { formatCanvasTime, paramBoolean, paramList, paramObject, paramString, parseCanvasTime, rewriteUserHtml } from "./canvas-wire.js";

function getCourse(ctx: RouteContext): Reply {
  return ok(ctx.state.course);
}

function listCourses(ctx: RouteContext): Reply {
  return { status: 200, list: [ctx.state.course], paging: "numbered" };
}

function listUsers(ctx: RouteContext): Reply {
  const { state, input } = ctx;
  const include = paramList(input.include);
  const types = paramList(input.enrollment_type).map((t) => `${t}enrollment`); // "ta" → TaEnrollment
  const enrolled = state.enrollments.filter((e) => types.length === 0 || types.some((t) => t.toLowerCase() === e.type.toLowerCase()));
  const ids = new Set(enrolled.map((e) => e.user_id));
  const users = state.users
    .filter((u) => ids.has(u.id))
    .sort((a, b) => a.id - b.id)
    .map((user) => {
      const copy: typeof user = { ...user };
      if (!include.includes("email")) delete copy.email;
      if (include.includes("enrollments")) copy.enrollments = state.enrollments.filter((e) => e.user_id === user.id);
      return copy;
    });
  return { status: 200, list: users, paging: "numbered" };
}

/** `self` names the caller, as it does in every Canvas user URL. */
function getUser(ctx: RouteContext): Reply {
  const wanted = ctx.params.user_id === "self" ? String(ctx.userId) : ctx.params.user_id;
  const user = ctx.state.users.find((u) => String(u.id) === wanted);
  return user ? ok(user) : notFound();
}

/** Default state filter is active and invited; removals only show when asked for by `state[]`. */
function listEnrollments(ctx: RouteContext): Reply {
  const states = paramList(ctx.input.state);
  const wanted = states.length > 0 ? states : ["active", "invited"];
  const types = paramList(ctx.input.type);
  const list = ctx.state.enrollments
    .filter((e) => wanted.includes(e.enrollment_state) && (types.length === 0 || types.includes(e.type)))
    .sort((a, b) => a.id - b.id);
  return { status: 200, list, paging: "bookmark" };
}

function findAssignment(ctx: RouteContext): CanvasAssignment | undefined {
  return ctx.state.assignments.find((a) => String(a.id) === ctx.params.assignment_id);
}

/**
 * An assignment's dates as the caller sees them: with overrides, Canvas applies them per requesting
 * user unless `override_assignment_dates=false`. A student sees their own override; an instructor
 * sees the most lenient date of the base and every override (no due date being the most lenient).
 */
function presentAssignment(ctx: RouteContext, assignment: CanvasAssignment): CanvasAssignment {
  const overrides = ctx.state.overrides.filter((o) => o.assignment_id === assignment.id);
  if (overrides.length === 0) return assignment;
  const copy: CanvasAssignment = { ...assignment, has_overrides: true };
  if (paramBoolean(ctx.input.override_assignment_dates) === false) return copy;
  if (isStaff(ctx.state, ctx.userId)) {
    const dates = [assignment.due_at, ...overrides.map((o) => o.due_at)];
    copy.due_at = dates.includes(null) ? null : dates.reduce((a, b) => (Date.parse(b!) > Date.parse(a!) ? b : a));
  } else {
    const own = overrides.find((o) => o.student_ids.includes(ctx.userId));
    if (own) copy.due_at = own.due_at;
  }
  return copy;
}

function listAssignments(ctx: RouteContext): Reply {
  const staff = isStaff(ctx.state, ctx.userId);
  const list = ctx.state.assignments.filter((a) => staff || a.published).map((a) => presentAssignment(ctx, a));
  return { status: 200, list, paging: "numbered" };
}

function getAssignment(ctx: RouteContext): Reply {
  const assignment = findAssignment(ctx);
  return assignment && (assignment.published || isStaff(ctx.state, ctx.userId)) ? ok(presentAssignment(ctx, assignment)) : notFound();
}

/** Applies `assignment[...]` fields; offset-less times are read in the requester's zone. Returns an error reply or null. */
function applyAssignmentFields(ctx: RouteContext, target: CanvasAssignment, fields: Record<string, unknown>): Reply | null {
  const zone = requesterZone(ctx);
  for (const key of ["due_at", "lock_at", "unlock_at"] as const) {
    if (!(key in fields)) continue;
    const raw = paramString(fields[key]) ?? "";
    if (raw === "") {
      target[key] = null;
      continue;
    }
    const ms = parseCanvasTime(raw, zone);
    if (ms === null) return invalid(key, "invalid");
    target[key] = formatCanvasTime(ms);
  }
  const name = paramString(fields.name);
  if (name !== undefined) target.name = name;
  const description = paramString(fields.description);
  if (description !== undefined) target.description = rewriteUserHtml(description, ctx.origin);
  const points = paramString(fields.points_possible);
  if (points !== undefined) target.points_possible = points === "" ? null : Number(points);
  const grading = paramString(fields.grading_type);
  if (grading !== undefined) target.grading_type = grading;
  if ("submission_types" in fields) target.submission_types = paramList(fields.submission_types);
  const position = paramString(fields.position);
  if (position !== undefined) target.position = Number(position);
  const published = paramBoolean(fields.published);
  if (published !== undefined) {
    if (!published && ctx.state.submissions.some((s) => s.assignment_id === target.id && s.workflow_state !== "unsubmitted")) {
      return invalid("published", "Can't unpublish if there are student submissions");
    }
    target.published = published;
    target.workflow_state = published ? "published" : "unpublished";
    if (published) addPlaceholders(ctx, target.id);
  }
  target.updated_at = formatCanvasTime(ctx.now());
  return null;
}

/** Canvas keeps an unsubmitted placeholder, with a real id, for every student of a published assignment. */
export function addPlaceholders(ctx: Pick<RouteContext, "state" | "now">, assignmentId: number): void {
  const assignment = ctx.state.assignments.find((a) => a.id === assignmentId);
  for (const userId of studentIds(ctx.state)) {
    if (ctx.state.submissions.some((s) => s.assignment_id === assignmentId && s.user_id === userId)) continue;
    ctx.state.submissions.push(placeholder(ctx.state.nextId++, assignmentId, userId, assignment?.due_at ?? null));
  }
}

export function placeholder(id: number, assignmentId: number, userId: number, dueAt: string | null): CanvasSubmission {
  return {
    id, body: null, url: null, grade: null, score: null, submitted_at: null, assignment_id: assignmentId, user_id: userId,
    submission_type: null, workflow_state: "unsubmitted", grade_matches_current_submission: true, graded_at: null,
    grader_id: null, attempt: null, cached_due_date: dueAt, excused: false, late_policy_status: null, points_deducted: null,
    grading_period_id: null, extra_attempts: null, posted_at: null, redo_request: false, custom_grade_status_id: null,
    sticker: null, late: false, missing: false, seconds_late: 0, entered_grade: null, entered_score: null,
  };
}

function createAssignment(ctx: RouteContext): Reply {
  if (!isStaff(ctx.state, ctx.userId)) return denied(ctx);
  const fields = paramObject(ctx.input.assignment);
  if ((paramString(fields.name) ?? "").trim() === "") return invalid("name", "blank");
  const id = ctx.state.nextId++;
  const now = formatCanvasTime(ctx.now());
  const assignment: CanvasAssignment = {
    id, name: "", description: null, due_at: null, unlock_at: null, lock_at: null, points_possible: 0, grading_type: "points",
    assignment_group_id: 9101, created_at: now, updated_at: now, position: ctx.state.assignments.length + 1,
    course_id: ctx.state.course.id, submission_types: ["none"], published: false, workflow_state: "unpublished",
    html_url: `${ctx.origin}/courses/${ctx.state.course.id}/assignments/${id}`, has_submitted_submissions: false,
    allowed_attempts: -1, muted: true, only_visible_to_overrides: false, locked_for_user: false,
  };
  const error = applyAssignmentFields(ctx, assignment, fields);
  if (error) return error;
  ctx.state.assignments.push(assignment);
  return ok(assignment, 201);
}

/** Canvas answers 201 to an assignment update too. */
function updateAssignment(ctx: RouteContext): Reply {
  if (!isStaff(ctx.state, ctx.userId)) return denied(ctx);
  const assignment = findAssignment(ctx);
  if (!assignment) return notFound();
  const draft = { ...assignment };
  const error = applyAssignmentFields(ctx, draft, paramObject(ctx.input.assignment));
  if (error) return error;
  Object.assign(assignment, draft);
  return ok(assignment, 201);
}

function deleteAssignment(ctx: RouteContext): Reply {
  if (!isStaff(ctx.state, ctx.userId)) return denied(ctx);
  const assignment = findAssignment(ctx);
  if (!assignment) return notFound();
  ctx.state.assignments = ctx.state.assignments.filter((a) => a !== assignment);
  return ok({ ...assignment, workflow_state: "deleted" });
}

function presentSubmission(ctx: RouteContext, submission: CanvasSubmission): CanvasSubmission {
  const copy = { ...submission };
  if (!paramList(ctx.input.include).includes("submission_comments")) delete copy.submission_comments;
  return copy;
}

function listSubmissions(ctx: RouteContext): Reply {
  const assignment = findAssignment(ctx);
  if (!assignment) return notFound();
  if (!isStaff(ctx.state, ctx.userId)) return denied(ctx);
  const list = ctx.state.submissions
    .filter((s) => s.assignment_id === assignment.id)
    .sort((a, b) => a.user_id - b.user_id)
    .map((s) => presentSubmission(ctx, s));
  return { status: 200, list, paging: "numbered" };
}

/** `student_ids[]=all` for staff; `submitted_since`/`graded_since` drop placeholders and older rows. */
function listStudentSubmissions(ctx: RouteContext): Reply {
  const { state, input } = ctx;
  const requested = paramList(input.student_ids);
  const staff = isStaff(state, ctx.userId);
  if (requested.length > 0 && !staff && requested.some((id) => id !== String(ctx.userId))) return denied(ctx);
  const students = requested.length === 0 ? [String(ctx.userId)] : requested;
  const assignments = paramList(input.assignment_ids);
  const zone = state.course.time_zone;
  const since = (key: "submitted_since" | "graded_since", field: "submitted_at" | "graded_at") => {
    const raw = paramString(input[key]);
    const ms = raw === undefined ? null : parseCanvasTime(raw, zone);
    return (s: CanvasSubmission) => ms === null || (s[field] !== null && Date.parse(s[field]) >= ms);
  };
  const submittedOk = since("submitted_since", "submitted_at");
  const gradedOk = since("graded_since", "graded_at");
  const workflow = paramString(input.workflow_state);
  const list = state.submissions
    .filter((s) => students.includes("all") || students.includes(String(s.user_id)))
    .filter((s) => assignments.length === 0 || assignments.includes(String(s.assignment_id)))
    .filter((s) => state.assignments.some((a) => a.id === s.assignment_id))
    .filter((s) => submittedOk(s) && gradedOk(s) && (workflow === undefined || s.workflow_state === workflow))
    .sort((a, b) => a.id - b.id)
    .map((s) => presentSubmission(ctx, s));
  return { status: 200, list, paging: "bookmark" };
}

function getSubmission(ctx: RouteContext): Reply {
  const assignment = findAssignment(ctx);
  if (!assignment) return notFound();
  const userId = ctx.params.user_id === "self" ? String(ctx.userId) : ctx.params.user_id;
  if (!isStaff(ctx.state, ctx.userId) && userId !== String(ctx.userId)) return denied(ctx);
  const found = ctx.state.submissions.find((s) => s.assignment_id === assignment.id && String(s.user_id) === userId);
  return found ? ok(presentSubmission(ctx, found)) : notFound();
}

/** Reads `posted_grade` as Canvas does for a points assignment: "8.5", "85%", pass/complete/fail/incomplete, "" clears. */
function gradeToScore(posted: string, pointsPossible: number): { grade: string | null; score: number | null } | null {
  const text = posted.trim();
  if (text === "") return { grade: null, score: null };
  if (/^-?\d+(\.\d+)?$/.test(text)) return { grade: String(Number(text)), score: Number(text) };
  const percent = /^(-?\d+(?:\.\d+)?)%$/.exec(text);
  if (percent) {
    const score = (Number(percent[1]) / 100) * pointsPossible;
    return { grade: String(score), score };
  }
  if (["pass", "complete"].includes(text)) return { grade: "complete", score: pointsPossible };
  if (["fail", "incomplete"].includes(text)) return { grade: "incomplete", score: 0 };
  return null;
}

/** Grades (and comments on) the submission of student `:user_id`, creating the row if missing. */
function gradeSubmission(ctx: RouteContext): Reply {
  if (!isStaff(ctx.state, ctx.userId)) return denied(ctx);
  const assignment = findAssignment(ctx);
  const userId = Number(ctx.params.user_id);
  if (!assignment || !ctx.state.users.some((u) => u.id === userId)) return notFound();
  let submission = ctx.state.submissions.find((s) => s.assignment_id === assignment.id && s.user_id === userId);
  if (!submission) {
    submission = placeholder(ctx.state.nextId++, assignment.id, userId, assignment.due_at);
    ctx.state.submissions.push(submission);
  }
  const now = formatCanvasTime(ctx.now());
  const fields = paramObject(ctx.input.submission);
  const posted = paramString(fields.posted_grade);
  if (posted !== undefined) {
    const result = gradeToScore(posted, assignment.points_possible ?? 0);
    if (!result) return { status: 400, json: { error: "Grade is not a valid letter grade" } };
    Object.assign(submission, {
      grade: result.grade, score: result.score, entered_grade: result.grade, entered_score: result.score,
      workflow_state: result.grade === null ? (submission.submitted_at ? "submitted" : "unsubmitted") : "graded",
      graded_at: result.grade === null ? null : now, grader_id: result.grade === null ? null : ctx.userId,
      posted_at: result.grade === null ? null : now, grade_matches_current_submission: true,
    });
  }
  if (paramBoolean(fields.excuse) === true) Object.assign(submission, { excused: true, grade: null, score: null });
  const comments = Array.isArray(submission.submission_comments) ? (submission.submission_comments as unknown[]) : [];
  const text = paramString(paramObject(ctx.input.comment).text_comment);
  if (text !== undefined && text !== "") {
    const author = ctx.state.users.find((u) => u.id === ctx.userId);
    comments.push({ id: ctx.state.nextId++, author_id: ctx.userId, author_name: author?.name ?? "", comment: text, created_at: now, edited_at: null, media_comment: null });
  }
  submission.submission_comments = comments;
  return ok({ ...submission, all_submissions: [{ ...submission }] });
}

/** Routes by method and path under `/api/v1`; `:course_id` is checked against the course by the router. */
export const COURSE_ROUTES: [string, string, RouteHandler][] = [
  ["GET", "/courses", listCourses],
  ["GET", "/courses/:course_id", getCourse],
  ["GET", "/courses/:course_id/users", listUsers],
  ["GET", "/courses/:course_id/users/:user_id", getUser],
  ["GET", "/users/:user_id", getUser],
  ["GET", "/courses/:course_id/enrollments", listEnrollments],
  ["GET", "/courses/:course_id/assignments", listAssignments],
  ["POST", "/courses/:course_id/assignments", createAssignment],
  ["GET", "/courses/:course_id/assignments/:assignment_id", getAssignment],
  ["PUT", "/courses/:course_id/assignments/:assignment_id", updateAssignment],
  ["DELETE", "/courses/:course_id/assignments/:assignment_id", deleteAssignment],
  ["GET", "/courses/:course_id/assignments/:assignment_id/submissions", listSubmissions],
  ["GET", "/courses/:course_id/assignments/:assignment_id/submissions/:user_id", getSubmission],
  ["PUT", "/courses/:course_id/assignments/:assignment_id/submissions/:user_id", gradeSubmission],
  ["GET", "/courses/:course_id/students/submissions", listStudentSubmissions],
];
