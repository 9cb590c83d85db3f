import { afterEach, describe, expect, it } from "vitest";
import { FakeCanvas, type FakeCanvasOptions } from "../../src/testing/fake-canvas/index.js";

/** Fixture "now": a week into term, so the announcements' default 14-day window holds announcement 41003. */
const NOW = Date.parse("2025-01-22T12:00:00Z");
let canvas: FakeCanvas | undefined;

afterEach(async () => {
  await canvas?.close();
  canvas = undefined;
});

async function setup(options: FakeCanvasOptions = {}) {
  const fake = await FakeCanvas.start({ clock: () => NOW, ...options });
  canvas = fake;
  const call = (path: string, init: RequestInit & { token?: string } = {}) => {
    const headers = new Headers(init.headers);
    if (!headers.has("Authorization") && init.token !== "") headers.set("Authorization", `Bearer ${init.token ?? fake.token}`);
    return fetch(path.startsWith("http") ? path : `${fake.url}/api/v1${path}`, { ...init, headers });
  };
  const json = async (path: string, init: RequestInit & { token?: string } = {}) => {
    const res = await call(path, init);
    return { res, body: (await res.json()) as unknown };
  };
  const form = (method: string, fields: Record<string, string>) => ({
    method,
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(fields).toString(),
  });
  /** Follows rel="next" only, as a connector must, and collects every item. */
  const walk = async (path: string) => {
    const items: { id: number }[] = [];
    let next: string | undefined = `${fake.url}/api/v1${path}`;
    let pages = 0;
    while (next) {
      const res = await call(next);
      expect(res.status).toBe(200);
      items.push(...((await res.json()) as { id: number }[]));
      pages++;
      next = /<([^>]+)>;\s*rel="next"/.exec(res.headers.get("link") ?? "")?.[1];
    }
    return { items, pages };
  };
  return { fake, call, json, form, walk };
}

type Obj = Record<string, unknown>;

describe("fake Canvas reads", () => {
  it("serves the fixture course, users, enrollments, modules and module items", async () => {
    const { json } = await setup();
    expect(((await json("/courses/4201")).body as Obj).course_code).toBe("BIO101");
    const users = (await json("/courses/4201/users?include[]=enrollments")).body as Obj[];
    expect(users.map((u) => u.id)).toEqual([7001, 7002, 7101, 7102]);
    expect(users[0]?.enrollments).toHaveLength(1);
    const students = (await json("/courses/4201/users?enrollment_type[]=student")).body as Obj[];
    expect(students.map((u) => u.id)).toEqual([7101, 7102]);
    expect(((await json("/courses/4201/enrollments?per_page=100")).body as Obj[]).length).toBe(4);
    const modules = (await json("/courses/4201/modules?include[]=items")).body as Obj[];
    expect((modules[0]?.items as Obj[]).length).toBe(5);
    const items = (await json("/courses/4201/modules/21001/items")).body as Obj[];
    expect(items.map((i) => i.type)).toEqual(["SubHeader", "Page", "Assignment", "Discussion", "ExternalUrl"]);
  });

  it("omits inline module items above the limit, leaving items_url that works", async () => {
    const { fake, json } = await setup();
    fake.state.knobs.inlineItemsLimit = 2;
    const [module] = (await json("/courses/4201/modules?include[]=items")).body as Obj[];
    expect(module).not.toHaveProperty("items");
    expect(((await json(String(module?.items_url))).body as Obj[]).length).toBe(5);
  });

  it("walks numbered and bookmark pages through rel=next to the same items", async () => {
    const { walk, call } = await setup({ scale: { students: 45, assignments: 3 } });
    const users = await walk("/courses/4201/users?per_page=10");
    expect(users.items).toHaveLength(49);
    expect(users.pages).toBe(5);
    const enrollments = await walk("/courses/4201/enrollments?per_page=7");
    expect(new Set(enrollments.items.map((e) => e.id)).size).toBe(49);
    const first = await call("/courses/4201/enrollments?per_page=7");
    const link = first.headers.get("link") ?? "";
    expect(link).toMatch(/page=bookmark:[A-Za-z0-9_-]+&per_page=7>; rel="next"/);
    expect(link).not.toContain('rel="last"');
    expect((await call("/courses/4201/enrollments?page=bookmark:nonsense")).status).toBe(404);
  });

  it("clamps per_page to 100, answers past the end with 200 [], and varies the Link header case", async () => {
    const { call, fake } = await setup({ scale: { students: 150 } });
    const big = await call("/courses/4201/users?per_page=500&access_token=x");
    expect(((await big.json()) as unknown[]).length).toBe(100);
    expect(big.headers.get("link")).toContain("per_page=100");
    expect(big.headers.get("link")).not.toContain("access_token");
    const past = await call("/courses/4201/users?per_page=100&page=9");
    expect(past.status).toBe(200);
    expect(await past.json()).toEqual([]);
    expect(past.headers.get("link")).toContain('rel="prev"');
    const raw = await new Promise<string[]>((resolve) => {
      void import("node:http").then(({ get }) =>
        get(`${fake.url}/api/v1/courses/4201/users`, { headers: { Authorization: `Bearer ${fake.token}` } }, (res) => {
          res.resume();
          resolve(res.rawHeaders.filter((h) => h.toLowerCase() === "link"));
        }),
      );
    });
    expect(raw).toHaveLength(1);
  });

  it("lists submissions with placeholders, and every student's with student_ids[]=all", async () => {
    const { json } = await setup();
    const for31002 = (await json("/courses/4201/assignments/31002/submissions")).body as Obj[];
    expect(for31002.map((s) => s.workflow_state)).toEqual(["unsubmitted", "unsubmitted"]);
    const all = (await json("/courses/4201/students/submissions?student_ids[]=all&per_page=100")).body as Obj[];
    expect(all.map((s) => s.id)).toEqual([88001, 88002, 88003, 88004]);
    const graded = (await json("/courses/4201/students/submissions?student_ids[]=all&graded_since=2025-01-01T00:00:00Z")).body as Obj[];
    expect(graded.map((s) => s.id)).toEqual([88001]);
  });

  it("lists entries newest first with recent replies, and announcements in the default window only", async () => {
    const { json, fake } = await setup();
    const entries = (await json("/courses/4201/discussion_topics/41001/entries")).body as Obj[];
    expect(entries.map((e) => e.id)).toEqual([61002, 61001]);
    expect((entries[1]?.recent_replies as Obj[]).map((r) => r.id)).toEqual([61003]);
    const topics = (await json("/courses/4201/discussion_topics")).body as Obj[];
    expect(topics.map((t) => t.id)).toEqual([41001, 41002]);
    const announcements = (await json("/announcements?context_codes[]=course_4201")).body as Obj[];
    expect(announcements.map((a) => [a.id, a.context_code])).toEqual([[41003, "course_4201"]]);
    expect((await json("/announcements")).res.status).toBe(400);
    await fake.close();
    const later = await setup({ clock: () => Date.parse("2025-03-01T00:00:00Z") });
    expect((await later.json("/announcements?context_codes[]=course_4201")).body).toEqual([]);
    const windowed = (await later.json("/announcements?context_codes[]=course_4201&start_date=2025-01-01&end_date=2025-02-01")).body as Obj[];
    expect(windowed).toHaveLength(1);
  });
});

describe("fake Canvas quirks", () => {
  it("separates a bad token (401 + WWW-Authenticate) from no permission (401 JSON without it)", async () => {
    const { json, fake } = await setup();
    const none = await json("/courses/4201", { token: "" });
    expect(none.res.status).toBe(401);
    expect(none.res.headers.get("www-authenticate")).toContain("Bearer");
    const bad = await json("/courses/4201", { token: "nope" });
    expect(bad.res.status).toBe(401);
    expect(bad.body).toEqual({ errors: [{ message: "Invalid access token." }] });
    const student = fake.tokenFor(7101);
    const denied = await json("/courses/4201/assignments", { token: student, method: "POST", body: JSON.stringify({ assignment: { name: "x" } }), headers: { "Content-Type": "application/json" } });
    expect(denied.res.status).toBe(401);
    expect(denied.res.headers.get("www-authenticate")).toBeNull();
    expect((denied.body as Obj).status).toBe("unauthorized");
  });

  it("throttles with a text/plain 403 when the bucket runs out or when injected, and reports cost", async () => {
    const { call, fake } = await setup({ throttle: { hwm: 3, requestCost: 1, outflowPerSecond: 0 } });
    const okRes = await call("/courses/4201");
    expect(okRes.headers.get("x-request-cost")).toMatch(/^1\.0+$/);
    expect(okRes.headers.get("x-rate-limit-remaining")).toBe("2");
    await call("/courses/4201");
    await call("/courses/4201");
    const throttled = await call("/courses/4201");
    expect(throttled.status).toBe(403);
    expect(throttled.headers.get("content-type")).toContain("text/plain");
    expect(throttled.headers.get("x-rate-limit-remaining")).toBe("0.0");
    expect(throttled.headers.get("retry-after")).toBeNull();
    expect(await throttled.text()).toBe("403 Forbidden (Rate Limit Exceeded)\n");
    expect(fake.requests.at(-1)).toEqual({ method: "GET", path: "/courses/4201", status: 403 });
  });

  it("injects 403 throttles, 429, 500, 503 and dropped connections into the next matching requests", async () => {
    const { call, fake } = await setup();
    const other = fake.tokenFor(7002);
    fake.faults.inject("GET /courses/4201/assignments", "throttle-403", 1);
    fake.faults.inject("/courses/4201/assignments", 503, 1);
    fake.faults.inject("*", 429, 1);
    expect((await call("/courses/4201/assignments", { token: other })).status).toBe(403);
    expect((await call("/courses/4201/assignments", { token: other })).status).toBe(503);
    expect((await call("/courses/4201/pages", { token: other })).status).toBe(429);
    fake.faults.inject("/courses/4201/pages", "drop-connection");
    await expect(call("/courses/4201/pages", { token: other })).rejects.toThrow();
    fake.faults.inject("/courses/4201/pages", 500);
    const failed = await call("/courses/4201/pages", { token: other });
    expect(failed.status).toBe(500);
    expect(((await failed.json()) as Obj).errors).toBeDefined();
    expect(fake.faults.remaining).toBe(0);
  });

  it("prints every id as a string with the string-ids Accept header", async () => {
    const { json } = await setup();
    const { body } = await json("/courses/4201/discussion_topics/41001/entries", { headers: { Accept: "application/json+canvas-string-ids" } });
    const [first] = body as Obj[];
    expect(first?.id).toBe("61002");
    expect(first?.user_id).toBe("7102");
    expect((first?.user as Obj).id).toBe("7102");
  });

  it("creates and updates assignments from form and JSON bodies with 201, reading local due dates in Chicago", async () => {
    const { json, form } = await setup();
    const created = await json("/courses/4201/assignments", form("POST", {
      "assignment[name]": "Quiz prep",
      "assignment[points_possible]": "5",
      "assignment[submission_types][]": "online_text_entry",
      "assignment[due_at]": "2025-01-20T23:59:59",
      "assignment[published]": "t",
      "assignment[description]": '<a href="/courses/4201/pages/x">x</a>',
    }));
    expect(created.res.status).toBe(201);
    const assignment = created.body as Obj;
    expect(assignment.due_at).toBe("2025-01-21T05:59:59Z");
    expect(assignment.submission_types).toEqual(["online_text_entry"]);
    expect(assignment.published).toBe(true);
    expect(assignment.description).toContain("data-api-endpoint");
    const updated = await json(`/courses/4201/assignments/${String(assignment.id)}`, {
      method: "PUT",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ assignment: { name: "Quiz prep v2", due_at: "2025-07-01T12:00:00-05:00" } }),
    });
    expect(updated.res.status).toBe(201);
    expect((updated.body as Obj).name).toBe("Quiz prep v2");
    expect((updated.body as Obj).due_at).toBe("2025-07-01T17:00:00Z");
    const subs = (await json(`/courses/4201/assignments/${String(assignment.id)}/submissions`)).body as Obj[];
    expect(subs).toHaveLength(2);
    expect((await json("/courses/4201/assignments", form("POST", { "assignment[name]": "" }))).body).toEqual({ errors: { name: [{ attribute: "name", type: "blank", message: "blank" }] } });
    expect((await json(`/courses/4201/assignments/31003`, { method: "DELETE" })).res.status).toBe(200);
    expect((await json(`/courses/4201/assignments/31003`)).res.status).toBe(404);
  });

  it("grades a submission with posted_grade and updates its score", async () => {
    const { json, form } = await setup();
    const put = await json("/courses/4201/assignments/31001/submissions/7102", form("PUT", { "submission[posted_grade]": "8.5", "comment[text_comment]": "Nice." }));
    expect(put.res.status).toBe(200);
    expect(put.body).toMatchObject({ id: 88002, grade: "8.5", score: 8.5, workflow_state: "graded", grader_id: 7001, graded_at: "2025-01-22T12:00:00Z" });
    expect((put.body as Obj).submission_comments).toHaveLength(1);
    const percent = await json("/courses/4201/assignments/31001/submissions/7101", form("PUT", { "submission[posted_grade]": "85%" }));
    expect((percent.body as Obj).score).toBe(8.5);
    const listed = (await json("/courses/4201/assignments/31001/submissions/7102")).body as Obj;
    expect(listed.score).toBe(8.5);
  });

  it("renames a page's slug with its title, upserts unknown slugs, and finds pages by page_id", async () => {
    const { json, form } = await setup();
    const renamed = await json("/courses/4201/pages/welcome-to-bio-101", form("PUT", { "wiki_page[title]": "Welcome, Biologists!" }));
    expect((renamed.body as Obj).url).toBe("welcome-biologists");
    expect((await json("/courses/4201/pages/welcome-to-bio-101")).res.status).toBe(404);
    expect(((await json("/courses/4201/pages/page_id:81001")).body as Obj).title).toBe("Welcome, Biologists!");
    const upserted = await json("/courses/4201/pages/lab-rules", form("PUT", { "wiki_page[body]": "<p>Goggles.</p>" }));
    expect((upserted.body as Obj).url).toBe("lab-rules");
    expect((upserted.body as Obj).published).toBe(false);
    const list = (await json("/courses/4201/pages")).body as Obj[];
    expect(list.map((p) => p.url)).toEqual(["lab-rules", "welcome-biologists"]);
    expect(list[0]).not.toHaveProperty("body");
  });

  it("creates entries and replies with 201 and leaves a tombstone in /view when one is deleted", async () => {
    const { json, call, form } = await setup();
    const top = await json("/courses/4201/discussion_topics/41001/entries", form("POST", { message: "<p>Hello</p>" }));
    expect(top.res.status).toBe(201);
    const reply = await json("/courses/4201/discussion_topics/41001/entries/61001/replies", form("POST", { message: "<p>Same</p>" }));
    expect(reply.res.status).toBe(201);
    expect((reply.body as Obj).parent_id).toBe(61001);
    const deleted = await call("/courses/4201/discussion_topics/41001/entries/61002", { method: "DELETE" });
    expect(deleted.status).toBe(204);
    const entries = (await json("/courses/4201/discussion_topics/41001/entries")).body as Obj[];
    expect(entries.map((e) => e.id)).toEqual([(top.body as Obj).id, 61001]);
    const view = (await json("/courses/4201/discussion_topics/41001/view")).body as { view: Obj[] };
    const tombstone = view.view.find((n) => n.id === 61002);
    expect(tombstone).toMatchObject({ id: 61002, deleted: true });
    expect(tombstone).not.toHaveProperty("message");
    expect(tombstone).not.toHaveProperty("user_id");
  });

  it("answers /view with 503 while building, and puts newer entries only in new_entries when stale", async () => {
    const { json, call, fake, form } = await setup();
    fake.setViewMode("building");
    const building = await call("/courses/4201/discussion_topics/41001/view");
    expect(building.status).toBe(503);
    expect(await building.text()).toBe("");
    fake.setViewMode("stale");
    const created = (await json("/courses/4201/discussion_topics/41001/entries", form("POST", { message: "<p>Late</p>" }))).body as Obj;
    const stale = (await json("/courses/4201/discussion_topics/41001/view?include_new_entries=1")).body as { view: Obj[]; new_entries: Obj[] };
    expect(stale.view.map((n) => n.id)).toEqual([61001, 61002]);
    expect(stale.new_entries.map((n) => n.id)).toEqual([created.id]);
  });

  it("builds a large course deterministically from a seed", async () => {
    const a = await setup({ seed: 7, scale: { students: 50, assignments: 30, topics: 20, entriesPerTopic: 30 } });
    const subs = await a.walk("/courses/4201/students/submissions?student_ids[]=all&per_page=100");
    expect(subs.items.length).toBe(52 * 32);
    const scores = a.fake.state.submissions.map((s) => s.score);
    await a.fake.close();
    const b = await setup({ seed: 7, scale: { students: 50, assignments: 30, topics: 20, entriesPerTopic: 30 } });
    expect(b.fake.state.submissions.map((s) => s.score)).toEqual(scores);
  });
});
