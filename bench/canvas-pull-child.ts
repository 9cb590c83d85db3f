import { canvasClient } from "../src/connectors/canvas/canvas-client.js";
import { canvasInstance } from "../src/connectors/canvas/canvas-mapping.js";
import { pullCanvasCourse, type PullResult } from "../src/connectors/canvas/canvas-pull.js";
import { connectorDb } from "../src/connectors/connector-tables.js";
import { Engine } from "../src/engine.js";
import { FakeCanvas, type CanvasState, type CourseScale, type RecordedRequest } from "../src/testing/fake-canvas/index.js";
import { readTask, runChild, since } from "./child-kit.js";

/** A pull of a fake Canvas course into a fresh engine, then a second pull of the unchanged course; run by `bench/run.ts`. */
export interface CanvasPullTask {
  task: "pull";
  dataDir: string;
  scale: CourseScale;
}

/** Requests per endpoint, ids folded (`GET /courses/:id/discussion_topics/:id/view`), so a count can be set against its minimum. */
export type RequestCounts = Record<string, number>;

export interface PullFigures {
  /** From calling the connector until the projection holds every document it wrote. */
  ms: number;
  /** Of `ms`, the connector's own part (requests and document writes). */
  pullMs: number;
  /** Of `pullMs`, time spent waiting for Canvas: from sending each request to reading its whole answer. */
  canvasMs: number;
  created: number;
  updated: number;
  unchanged: number;
  deleted: number;
  failed: number;
  firstFailure?: string;
  requests: number;
  /** Requests answered with anything but 2xx (throttled, failed, dropped): retries show up here. */
  notOk: number;
  byRoute: RequestCounts;
  minimum: number;
  minimumByRoute: RequestCounts;
}

export interface CanvasPullReport {
  scale: Required<CourseScale>;
  /** What the fake holds, as the listings show it to a teacher. */
  course: { users: number; enrollments: number; assignments: number; submissions: number; topics: number; announcements: number; entries: number; pages: number; modules: number };
  /** Documents in the projection after the first pull. */
  projected: number;
  first: PullFigures;
  second: PullFigures;
}

/** Canvas's `MAX_PER_PAGE` (CONTRACT §1.2): no listing page can hold more. */
const MAX_PER_PAGE = 100;
/** The enrollment states a sync must list to notice removals (the default list shows only active and invited). */
const ENROLLMENT_STATES = ["active", "invited", "completed", "inactive"];

const pagesOf = (count: number): number => Math.max(1, Math.ceil(count / MAX_PER_PAGE));

/** `GET /courses/4201/pages/page_id:81001?x=1` → `GET /courses/:id/pages/:id`. */
export function routeOf(request: Pick<RecordedRequest, "method" | "path">): string {
  const path = request.path.split("?")[0]!.replace(/\/(?:page_id:)?\d+(?=\/|$)/g, "/:id");
  return `${request.method} ${path}`;
}

function countRoutes(requests: readonly RecordedRequest[]): RequestCounts {
  const counts: RequestCounts = {};
  for (const request of requests) counts[routeOf(request)] = (counts[routeOf(request)] ?? 0) + 1;
  return counts;
}

/**
 * The fewest requests the Canvas API allows for reading the course in full, from what the fake
 * holds. Canvas has no "changed since" for most objects (CONTRACT §1.6), so a sync reads:
 *
 *   1                                       GET /courses/:id (the course's own fields; no listing has them all)
 * + pages(users) + pages(enrollments)       the people, and every enrollment state (removals show as states)
 * + pages(assignments)
 * + pages(submissions)                      one listing for the whole course (`students/submissions?student_ids[]=all`),
 *                                           not one per assignment; submitted_since/graded_since would miss
 *                                           comment edits and cleared grades, so the listing is read in full
 * + pages(topics) + pages(announcements)    the topic list leaves announcements out unless `only_announcements`
 * + one `/view` per topic or announcement   the whole thread in one request, however many entries; a topic whose
 *   that has entries                        listing says `discussion_subentry_count: 0` holds nothing to read
 * + pages(pages) + one GET per page         the page list leaves out `body` (§1.5), so each body is a request;
 *                                           a later pull needs it only when the list's `updated_at` moved
 * + pages(modules)                          with `include[]=items`, plus pages(items) for each module whose items
 *                                           Canvas leaves out (more than a page of them)
 *
 * where pages(n) = max(1, ceil(n / 100)): per_page is capped at 100 and even an empty listing
 * costs one request. `rescan` gives the minimum for pulling the same course again unchanged.
 */
export function minimumRequests(state: CanvasState, options: { rescan: boolean }): RequestCounts {
  const course = `/courses/${state.course.id}`;
  const label = (path: string) => routeOf({ method: "GET", path });
  const out: RequestCounts = {};
  const add = (path: string, requests: number) => {
    if (requests > 0) out[label(path)] = (out[label(path)] ?? 0) + requests;
  };
  const enrolled = new Set(state.enrollments.map((e) => e.user_id));
  const assignments = new Set(state.assignments.map((a) => a.id));
  add(course, 1);
  add(`${course}/users`, pagesOf(state.users.filter((u) => enrolled.has(u.id)).length));
  add(`${course}/enrollments`, pagesOf(state.enrollments.filter((e) => ENROLLMENT_STATES.includes(e.enrollment_state)).length));
  add(`${course}/assignments`, pagesOf(state.assignments.length));
  add(`${course}/students/submissions`, pagesOf(state.submissions.filter((s) => assignments.has(s.assignment_id)).length));
  for (const announcements of [false, true]) {
    const topics = state.topics.filter((t) => t.is_announcement === announcements);
    add(`${course}/discussion_topics`, pagesOf(topics.length));
    for (const topic of topics) {
      const listed = typeof topic.discussion_subentry_count === "number" ? topic.discussion_subentry_count : (state.entries.get(topic.id) ?? []).length;
      if (listed > 0) add(`${course}/discussion_topics/${topic.id}/view`, 1);
    }
  }
  add(`${course}/pages`, pagesOf(state.pages.length));
  // An unchanged page keeps its `updated_at` in the list: a rescan need not read its body again.
  if (!options.rescan) for (const page of state.pages) add(`${course}/pages/page_id:${page.page_id}`, 1);
  add(`${course}/modules`, pagesOf(state.modules.length));
  for (const module of state.modules) {
    const items = state.moduleItems.filter((i) => i.module_id === module.id).length;
    if (items > state.knobs.inlineItemsLimit) add(`${course}/modules/${module.id}/items`, pagesOf(items));
  }
  return out;
}

const sum = (counts: RequestCounts): number => Object.values(counts).reduce((a, b) => a + b, 0);

runChild(async () => {
  const task = readTask<CanvasPullTask>();
  const scale: Required<CourseScale> = { students: 0, assignments: 0, topics: 0, entriesPerTopic: 0, ...task.scale };
  // The real clock: the fake's throttle bucket drains as Canvas's does, so only a client that overspends is throttled.
  const canvas = await FakeCanvas.start({ scale });
  const engine = await Engine.open({ dataDir: task.dataDir, create: true });
  try {
    const { state } = canvas;
    let canvasMs = 0;
    // The fake serves from this process, so its own work (filtering, JSON) counts as Canvas's time, as it would.
    const timedFetch: typeof fetch = async (input, init) => {
      const start = performance.now();
      const response = await fetch(input, init);
      const text = await response.text();
      canvasMs += performance.now() - start;
      return new Response(text === "" ? null : text, { status: response.status, statusText: response.statusText, headers: response.headers });
    };
    const client = canvasClient({ url: canvas.url, token: () => canvas.token, fetch: timedFetch });
    const instance = canvasInstance(canvas.url);
    const db = connectorDb(engine.db);
    const courseId = String(state.course.id);

    const measure = async (rescan: boolean): Promise<PullFigures> => {
      const before = canvas.requests.length;
      canvasMs = 0;
      const minimumByRoute = minimumRequests(state, { rescan });
      const start = performance.now();
      const result: PullResult = await pullCanvasCourse({ client, instance, store: engine.docs, db, courseId });
      const pullMs = since(start);
      await engine.whenProjected();
      const ms = since(start);
      const requests = canvas.requests.slice(before);
      return {
        ms,
        pullMs,
        canvasMs: Math.round(canvasMs),
        created: result.created,
        updated: result.updated,
        unchanged: result.unchanged,
        deleted: result.deleted,
        failed: result.failed.length,
        ...(result.failed[0] ? { firstFailure: `${result.failed[0].what}: ${result.failed[0].error}` } : {}),
        requests: requests.length,
        notOk: requests.filter((r) => r.status < 200 || r.status >= 300).length,
        byRoute: countRoutes(requests),
        minimum: sum(minimumByRoute),
        minimumByRoute,
      };
    };

    const first = await measure(false);
    const projected = (await engine.status()).projected;
    const second = await measure(true);
    const topics = state.topics.filter((t) => !t.is_announcement);
    return {
      scale,
      course: {
        users: state.users.length,
        enrollments: state.enrollments.length,
        assignments: state.assignments.length,
        submissions: state.submissions.length,
        topics: topics.length,
        announcements: state.topics.length - topics.length,
        entries: [...state.entries.values()].reduce((n, list) => n + list.length, 0),
        pages: state.pages.length,
        modules: state.modules.length,
      },
      projected,
      first,
      second,
    } satisfies CanvasPullReport;
  } finally {
    await engine.close();
    await canvas.close();
  }
});
