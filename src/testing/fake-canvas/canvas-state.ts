// The in-memory course behind the fake Canvas: fixture-shaped JSON objects plus the knobs tests turn.
// Objects are stored as Canvas prints them, so a route mostly filters, sorts and copies.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { JsonObject } from "./canvas-wire.js";

export interface CanvasCourse extends JsonObject {
  id: number;
  name: string;
  course_code: string;
  time_zone: string;
}
export interface CanvasUser extends JsonObject {
  id: number;
  name: string;
  short_name: string;
}
export interface CanvasEnrollment extends JsonObject {
  id: number;
  user_id: number;
  type: string;
  enrollment_state: string;
}
export interface CanvasModule extends JsonObject {
  id: number;
  name: string;
  position: number;
}
export interface CanvasModuleItem extends JsonObject {
  /** A `bigint` for an id past 2^53, as sharded and hosted instances hand out. */
  id: number | bigint;
  module_id: number;
  position: number;
  title: string;
  type: string;
}
export interface CanvasAssignment extends JsonObject {
  id: number;
  name: string;
  published: boolean;
  due_at: string | null;
  points_possible: number | null;
  updated_at: string;
}
/** Dates for some students of an assignment (an "adhoc" override). */
export interface CanvasOverride {
  id: number;
  assignment_id: number;
  student_ids: number[];
  due_at: string | null;
}
export interface CanvasSubmission extends JsonObject {
  id: number;
  user_id: number;
  assignment_id: number;
  workflow_state: string;
  grade: string | null;
  score: number | null;
  submitted_at: string | null;
  graded_at: string | null;
}
export interface CanvasTopic extends JsonObject {
  id: number;
  title: string;
  message: string;
  is_announcement: boolean;
  posted_at: string | null;
  locked: boolean;
}
export interface CanvasEntry extends JsonObject {
  id: number;
  user_id?: number;
  parent_id: number | null;
  created_at: string;
  updated_at: string;
  message?: string;
  deleted?: boolean;
}
export interface CanvasPage extends JsonObject {
  page_id: number;
  url: string;
  title: string;
  body: string;
  front_page: boolean;
  updated_at: string;
}

/** How `/view` answers: built and current, built but missing newer entries (they go to `new_entries`), or 503. */
export type ViewMode = "fresh" | "stale" | "building";

export interface CanvasKnobs {
  /** `/modules?include[]=items` inlines items only for modules with at most this many (Canvas: the max page size). */
  inlineItemsLimit: number;
  /** Status for an authenticated request the user may not make: 401 historically, 403 on some hosts. */
  permissionDeniedStatus: 401 | 403;
  viewMode: ViewMode;
}

/** The whole in-memory course. Tests may read and change it directly as a "remote edit". */
export interface CanvasState {
  course: CanvasCourse;
  users: CanvasUser[];
  enrollments: CanvasEnrollment[];
  modules: CanvasModule[];
  moduleItems: CanvasModuleItem[];
  assignments: CanvasAssignment[];
  /** Per-student due dates; `due_at` in assignment responses reflects them for the caller. */
  overrides: CanvasOverride[];
  submissions: CanvasSubmission[];
  /** Discussion topics and announcements (`is_announcement: true`). */
  topics: CanvasTopic[];
  /** Entries per topic id, flat (replies point at `parent_id`), deleted ones kept as tombstones. */
  entries: Map<number, CanvasEntry[]>;
  /** Entry ids the `/view` cache was built with while `viewMode` is "stale". */
  viewCachedEntryIds: Set<number>;
  pages: CanvasPage[];
  /** Bearer token to user id. */
  tokens: Map<string, number>;
  knobs: CanvasKnobs;
  /** Next id for created objects; far above fixture and generated ids. */
  nextId: number;
}

/** The host the fixtures were written against; rewritten to the fake's own origin when seeding. */
const FIXTURE_ORIGIN = "https://canvas.example.edu";

function readBody<T>(dir: string, name: string, origin: string): T {
  const raw = readFileSync(join(dir, `${name}.json`), "utf8").split(FIXTURE_ORIGIN).join(origin);
  return (JSON.parse(raw) as { body: T }).body;
}

/** Builds the BIO101 course (4201) from the fixture files, with URLs pointing at `origin`. */
export function loadCanvasState(fixturesDir: string, origin: string): CanvasState {
  const read = <T>(name: string): T => readBody<T>(fixturesDir, name, origin);
  const users = read<CanvasUser[]>("course_users").map((user) => {
    const copy = { ...user };
    delete copy.enrollments;
    return copy;
  });
  const modules = read<CanvasModule[]>("modules").map((module) => {
    const copy = { ...module };
    delete copy.items;
    return copy;
  });
  const topics = read<CanvasTopic[]>("discussion_topics");
  const announcements = read<CanvasTopic[]>("announcements").map((topic) => {
    const copy: CanvasTopic = { ...topic, is_announcement: true };
    delete copy.context_code;
    return copy;
  });
  const entries = read<CanvasEntry[]>("discussion_topic_41001_entries").flatMap((entry) => {
    const replies = Array.isArray(entry.recent_replies) ? (entry.recent_replies as CanvasEntry[]) : [];
    const top = { ...entry };
    delete top.recent_replies;
    delete top.has_more_replies;
    return [top, ...replies];
  });
  const pageList = read<CanvasPage[]>("pages");
  const fullPage = read<CanvasPage>("page_welcome-to-bio-101");
  return {
    course: read<CanvasCourse>("course_4201"),
    users,
    enrollments: read<CanvasEnrollment[]>("enrollments"),
    modules,
    moduleItems: read<CanvasModuleItem[]>("module_items"),
    assignments: read<CanvasAssignment[]>("assignments"),
    overrides: [],
    submissions: read<CanvasSubmission[]>("submissions_students_all"),
    topics: [...topics, ...announcements],
    entries: new Map([[41001, entries.sort((a, b) => a.id - b.id)]]),
    viewCachedEntryIds: new Set(),
    pages: pageList.map((page) => (page.page_id === fullPage.page_id ? fullPage : { ...page, body: "" })),
    tokens: new Map(),
    knobs: { inlineItemsLimit: 100, permissionDeniedStatus: 401, viewMode: "fresh" },
    nextId: 1_000_000,
  };
}

/** Staff (teachers and TAs) may write; students may only read and post discussion entries. */
export function isStaff(state: CanvasState, userId: number): boolean {
  return state.enrollments.some(
    (e) => e.user_id === userId && e.enrollment_state === "active" && (e.type === "TeacherEnrollment" || e.type === "TaEnrollment"),
  );
}

export function studentIds(state: CanvasState): number[] {
  return state.enrollments.filter((e) => e.type === "StudentEnrollment" && e.enrollment_state === "active").map((e) => e.user_id);
}

/** The short user object Canvas embeds as `author` or `user`. */
export function displayUser(state: CanvasState, userId: number, origin: string): JsonObject {
  const user = state.users.find((u) => u.id === userId);
  return {
    id: userId,
    anonymous_id: userId.toString(36),
    display_name: user?.short_name ?? "Unknown",
    avatar_image_url: `${origin}/images/messages/avatar-50.png`,
    html_url: `${origin}/courses/${state.course.id}/users/${userId}`,
    pronouns: null,
  };
}
