// CONTRACT §5, Canvas side: every quirk the fake reproduces, and what the connector does about it.
// Each describe names a §5 item; a sub-point tested well elsewhere is named in a comment there.
import { afterEach, describe, expect, it } from "vitest";
import { canvasClient } from "../../src/connectors/canvas/canvas-client.js";
import { courseFrom, urlOf, userFrom } from "../../src/connectors/canvas/canvas-mapping.js";
import { pullCanvasCourse } from "../../src/connectors/canvas/canvas-pull.js";
import { RemoteError, type HttpClient, type RemoteProblem } from "../../src/connectors/http-client.js";
import { canvasTestNode } from "../../src/testing/canvas-node.js";
import type { CanvasEntry, CanvasModuleItem, FakeCanvasOptions } from "../../src/testing/fake-canvas/index.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

type Obj = Record<string, unknown>;

async function setup(fake: Omit<FakeCanvasOptions, "clock"> = {}) {
  const node = await canvasTestNode(fake);
  cleanups.push(node.close);
  const { canvas } = node;
  /** A plain request to the fake, as a browser or curl would make it (no connector involved). */
  const call = (path: string, init: RequestInit & { token?: string } = {}) =>
    fetch(`${canvas.url}/api/v1${path}`, { ...init, headers: { Authorization: `Bearer ${init.token ?? canvas.token}`, ...(init.headers as Record<string, string> | undefined) } });
  const form = (method: string, fields: Record<string, string>, token?: string) => ({
    method,
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(fields).toString(),
    ...(token === undefined ? {} : { token }),
  });
  const course = urlOf(node.instance, "course", "4201")!;
  const url = (type: Parameters<typeof urlOf>[1], id: string | number | bigint) => urlOf(node.instance, type, String(id))!;
  return { ...node, call, form, course, url };
}

/** Every item of a listing, and how many pages it took, through the connector's own paging. */
async function walk(client: HttpClient, path: string, query: Record<string, string | string[]> = {}) {
  const items: Obj[] = [];
  const sizes: number[] = [];
  for await (const page of client.pages<Obj>(`/api/v1/courses/4201${path}`, query)) {
    items.push(...page);
    sizes.push(page.length);
  }
  return { items, sizes };
}

async function problemOf(call: Promise<unknown>): Promise<{ problem: RemoteProblem; body: string | null }> {
  try {
    await call;
  } catch (error) {
    if (error instanceof RemoteError) return { problem: error.problem, body: error.body };
    throw error;
  }
  throw new Error("expected a RemoteError");
}

describe("§5.1 opaque, lossy Canvas pagination", () => {
  // The Link header's name comes as `Link` and `link` in turn, so every walk of more than one page
  // here reads both; a differently cased `rel` is in http-client.test.ts ("follows only rel=next").

  it("follows bookmark links to the end of a list whose Link header never has rel=last", async () => {
    const { canvas, client } = await setup({ scale: { students: 45 } });
    const { items, sizes } = await walk(client, "/enrollments", { per_page: "7", "state[]": ["active"] });
    expect(new Set(items.map((e) => e.id)).size).toBe(49);
    expect(sizes).toHaveLength(7);
    const paths = canvas.requests.map((r) => r.path);
    expect(paths.filter((p) => p.includes("page=bookmark:"))).toHaveLength(6);
    const link = (await fetch(`${canvas.url}/api/v1/courses/4201/enrollments?per_page=7`, { headers: { Authorization: `Bearer ${canvas.token}` } })).headers.get("link");
    expect(link).toContain('rel="next"');
    expect(link).not.toContain('rel="last"');
  });

  it("reads on when a per_page above 100 is clamped without a word", async () => {
    const { canvas, client } = await setup({ scale: { students: 150 } });
    const { items, sizes } = await walk(client, "/users", { per_page: "500" });
    expect(items).toHaveLength(154);
    expect(sizes).toEqual([100, 54]);
    expect(canvas.requests[1]!.path).toContain("per_page=100");
  });

  it("ends at a past-the-end page: 200 [] with prev and first but no next", async () => {
    const { canvas, client } = await setup();
    const { sizes } = await walk(client, "/users", { per_page: "100", page: "9" });
    expect(sizes).toEqual([0]);
    expect(canvas.requests.map((r) => r.status)).toEqual([200]);
  });

  it("reads through pages a filter emptied after paginating, while next is still there", async () => {
    const { canvas, client } = await setup({ scale: { topics: 13 } });
    // 15 topics, 5 a page; only the last page's topics are locked, so pages 1 and 2 come back empty.
    const topics = canvas.state.topics.filter((t) => !t.is_announcement);
    for (const topic of topics.slice(10)) topic.locked = true;
    const { items, sizes } = await walk(client, "/discussion_topics", { scope: "locked", per_page: "5" });
    expect(sizes).toEqual([0, 0, 5]);
    expect(items.map((t) => t.id)).toEqual(topics.slice(10).map((t) => String(t.id)));
  });

  it("keeps following next when a long query pushes the other relations out of the 6 KB Link header", async () => {
    const { canvas, client, call } = await setup({ scale: { students: 45 } });
    const include = Array.from({ length: 16 }, (_v, i) => `${"x".repeat(180)}${i}`);
    const { items } = await walk(client, "/users", { per_page: "10", "include[]": include });
    expect(items).toHaveLength(49);
    const query = new URLSearchParams([["per_page", "10"], ...include.map((v) => ["include[]", v] as [string, string])]);
    const link = (await call(`/courses/4201/users?${query.toString()}`)).headers.get("link") ?? "";
    expect(link).toContain('rel="next"');
    expect(link).not.toContain('rel="first"');
    expect(canvas.requests.every((r) => r.status === 200)).toBe(true);
  });

  it("sends its token in a header, so links that drop access_token still authenticate", async () => {
    const { canvas, client } = await setup({ scale: { students: 45 } });
    await walk(client, "/users", { per_page: "10" });
    expect(canvas.requests.length).toBeGreaterThan(1);
    expect(canvas.requests.every((r) => r.status === 200 && !r.path.includes("access_token"))).toBe(true);
    // That Link URLs leave access_token out is in fake-canvas.test.ts ("clamps per_page to 100...").
  });

  it("reports a bookmark Canvas does not know (404) as not found, without retrying", async () => {
    const { canvas, client } = await setup();
    const { problem } = await problemOf(walk(client, "/enrollments", { page: "bookmark:nonsense" }));
    expect(problem).toEqual({ kind: "not-found" });
    expect(canvas.requests).toHaveLength(1);
  });
});

describe("§5.2 Canvas throttling looks like an authz error", () => {
  it("takes the text/plain 403 'Rate Limit Exceeded' as throttling and waits until the bucket drains", async () => {
    const { canvas, client, waits } = await setup();
    canvas.exhaustRateLimit();
    const response = await client.request<Obj>("GET", "/api/v1/courses/4201");
    expect(response.body.id).toBe("4201");
    expect(waits.length).toBeGreaterThan(0);
    expect(canvas.requests.map((r) => r.status)).toEqual([...waits.map(() => 403), 200]);
  });

  it("tells a bad or missing token (401 + WWW-Authenticate) from a refused permission (401 or 403 JSON), retrying neither", async () => {
    const { canvas, sleep } = await setup();
    const as = (token: string) => canvasClient({ url: canvas.url, token: () => token, sleep });
    const revoked = canvas.tokenFor(7002);
    canvas.revokeToken(revoked);
    expect((await problemOf(as(revoked).request("GET", "/api/v1/courses/4201"))).problem).toEqual({ kind: "unauthenticated" });
    expect((await problemOf(as("").request("GET", "/api/v1/courses/4201"))).problem).toEqual({ kind: "unauthenticated" });
    const student = as(canvas.tokenFor(7101));
    const create = () => student.request("POST", "/api/v1/courses/4201/assignments", { form: { "assignment[name]": "Not mine to make" } });
    expect((await problemOf(create())).problem).toEqual({ kind: "forbidden" });
    canvas.state.knobs.permissionDeniedStatus = 403;
    expect((await problemOf(create())).problem).toEqual({ kind: "forbidden" });
    expect(canvas.requests.map((r) => r.status)).toEqual([401, 401, 401, 403]);
  });

  it("stops a pull at once when the token is refused", async () => {
    const { canvas, pull } = await setup();
    canvas.revokeToken(canvas.token);
    const result = await pull();
    expect(result.failed).toEqual([{ what: "course 4201", error: expect.stringContaining("credentials were refused") }]);
    expect(canvas.requests).toHaveLength(1);
  });

  it("sends one request at a time, so it never pays the up-front cost that throttles parallel bursts", async () => {
    const { canvas, client, call, waits } = await setup({ throttle: { hwm: 120, upFrontCost: 50, requestCost: 0.01, outflowPerSecond: 0 }, latencyMs: 150 });
    // The fake charges parallel requests: six at once from one token, and some are throttled.
    const burst = canvas.tokenFor(7002);
    const statuses = await Promise.all(Array.from({ length: 6 }, () => call("/courses/4201", { token: burst }).then((r) => r.status)));
    expect(statuses).toContain(403);
    const before = canvas.requests.length;
    await Promise.all(Array.from({ length: 6 }, () => client.request("GET", "/api/v1/courses/4201")));
    expect(canvas.requests.slice(before).map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(waits).toEqual([]);
  });

  it("watches X-Rate-Limit-Remaining and slows down before the budget runs out, so a costly pull is never throttled", async () => {
    // Each request costs 60 of 600 units and the bucket drains 10 a second: 10 in a row empty it.
    const { canvas, pull, waits } = await setup({ throttle: { hwm: 600, upFrontCost: 50, requestCost: 60, outflowPerSecond: 10 } });
    expect((await pull()).failed).toEqual([]);
    expect(canvas.requests.length).toBeGreaterThan(10);
    expect(canvas.requests.filter((r) => r.status === 403)).toEqual([]);
    expect(waits.length).toBeGreaterThan(0);
  });

  // Discourse's 429s (Retry-After, extras.wait_seconds, the per-IP text) are in contract-quirks-discourse.test.ts.
});

describe("§5.3 missing change-tracking in Canvas", () => {
  it("notices edits to objects that have no updated_at by comparing content on every pull", async () => {
    const { canvas, engine, pull, url } = await setup();
    await pull();
    canvas.state.course.name = "BIO 101: Cells and Systems";
    canvas.state.users.find((u) => u.id === 7102)!.name = "Tomás Lindqvist-Berg";
    canvas.state.modules[0]!.name = "Week 1 — Cells and membranes";
    canvas.state.topics.find((t) => t.id === 41001)!.message = "<p>Say hello, and name one cell you like.</p>";
    const result = await pull();
    expect(result).toMatchObject({ updated: 4, created: 0, deleted: 0, failed: [] });
    expect(await engine.docs.find<"course">(url("course", 4201))).toMatchObject({ name: "BIO 101: Cells and Systems" });
    expect(await engine.docs.find<"user">(url("user", 7102))).toMatchObject({ name: "Tomás Lindqvist-Berg" });
    expect(await engine.docs.find<"module">(url("module", 21001))).toMatchObject({ name: "Week 1 — Cells and membranes" });
    expect(await engine.docs.find<"discussion_topic">(url("discussion_topic", 41001))).toMatchObject({ message: "<p>Say hello, and name one cell you like.</p>" });
  });

  it("keeps announcements older than the 14 days /announcements shows by default", async () => {
    const { call, engine, pull, tick, url } = await setup();
    tick(40 * 86_400_000);
    expect(await (await call("/announcements?context_codes[]=course_4201")).json()).toEqual([]);
    expect((await pull()).failed).toEqual([]);
    expect(await engine.docs.find<"discussion_topic">(url("discussion_topic", 41003))).toMatchObject({ announcement: true });
  });

  it("reads enrollment removals from their states, where other objects just vanish", async () => {
    const { canvas, engine, pull, url } = await setup();
    await pull();
    canvas.state.enrollments.find((e) => e.id === 51004)!.enrollment_state = "completed";
    canvas.state.enrollments.find((e) => e.id === 51002)!.enrollment_state = "inactive";
    const result = await pull();
    expect(result).toMatchObject({ deleted: 0, failed: [] });
    expect(await engine.docs.find<"enrollment">(url("enrollment", 51004))).toMatchObject({ state: "completed" });
    expect(await engine.docs.find<"enrollment">(url("enrollment", 51002))).toMatchObject({ state: "inactive" });
  });

  // Objects that vanish from a listing (no tombstone): canvas-pull.test.ts "takes an object gone from
  // a full listing as deleted". Entry tombstones: §5.4 below. `submitted_since`/`graded_since` are not
  // used (every pull is a full scan); the fake's filters are in fake-canvas.test.ts ("lists submissions").
});

describe("§5.4 eventually consistent discussion views", () => {
  it("reads a thread from the entry lists while /view answers 503, replies of replies and those past the 10 recent_replies included", async () => {
    const { canvas, engine, pull, url } = await setup();
    const entries = canvas.state.entries.get(41001)!;
    const reply = (id: number, parent: number, minute: number): CanvasEntry => {
      const at = `2025-01-20T10:${String(minute).padStart(2, "0")}:00Z`;
      return { id, user_id: 7102, parent_id: parent, created_at: at, updated_at: at, message: `<p>Reply ${id}</p>` };
    };
    for (let i = 0; i < 12; i++) entries.push(reply(62000 + i, 61001, i));
    entries.push(reply(62100, 62003, 30));
    canvas.setViewMode("building");
    const result = await pull();
    expect(result.failed).toEqual([]);
    for (let i = 0; i < 12; i++) expect(await engine.docs.find<"post">(url("entry", 62000 + i))).toMatchObject({ parent: url("entry", 61001) });
    expect(await engine.docs.find<"post">(url("entry", 62100))).toMatchObject({ parent: url("entry", 62003), message: "<p>Reply 62100</p>" });
    expect(await engine.docs.find<"post">(url("entry", 61003))).toMatchObject({ parent: url("entry", 61001) });
    expect(canvas.requests.some((r) => r.path.startsWith("/courses/4201/discussion_topics/41001/view") && r.status === 503)).toBe(true);
  });

  it("takes the entries a stale /view has not caught up with from new_entries", async () => {
    const { canvas, call, engine, form, pull, url } = await setup();
    await pull();
    canvas.setViewMode("stale");
    const created = (await (await call("/courses/4201/discussion_topics/41001/entries/61002/replies", form("POST", { message: "<p>Late to the thread.</p>" }, canvas.tokenFor(7101)))).json()) as Obj;
    const result = await pull();
    expect(result).toMatchObject({ created: 1, failed: [] });
    expect(await engine.docs.find<"post">(url("entry", String(created.id)))).toMatchObject({ parent: url("entry", 61002), message: "<p>Late to the thread.</p>" });
  });

  it("keeps an entry deleted in Canvas (204, a stub in /view) as a placeholder with no message", async () => {
    const { call, engine, pull, url } = await setup();
    await pull();
    expect((await call("/courses/4201/discussion_topics/41001/entries/61002", { method: "DELETE" })).status).toBe(204);
    const result = await pull();
    expect(result).toMatchObject({ updated: 1, failed: [] });
    expect(await engine.docs.find<"post">(url("entry", 61002))).toMatchObject({ deleted: true, message: "" });
  });

  // Discourse's first-20-posts view is in contract-quirks-discourse.test.ts.
});

describe("§5.5 HTML drift (Canvas)", () => {
  it("takes in what Canvas made of HTML it was sent (absolute links, data-api-*, verifiers, no scripts) without sending it back", async () => {
    const { canvas, engine, pull, push, url } = await setup();
    await pull();
    const lab = url("assignment", 31001);
    const sent = '<p>See <a href="/courses/4201/pages/welcome-to-bio-101">the page</a> and <a href="/courses/4201/files/9/download">the sheet</a>.</p><script>alert(1)</script>';
    await engine.docs.change<"assignment">(lab, (draft) => {
      draft.description = sent;
    });
    expect(await push()).toMatchObject({ sent: 1, failed: [] });
    const stored = String(canvas.state.assignments.find((a) => a.id === 31001)!.description);
    expect(stored).toContain(`href="${canvas.url}/courses/4201/pages/welcome-to-bio-101" data-api-endpoint=`);
    expect(stored).toContain("verifier=");
    expect(stored).not.toContain("<script>");
    // Whichever form the document keeps, Canvas's rewriting is no change to send back, and no conflict.
    expect(await pull()).toMatchObject({ failed: [] });
    expect(await push()).toMatchObject({ sent: 0, conflicts: 0, failed: [] });
    expect(await pull()).toMatchObject({ updated: 0, created: 0 });
    expect(canvas.requests.filter((r) => r.method === "PUT")).toHaveLength(1);
    expect(canvas.state.assignments.find((a) => a.id === 31001)!.description).toBe(stored);
  });

  // Discourse's raw against cooked is in contract-quirks-discourse.test.ts.
});

describe("§5.7 deletion semantics (Canvas)", () => {
  it("takes a topic or module deleted in Canvas (200 with an odd body, or the object) as gone", async () => {
    const { call, engine, pull, url } = await setup();
    await pull();
    const topic = await call("/courses/4201/discussion_topics/41002", { method: "DELETE" });
    expect(topic.status).toBe(200);
    expect(await topic.json()).not.toHaveProperty("title");
    const module = await call("/courses/4201/modules/21001", { method: "DELETE" });
    expect(module.status).toBe(200);
    expect(await module.json()).toMatchObject({ id: 21001, name: "Week 1 — Cells" });
    expect((await call("/courses/4201/modules/21001")).status).toBe(404);
    const result = await pull();
    expect(result).toMatchObject({ deleted: 2, failed: [] });
    expect(await engine.docs.find(url("discussion_topic", 41002))).toBeUndefined();
    expect(await engine.docs.find(url("module", 21001))).toBeUndefined();
  });

  // Entry delete (204 and a tombstone): §5.4. Assignment delete (200 with the object):
  // fake-canvas.test.ts "creates and updates assignments"; its pull: canvas-pull.test.ts.
});

describe("§5.8 create quirks (Canvas)", () => {
  // Push side: the connector creates assignments, pages, topics, announcements and entries
  // (src/connectors/canvas/canvas-create.ts). canvas-push.test.ts "creates each kind once, maps it
  // to its document, and a second sync sends nothing and changes nothing" makes one of each through
  // Canvas's 201 (assignments, entries) and 200 (pages, topics) answers. Canvas has no idempotency
  // key: canvas-exactly-once.test.ts "a create reaches Canvas exactly once" (a push killed between
  // sending and recording, a dropped connection, an answer lost to a server error, two pushes at
  // once, a pull first) checks that each create makes one object. The connector makes no modules:
  // the test below checks the fake.
  it("creates a module unpublished, refuses a nameless one with a bare message, and publishes its items with it", async () => {
    const { call, canvas, form } = await setup();
    const created = await call("/courses/4201/modules", form("POST", { "module[name]": "Week 2 — Membranes", "module[published]": "true", "module[position]": "1" }));
    expect(created.status).toBe(200);
    const module = (await created.json()) as Obj;
    expect(module).toMatchObject({ name: "Week 2 — Membranes", published: false, position: 1 });
    expect(canvas.state.modules.find((m) => m.id === 21001)!.position).toBe(2);
    const nameless = await call("/courses/4201/modules", form("POST", { "module[position]": "1" }));
    expect(nameless.status).toBe(400);
    expect(await nameless.json()).toEqual({ message: "missing module name" });
    canvas.state.moduleItems.push({ id: 23001, module_id: Number(module.id), position: 1, title: "Reading", type: "SubHeader", published: false });
    const published = await call(`/courses/4201/modules/${String(module.id)}`, form("PUT", { "module[published]": "true" }));
    expect(await published.json()).toMatchObject({ published: true, publish_warning: false });
    expect(canvas.state.moduleItems.find((i) => i.id === 23001)!.published).toBe(true);
  });

  // 201 on assignment create and update: fake-canvas.test.ts "creates and updates assignments", and
  // canvas-push.test.ts sends assignment updates through it. Pages created unpublished and the
  // upserting PUT /pages/:slug: fake-canvas.test.ts "renames a page's slug with its title, upserts".
});

describe("§5.9 unstable identifiers (Canvas)", () => {
  it("keeps a renamed page as the same document, and the module item naming it by slug still points at it", async () => {
    const { call, engine, form, pull, url, course } = await setup();
    await pull();
    const renamed = (await (await call("/courses/4201/pages/welcome-to-bio-101", form("PUT", { "wiki_page[title]": "Start here" }))).json()) as Obj;
    expect(renamed.url).toBe("start-here");
    const result = await pull();
    expect(result).toMatchObject({ created: 0, deleted: 0, failed: [] });
    const page = url("page", 81001);
    expect(await engine.docs.find<"page">(page)).toMatchObject({ slug: "start-here", title: "Start here" });
    expect(await engine.docs.list(course, "page")).toHaveLength(1);
    const module = await engine.docs.find<"module">(url("module", 21001));
    expect(module!.items.find((i) => i.type === "page")).toMatchObject({ target: page });
  });

  it("reads ids past 2^53 exactly, through the string-ids Accept header", async () => {
    const { canvas, engine, pull, url } = await setup();
    const big = 9_007_199_254_740_993n;
    const item: CanvasModuleItem = { id: big, module_id: 21001, position: 6, title: "Lab safety video", type: "ExternalUrl", external_url: "https://video.example.edu/safety", indent: 0, published: true };
    canvas.state.moduleItems.push(item);
    // Without the header the id is a bare JSON number, which a double cannot hold.
    const bare = (await (await fetch(`${canvas.url}/api/v1/courses/4201/modules/21001/items/${big}`, { headers: { Authorization: `Bearer ${canvas.token}` } })).json()) as Obj;
    expect(bare.id).toBe(9_007_199_254_740_992);
    await pull();
    const module = await engine.docs.find<"module">(url("module", 21001));
    expect(module!.items.map((i) => i.id)).toContain("9007199254740993");
  });

  it("names objects by the id in the body, not by an alias in the URL (self, sis_course_id:)", async () => {
    const { canvas, client, instance, url } = await setup();
    canvas.state.course.sis_course_id = "BIO101-S25";
    const me = await client.request<Obj>("GET", "/api/v1/users/self");
    expect(userFrom(instance, me.body).url).toBe(url("user", 7001));
    const course = await client.request<Obj>("GET", "/api/v1/courses/sis_course_id:BIO101-S25");
    expect(courseFrom(instance, course.body).url).toBe(url("course", 4201));
    // The connector itself is only ever given numeric ids: `ordo connect canvas --course` refuses others.
  });

  it("takes a negative grader id for Canvas's autograder, not a user", async () => {
    const { canvas, engine, pull, url } = await setup();
    Object.assign(canvas.state.submissions.find((s) => s.id === 88001)!, { grader_id: -1 });
    await pull();
    expect(await engine.docs.find<"grade">(url("grade", 88001))).toMatchObject({ grader: null, score: 9 });
  });

  // Submissions addressed by the student's user id: canvas-push.test.ts "sends a changed grade"
  // (the fake answers PUT .../submissions/:user_id only).
});

describe("§5.10 time zones and timestamp formats (Canvas)", () => {
  it("reads a time written with an offset as the instant it names", async () => {
    const { canvas, engine, pull, url } = await setup();
    canvas.state.topics.find((t) => t.id === 41002)!.posted_at = "2025-01-13T08:00:03-06:00";
    await pull();
    expect(await engine.docs.find<"discussion_topic">(url("discussion_topic", 41002))).toMatchObject({ postedAt: "2025-01-13T14:00:03.000Z" });
  });

  it("sends due dates as instants, so 23:59 in Chicago stays next day 05:59:59Z and nothing drifts back", async () => {
    const { canvas, engine, pull, push, url } = await setup();
    await pull();
    await engine.docs.change<"assignment">(url("assignment", 31001), (draft) => {
      draft.dueAt = "2025-01-28T05:59:59.000Z";
    });
    expect(await push()).toMatchObject({ sent: 1, failed: [] });
    expect(canvas.state.assignments.find((a) => a.id === 31001)!.due_at).toBe("2025-01-28T05:59:59Z");
    expect(await pull()).toMatchObject({ updated: 0 });
    expect(await push()).toMatchObject({ sent: 0 });
  });

  // Offset-less input read in the course's zone and day-granular announcement windows: fake-canvas.test.ts
  // ("reading local due dates in Chicago", "announcements in the default window only"); the connector
  // sends no offset-less times and reads no announcement windows. Discourse's millisecond `Z`:
  // contract-quirks-discourse.test.ts.
});

describe("also worth faking (Canvas)", () => {
  it("reports a validation error (errors is an object) as invalid and an auth error (errors is an array) as unauthenticated", async () => {
    const { canvas, client } = await setup();
    const invalid = await problemOf(client.request("POST", "/api/v1/courses/4201/assignments", { form: { "assignment[name]": "" } }));
    expect(invalid.problem).toEqual({ kind: "invalid", status: 400 });
    expect(JSON.parse(invalid.body!)).toEqual({ errors: { name: [{ attribute: "name", type: "blank", message: "blank" }] } });
    canvas.revokeToken(canvas.token);
    const refused = await problemOf(client.request("GET", "/api/v1/courses/4201"));
    expect(refused.problem).toEqual({ kind: "unauthenticated" });
    expect(JSON.parse(refused.body!)).toEqual({ errors: [{ message: "Invalid access token." }] });
  });

  it("reports a thread that requires an initial post (403, a bare JSON string) as not permitted, and pulls the rest", async () => {
    const { canvas, db, engine, instance, sleep, url } = await setup();
    canvas.state.topics.find((t) => t.id === 41002)!.require_initial_post = true;
    const student = canvasClient({ url: canvas.url, token: () => canvas.tokenFor(7102), sleep });
    const result = await pullCanvasCourse({ client: student, instance, store: engine.docs, db, courseId: "4201" });
    expect(result.incomplete).toContain("entries of topic 41002");
    expect(result.failed.find((f) => f.what === "entries of topic 41002")?.error).toContain("not permitted");
    const blocked = canvas.requests.filter((r) => r.path.startsWith("/courses/4201/discussion_topics/41002/"));
    expect(blocked.map((r) => r.status)).toEqual([403, 403]);
    // The topic itself, and the thread the student may read, come in.
    expect(await engine.docs.find(url("discussion_topic", 41002))).toBeDefined();
    expect(await engine.docs.find<"post">(url("entry", 61003))).toMatchObject({ parent: url("entry", 61001) });
  });

  it("reads module items from items_url when /modules?include[]=items leaves them out", async () => {
    const { canvas, engine, pull, url } = await setup();
    canvas.state.knobs.inlineItemsLimit = 2;
    expect((await pull()).failed).toEqual([]);
    const module = await engine.docs.find<"module">(url("module", 21001));
    expect(module!.items.map((i) => i.id)).toEqual(["22001", "22002", "22003", "22004", "22005"]);
  });

  it("keeps an assignment's own due date when Canvas shows the caller an override's", async () => {
    const { call, canvas, engine, pull, url } = await setup();
    canvas.state.overrides.push({ id: 1, assignment_id: 31001, student_ids: [7101], due_at: "2025-01-25T05:59:59Z" });
    // What Canvas shows: the student their own date, the teacher the most lenient one.
    const asStudent = (await (await call("/courses/4201/assignments/31001", { token: canvas.tokenFor(7101) })).json()) as Obj;
    const asTeacher = (await (await call("/courses/4201/assignments/31001")).json()) as Obj;
    expect([asStudent.due_at, asTeacher.due_at]).toEqual(["2025-01-25T05:59:59Z", "2025-01-25T05:59:59Z"]);
    await pull();
    expect(await engine.docs.find<"assignment">(url("assignment", 31001))).toMatchObject({ dueAt: "2025-01-21T05:59:59.000Z" });
  });
});
