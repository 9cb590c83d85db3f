import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { assignmentFrom, canvasInstance, courseFrom, entryFrom, gradeFrom, pageFrom, topicFrom, type Imported } from "../../src/connectors/canvas/canvas-mapping.js";
import { CANVAS_OWNED, canvasRequest, isSent, plainText, PUSHED_KINDS, SENT_FIELDS, type CanvasForm, type PushedKind } from "../../src/connectors/canvas/canvas-requests.js";
import { canvasInstant } from "../../src/connectors/canvas/canvas-time.js";
import { encodeForm } from "../../src/connectors/http-client.js";
import { syncedFields } from "../../src/connectors/import-documents.js";
import { KIND_FIELDS, type Kind } from "../../src/crdt/schema/kinds.js";
import type { Reply, RouteHandler } from "../../src/testing/fake-canvas/canvas-reply.js";
import { loadCanvasState, type CanvasState } from "../../src/testing/fake-canvas/canvas-state.js";
import { parseRailsParams } from "../../src/testing/fake-canvas/canvas-wire.js";
import { COURSE_ROUTES } from "../../src/testing/fake-canvas/course-routes.js";
import { DISCUSSION_ROUTES } from "../../src/testing/fake-canvas/discussion-routes.js";
import { PAGE_ROUTES } from "../../src/testing/fake-canvas/page-routes.js";

const ORIGIN = "https://canvas.example.edu";
const FIXTURES = join(import.meta.dirname, "../fixtures/lms/canvas");
type Payload = Record<string, unknown>;
const body = <T = Payload[]>(name: string): T => (JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), "utf8")) as { body: T }).body;
const instance = canvasInstance(ORIGIN);
const course = courseFrom(instance, body<Payload>("course_4201")).url;
const ZONE = "America/Chicago";

/** Runs one route of the fake Canvas on its in-memory course, no sockets: what Canvas would store from a request. */
function canvasStores(state: CanvasState, method: string, route: string, params: Record<string, string>, form: CanvasForm): Payload {
  const handler = [...COURSE_ROUTES, ...DISCUSSION_ROUTES, ...PAGE_ROUTES].find(([m, path]) => m === method && path === route)?.[2] as RouteHandler;
  const reply: Reply = handler({ state, method, params: { course_id: "4201", ...params }, input: parseRailsParams(encodeForm(form)), userId: 7001, now: () => Date.parse("2025-01-22T12:00:00Z"), origin: ORIGIN });
  expect(reply.status).toBeLessThan(300);
  return (reply as { json: Payload }).json;
}

/** The document fields a request is made of: every field Canvas takes, as a create sends them. */
function sentFields(kind: PushedKind, doc: Imported<Kind>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(doc.fields).filter(([field]) => isSent(kind, field, "create")));
}

function expectSameSentFields(kind: PushedKind, before: Imported<Kind>, after: Imported<Kind>): void {
  const sent = (doc: Imported<Kind>) => syncedFields(sentFields(kind, doc));
  expect(sent(after)).toEqual(sent(before));
}

describe("document fields as Canvas requests", () => {
  it("names every field of each pushed kind as sent or as Canvas's own, so none is dropped unnoticed", () => {
    for (const kind of PUSHED_KINDS) {
      const named = [...SENT_FIELDS[kind], ...CANVAS_OWNED[kind]].sort();
      expect(named).toEqual(Object.keys(KIND_FIELDS[kind]).sort());
    }
  });

  it("sends prose as HTML, instants with Z, and on an update only what it is given, an emptied time as empty", () => {
    const form = canvasRequest("assignment", { title: "Lab 2", description: "Bring **goggles**", dueAt: "2025-01-28T23:59:00", pointsPossible: 10, published: false }, "create", ZONE);
    expect(form).toEqual({ "assignment[name]": "Lab 2", "assignment[description]": "<p>Bring <strong>goggles</strong></p>", "assignment[due_at]": "2025-01-29T05:59:00Z", "assignment[points_possible]": "10", "assignment[published]": "false" });
    expect(canvasRequest("assignment", { dueAt: null }, "update", ZONE)).toEqual({ "assignment[due_at]": "" });
    expect(canvasRequest("post", { message: "Onion cells look like bricks." }, "update", ZONE)).toEqual({ message: "<p>Onion cells look like bricks.</p>" });
    expect(canvasRequest("grade", { score: null, grade: "pass" }, "update", ZONE)).toEqual({ "submission[posted_grade]": "pass" });
    expect(canvasRequest("grade", { score: 8.5, grade: "B" }, "update", ZONE)).toEqual({ "submission[posted_grade]": "8.5" });
    expect(canvasRequest("discussion_topic", { title: "News", message: "<p>Lab moved</p>", published: true, announcement: true }, "create", ZONE)).toEqual({ title: "News", message: "<p>Lab moved</p>", is_announcement: "true" });
    expect(isSent("discussion_topic", "announcement", "update")).toBe(false);
  });

  it("sends an assignment's submission types whole, as a repeated list key, an emptied list as none", () => {
    const both = canvasRequest("assignment", { title: "Lab 3", submissionTypes: ["online_text_entry", "online_upload"] }, "create", ZONE);
    expect(both["assignment[submission_types][]"]).toEqual(["online_text_entry", "online_upload"]);
    expect(encodeForm(both).toString()).toBe("assignment%5Bname%5D=Lab+3&assignment%5Bsubmission_types%5D%5B%5D=online_text_entry&assignment%5Bsubmission_types%5D%5B%5D=online_upload");
    expect(canvasRequest("assignment", { submissionTypes: [] }, "update", ZONE)).toEqual({ "assignment[submission_types][]": ["none"] });
  });

  it("reads a time without an offset as the course's wall time, and sends every instant with Z", () => {
    expect(canvasInstant("2025-01-28T23:59:00", ZONE)).toBe("2025-01-29T05:59:00Z");
    expect(canvasInstant("2025-01-28T23:59:00-06:00", "Asia/Tokyo")).toBe("2025-01-29T05:59:00Z");
    expect(canvasInstant("2025-01-29T05:59:00.250Z", ZONE)).toBe("2025-01-29T05:59:00.250Z");
    // Summer time: Chicago is five hours behind.
    expect(canvasInstant("2025-07-01T23:59", ZONE)).toBe("2025-07-02T04:59:00Z");
    // A date alone is the start of that day in the course.
    expect(canvasInstant("2025-03-10", ZONE)).toBe("2025-03-10T05:00:00Z");
    expect(canvasInstant("", ZONE)).toBeNull();
    expect(canvasInstant("not a time", ZONE)).toBeNull();
  });

  it("recognises text by its words, whatever Canvas did to its markup", () => {
    expect(plainText('<p>See <a href="https://x.edu/courses/1/pages/a" data-api-endpoint="https://x.edu/api/v1/courses/1/pages/a">the page</a>&nbsp;now</p>')).toBe(plainText("See [the page](https://x.edu/courses/1/pages/a) now"));
    expect(plainText("<p>One</p><p>Two</p>")).toBe("One Two");
  });
});

describe("fixtures round-trip: Canvas payload, document, request, what Canvas stores, document", () => {
  it("keeps every sent field of assignments, pages, topics, announcements, replies and grades", () => {
    const state = loadCanvasState(FIXTURES, ORIGIN);
    const check = (kind: PushedKind, before: Imported<Kind>, stored: (form: CanvasForm) => Payload, back: (p: Payload) => Imported<Kind>) => {
      const form = canvasRequest(kind, sentFields(kind, before), "create", ZONE);
      expectSameSentFields(kind, before, back(stored(form)));
    };
    const assignments = [...body("assignments"), body<Payload>("assignment_create_response")];
    // Not only Canvas's text entry: an upload assignment must come back an upload assignment.
    expect(assignments.map((a) => assignmentFrom(instance, course, a).fields.submissionTypes)).toContainEqual(["online_upload"]);
    for (const a of assignments) {
      check("assignment", assignmentFrom(instance, course, a), (form) => canvasStores(state, "POST", "/courses/:course_id/assignments", {}, form), (p) => assignmentFrom(instance, course, p));
    }
    for (const p of [...body("pages"), body<Payload>("page_welcome-to-bio-101")]) {
      check("page", pageFrom(instance, course, p), (form) => canvasStores(state, "POST", "/courses/:course_id/pages", {}, form), (stored) => pageFrom(instance, course, stored));
    }
    for (const t of [...body("discussion_topics"), ...body("announcements")]) {
      check("discussion_topic", topicFrom(instance, course, t), (form) => canvasStores(state, "POST", "/courses/:course_id/discussion_topics", {}, form), (stored) => topicFrom(instance, course, stored));
    }
    for (const e of [...body("discussion_topic_41001_entries"), body<Payload>("discussion_entry_reply_create_response")]) {
      check("post", entryFrom(instance, course, "41001", e), (form) => canvasStores(state, "POST", "/courses/:course_id/discussion_topics/:topic_id/entries", { topic_id: "41001" }, form), (stored) => entryFrom(instance, course, "41001", stored));
    }
    const graded = [...body("submissions_students_all"), body<Payload>("submission_grade_put_response")].filter((s) => s.score !== null);
    expect(graded.length).toBeGreaterThan(0);
    for (const s of graded) {
      const params = { assignment_id: String(s.assignment_id), user_id: String(s.user_id) };
      check("grade", gradeFrom(instance, course, s), (form) => canvasStores(state, "PUT", "/courses/:course_id/assignments/:assignment_id/submissions/:user_id", params, form), (stored) => gradeFrom(instance, course, stored));
    }
  });
});
