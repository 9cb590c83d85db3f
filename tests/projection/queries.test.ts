import { afterEach, describe, expect, it } from "vitest";
import { newDocUrl, type DocUrl } from "../../src/crdt/ids.js";
import type { DocSnapshot } from "../../src/crdt/snapshot.js";
import { createProjectionRunner } from "../../src/projection/projection-runner.js";
import { assignmentsDue, courseRoster, searchText, studentSubmissions, toFtsQuery, topicThread } from "../../src/projection/queries.js";
import { evolve, makeSnapshot, openTempProjection } from "./fixtures.js";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function setup(snapshots: DocSnapshot[]) {
  const projection = await openTempProjection();
  cleanups.push(() => projection.cleanup());
  await createProjectionRunner(projection.db).apply(snapshots);
  return projection.db;
}

describe("courseRoster", () => {
  it("lists a course's members teachers first, then by sortable name, users not yet synced last", async () => {
    const course = newDocUrl();
    const c = { course };
    const user = (name: string, sortableName: string) => makeSnapshot("user", { name, sortableName });
    const zed = user("Zed Ames", "Ames, Zed");
    const bea = user("bea cole", "cole, bea");
    const al = user("Al Brown", "Brown, Al");
    const tina = user("Tina Teach", "Teach, Tina");
    const olive = user("Olive Obs", "Obs, Olive");
    const enroll = (u: DocSnapshot<"user"> | null, role: "teacher" | "ta" | "student" | "observer") =>
      makeSnapshot("enrollment", { user: u?.url ?? newDocUrl(), role }, c);
    const ghost = enroll(null, "student");
    const elsewhere = makeSnapshot("enrollment", { user: al.url, role: "student" }, { course: newDocUrl() });
    const db = await setup([
      zed,
      bea,
      al,
      tina,
      olive,
      enroll(olive, "observer"),
      ghost,
      enroll(zed, "student"),
      enroll(bea, "student"),
      enroll(al, "ta"),
      enroll(tina, "teacher"),
      enroll(al, "student"),
      elsewhere,
    ]);
    const roster = await courseRoster(db, course);
    expect(roster.map((r) => [r.role, r.name])).toEqual([
      ["teacher", "Tina Teach"],
      ["ta", "Al Brown"],
      ["student", "Zed Ames"],
      ["student", "Al Brown"],
      ["student", "bea cole"],
      ["student", null],
      ["observer", "Olive Obs"],
    ]);
    expect(roster.find((r) => r.name === null)?.enrollment_url).toBe(ghost.url);
  });
});

describe("assignmentsDue", () => {
  it("lists a course's assignments due in [from, to) by due date, comparing instants written in any offset", async () => {
    const course = newDocUrl();
    const c = { course };
    const a = (title: string, dueAt: string | null, position = 0) => makeSnapshot("assignment", { title, dueAt, position }, c);
    const db = await setup([
      a("late", "2024-10-01T00:00:00.000Z"),
      a("second", "2024-09-20T12:00:00+02:00"), // 10:00Z
      a("first", "2024-09-20T09:00Z"),
      a("tie b", "2024-09-25T00:00:00.000Z", 2),
      a("tie a", "2024-09-25T00:00:00.000Z", 1),
      a("before", "2024-09-01T00:00:00.000Z"),
      a("undated", null),
      makeSnapshot("assignment", { title: "other course", dueAt: "2024-09-21T00:00:00.000Z" }, { course: newDocUrl() }),
    ]);
    const titles = async (range: Parameters<typeof assignmentsDue>[2]) => (await assignmentsDue(db, course, range)).map((r) => r.title);
    expect(await titles({ from: "2024-09-20T09:00:00Z", to: new Date("2024-10-01T00:00:00Z") })).toEqual(["first", "second", "tie a", "tie b"]);
    expect(await titles({ from: "2024-09-20T11:30:00+02:00" })).toEqual(["second", "tie a", "tie b", "late"]);
    expect(await titles({})).toEqual(["before", "first", "second", "tie a", "tie b", "late"]);
  });
});

describe("studentSubmissions", () => {
  it("lists one student's submissions with assignment title and their latest grade", async () => {
    const course = newDocUrl();
    const c = { course };
    const student = newDocUrl();
    const classmate = newDocUrl();
    const essay = makeSnapshot("assignment", { title: "Essay", dueAt: "2024-09-10T00:00:00.000Z", pointsPossible: 10 }, c);
    const quiz = makeSnapshot("assignment", { title: "Quiz", dueAt: "2024-09-05T00:00:00.000Z" }, c);
    const essaySub = makeSnapshot("submission", { assignment: essay.url, student, body: "mine", state: "graded", attempt: 1 }, c);
    const quizSub = makeSnapshot("submission", { assignment: quiz.url, student, state: "submitted" }, c);
    const orphanSub = makeSnapshot("submission", { assignment: newDocUrl(), student, state: "submitted" }, c);
    const theirs = makeSnapshot("submission", { assignment: essay.url, student: classmate, body: "theirs" }, c);
    const grade = (score: number, gradedAt: string) =>
      makeSnapshot("grade", { submission: essaySub.url, assignment: essay.url, student, score, gradedAt }, c);
    const db = await setup([essay, quiz, essaySub, quizSub, orphanSub, theirs, grade(6, "2024-09-11T00:00:00.000Z"), grade(8, "2024-09-12T00:00:00.000Z")]);

    const rows = await studentSubmissions(db, course, student);
    expect(rows.map((r) => [r.assignment_title, r.state, r.score])).toEqual([
      ["Quiz", "submitted", null],
      ["Essay", "graded", 8],
      [null, "submitted", null],
    ]);
    expect(rows[1]).toMatchObject({ submission_url: essaySub.url, points_possible: 10, body: "mine", graded_at: "2024-09-12T00:00:00.000Z" });
    expect(await studentSubmissions(db, newDocUrl(), student)).toEqual([]);
  });
});

describe("topicThread", () => {
  it("returns posts depth-first, siblings by creation time then URL, with their depth", async () => {
    const course = newDocUrl();
    const topic = newDocUrl();
    const at = (minute: number) => `2024-09-02T10:${String(minute).padStart(2, "0")}:00.000Z`;
    const post = (label: string, minute: number, parent: DocSnapshot<"post"> | null, extra: Partial<{ deleted: boolean }> = {}) =>
      makeSnapshot("post", { topic, parent: parent?.url ?? null, message: label, ...extra }, { course, createdAt: at(minute) });
    const a = post("a", 1, null);
    const b = post("b", 2, null);
    const a1 = post("a1", 5, a);
    const a2 = post("a2", 3, a);
    const a2x = post("a2x", 9, a2, { deleted: true });
    const b1 = post("b1", 4, b);
    // Written with an offset: normalized, it sorts by its instant (10:00Z, the earliest).
    const early = makeSnapshot("post", { topic, parent: null, message: "early" }, { course, createdAt: "2024-09-02T12:00:00+02:00" });
    // A reply whose parent has not synced: shown at the top level rather than lost.
    const orphan = post("orphan", 6, null);
    const orphanReply = { ...orphan, entity: { ...orphan.entity, parent: newDocUrl() } };
    const otherTopic = makeSnapshot("post", { topic: newDocUrl(), message: "elsewhere" }, { course });
    const db = await setup([a1, b1, a2x, orphanReply, b, a2, a, early, otherTopic]);

    const thread = await topicThread(db, topic);
    expect(thread.map((p) => [p.message, p.depth])).toEqual([
      ["early", 0],
      ["a", 0],
      ["a2", 1],
      ["a2x", 2],
      ["a1", 1],
      ["b", 0],
      ["b1", 1],
      ["orphan", 0],
    ]);
    expect(thread[3]).toMatchObject({ deleted: 1, doc_url: a2x.url });
  });

  it("orders siblings created at the same instant by URL", async () => {
    const topic = newDocUrl();
    const same = () => makeSnapshot("post", { topic, parent: null }, { createdAt: "2024-09-02T10:00:00.000Z" });
    const posts = [same(), same(), same()];
    const db = await setup(posts);
    expect((await topicThread(db, topic)).map((p) => p.doc_url)).toEqual(posts.map((p) => p.url).sort());
  });
});

describe("searchText", () => {
  async function searchSetup() {
    const course = newDocUrl();
    const c = { course };
    const titled = makeSnapshot("page", { title: "Photosynthesis", body: "Plants make sugar" }, c);
    const mentioned = makeSnapshot("assignment", { title: "Essay", description: "Write about photosynthesis and light" }, c);
    const many = Array.from({ length: 5 }, (_, i) => makeSnapshot("page", { slug: `p${i}`, title: `Notes ${i}`, body: "mitochondria everywhere" }, c));
    const elsewhere = makeSnapshot("page", { title: "Photosynthesis too", body: "" }, { course: newDocUrl() });
    const accented = makeSnapshot("discussion_topic", { title: "Résumé tips", message: "Café discussion" }, c);
    const user = makeSnapshot("user", { name: "Rosalind Franklin", sortableName: "Franklin, Rosalind" });
    const removedPost = makeSnapshot("post", { topic: accented.url, message: "secret words", deleted: true }, c);
    const work = makeSnapshot("submission", { assignment: mentioned.url, student: user.url, body: "my private photosynthesis answer" }, c);
    const db = await setup([titled, mentioned, ...many, elsewhere, accented, user, removedPost, work]);
    return { db, course, titled, mentioned, many, elsewhere, accented, user };
  }

  it("ranks a title match above a body match and returns a highlighted snippet", async () => {
    const { db, course, titled, mentioned } = await searchSetup();
    const hits = await searchText(db, "photosynthesis", { courseUrl: course });
    expect(hits.map((h) => h.doc_url)).toEqual([titled.url, mentioned.url]);
    expect(hits[0]!.rank).toBeLessThan(hits[1]!.rank);
    expect(hits[1]!.snippet).toContain("[photosynthesis]");
    expect(hits[1]).toMatchObject({ kind: "assignment", course_url: course, title: "Essay" });
  });

  it("orders by relevance, not by URL", async () => {
    // The most relevant document gets the largest URL, so URL order would be exactly wrong.
    const [best, middle, weakest] = [newDocUrl(), newDocUrl(), newDocUrl()].sort().reverse() as [DocUrl, DocUrl, DocUrl];
    const db = await setup([
      makeSnapshot("page", { title: "Osmosis", body: "osmosis osmosis" }, { url: best }),
      makeSnapshot("page", { title: "Membranes", body: "osmosis, diffusion" }, { url: middle }),
      makeSnapshot("page", { title: "Week plan", body: "lab on diffusion and pressure gradients; osmosis is mentioned once among many other words" }, { url: weakest }),
    ]);
    expect((await searchText(db, "osmosis")).map((h) => h.doc_url)).toEqual([best, middle, weakest]);
  });

  it("searches every course unless one is named, and needs every word to match", async () => {
    const { db, elsewhere } = await searchSetup();
    expect((await searchText(db, "photosynthesis")).map((h) => h.doc_url)).toContain(elsewhere.url);
    expect(await searchText(db, "photosynthesis light")).toHaveLength(1);
  });

  it("paginates with limit and offset over a stable order", async () => {
    const { db, course, many } = await searchSetup();
    const all = await searchText(db, "mitochondria", { courseUrl: course });
    expect(all.map((h) => h.doc_url).sort()).toEqual(many.map((m) => m.url).sort());
    const page1 = await searchText(db, "mitochondria", { courseUrl: course, limit: 2 });
    const page2 = await searchText(db, "mitochondria", { courseUrl: course, limit: 2, offset: 2 });
    const page3 = await searchText(db, "mitochondria", { courseUrl: course, limit: 2, offset: 4 });
    expect([...page1, ...page2, ...page3].map((h) => h.doc_url)).toEqual(all.map((h) => h.doc_url));
    expect(page3).toHaveLength(1);
  });

  it("finds user names and folds diacritics", async () => {
    const { db, user, accented } = await searchSetup();
    expect((await searchText(db, "franklin")).map((h) => h.doc_url)).toEqual([user.url]);
    expect((await searchText(db, "resume cafe")).map((h) => h.doc_url)).toEqual([accented.url]);
  });

  it("never finds removed posts or student submissions", async () => {
    const { db } = await searchSetup();
    expect(await searchText(db, "secret")).toEqual([]);
    expect(await searchText(db, "private answer")).toEqual([]);
  });

  it("takes FTS syntax in user input as plain text instead of failing", async () => {
    const { db, titled, mentioned } = await searchSetup();
    for (const input of ['"foo AND (', "*", "NEAR(", "photosynthesis OR", "-photosynthesis", "a:b", "'; DROP TABLE pages; --", '"', "", "   ", "(", "^x", "photo*"]) {
      await expect(searchText(db, input), input).resolves.toBeInstanceOf(Array);
    }
    // AND is a word to find, not an operator: only the text that says "and" matches.
    expect((await searchText(db, '"Photosynthesis" AND (')).map((h) => h.doc_url)).toEqual([mentioned.url]);
    expect((await searchText(db, "(photosynthesis)")).map((h) => h.doc_url)).toContain(titled.url);
  });

  it("follows documents as they change and disappear", async () => {
    const projection = await openTempProjection();
    cleanups.push(() => projection.cleanup());
    const runner = createProjectionRunner(projection.db);
    const page = makeSnapshot("page", { title: "Glycolysis" });
    await runner.apply([page]);
    expect(await searchText(projection.db, "glycolysis")).toHaveLength(1);
    await runner.apply([evolve(page, { title: "Krebs cycle" })]);
    expect(await searchText(projection.db, "glycolysis")).toHaveLength(0);
    expect(await searchText(projection.db, "krebs")).toHaveLength(1);
    await runner.apply([{ url: page.url, status: "removed" }]);
    expect(await searchText(projection.db, "krebs")).toHaveLength(0);
  });
});

describe("toFtsQuery", () => {
  it("quotes every term and doubles quotes inside it", () => {
    expect(toFtsQuery('say "hi" AND (x')).toBe('"say" """hi""" "AND" "(x"');
    expect(toFtsQuery("* ( -")).toBeNull();
  });
});
