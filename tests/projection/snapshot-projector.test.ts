import { describe, expect, it } from "vitest";
import { newDocUrl } from "../../src/crdt/ids.js";
import type { DocSnapshot } from "../../src/crdt/snapshot.js";
import { ProjectionError } from "../../src/projection/projection-errors.js";
import { normalizeTime, projectSnapshot, stringifyCanonical } from "../../src/projection/snapshot-projector.js";
import { makeSnapshot, T0, tombstoned } from "./fixtures.js";

describe("projectSnapshot", () => {
  const courseUrl = newDocUrl();
  const c = { course: courseUrl };

  it("projects a course into its row and a search row, booleans as 0/1 and external ids as columns", () => {
    const course = makeSnapshot(
      "course",
      { name: "Biology", courseCode: "BIO", term: "Fall", startAt: "2024-09-01T08:00Z", endAt: null, timeZone: "Europe/Paris", published: false },
      { external: { canvas: "12", discourse: "d-7" } },
    );
    expect(projectSnapshot(course)).toEqual({
      courses: [
        {
          doc_url: course.url,
          canvas_id: "12",
          discourse_id: "d-7",
          created_at: T0,
          updated_at: T0,
          name: "Biology",
          course_code: "BIO",
          term: "Fall",
          start_at: "2024-09-01T08:00:00.000Z",
          end_at: null,
          time_zone: "Europe/Paris",
          published: 0,
        },
      ],
      search_rows: [{ doc_url: course.url, kind: "course", course_url: null, title: "Biology", body: "BIO" }],
    });
  });

  it("projects a user without a course column, and keeps email out of search", () => {
    const user = makeSnapshot("user", { name: "Ada", sortableName: "Lovelace, Ada", email: "ada@example.org", loginId: "ada", avatarUrl: "https://x/a.png" });
    const rows = projectSnapshot(user);
    expect(rows.users).toEqual([
      {
        doc_url: user.url,
        canvas_id: null,
        discourse_id: null,
        created_at: T0,
        updated_at: T0,
        name: "Ada",
        sortable_name: "Lovelace, Ada",
        email: "ada@example.org",
        login_id: "ada",
        avatar_url: "https://x/a.png",
      },
    ]);
    expect(rows.search_rows).toEqual([{ doc_url: user.url, kind: "user", course_url: null, title: "Ada", body: "Lovelace, Ada" }]);
  });

  it("projects an enrollment with its course, user and observee, and no search row", () => {
    const user = newDocUrl();
    const observee = newDocUrl();
    const enrollment = makeSnapshot("enrollment", { user, role: "observer", state: "invited", observee }, c);
    expect(projectSnapshot(enrollment)).toEqual({
      enrollments: [
        {
          doc_url: enrollment.url,
          course_url: courseUrl,
          canvas_id: null,
          discourse_id: null,
          created_at: T0,
          updated_at: T0,
          user_url: user,
          role: "observer",
          state: "invited",
          observee_url: observee,
        },
      ],
    });
  });

  it("projects a module into its row and one module_items row per item, numbered by list position", () => {
    const target = newDocUrl();
    const module = makeSnapshot(
      "module",
      {
        name: "Week 1",
        position: 2.5,
        items: [
          { id: "a", type: "subheader", title: "Start here", target: null, url: null, indent: 0 },
          { id: "b", type: "assignment", title: "Essay", target, url: null, indent: 1 },
          { id: "c", type: "external_url", title: "Video", target: null, url: "https://example.org/v", indent: 2 },
        ],
      },
      c,
    );
    const rows = projectSnapshot(module);
    expect(rows.modules).toEqual([
      expect.objectContaining({ doc_url: module.url, course_url: courseUrl, name: "Week 1", position: 2.5, published: 1 }),
    ]);
    expect(rows.module_items).toEqual([
      { module_url: module.url, position: 0, item_id: "a", type: "subheader", title: "Start here", target_url: null, url: null, indent: 0 },
      { module_url: module.url, position: 1, item_id: "b", type: "assignment", title: "Essay", target_url: target, url: null, indent: 1 },
      { module_url: module.url, position: 2, item_id: "c", type: "external_url", title: "Video", target_url: null, url: "https://example.org/v", indent: 2 },
    ]);
    expect(rows.search_rows).toEqual([
      { doc_url: module.url, kind: "module", course_url: courseUrl, title: "Week 1", body: "Start here\nEssay\nVideo" },
    ]);
  });

  it("projects an assignment with normalized times and a search row over title and description", () => {
    const assignment = makeSnapshot(
      "assignment",
      {
        title: "Essay",
        description: "On cells",
        dueAt: "2024-09-15T12:00:00+02:00",
        unlockAt: "2024-09-01T00:00:00Z",
        lockAt: null,
        pointsPossible: 12.5,
        published: true,
        position: 3,
        gradingType: "letter_grade",
        submissionTypes: ["online_upload", "online_url"],
      },
      c,
    );
    const rows = projectSnapshot(assignment);
    expect(rows.assignments).toEqual([
      {
        doc_url: assignment.url,
        course_url: courseUrl,
        canvas_id: null,
        discourse_id: null,
        created_at: T0,
        updated_at: T0,
        title: "Essay",
        description: "On cells",
        due_at: "2024-09-15T10:00:00.000Z",
        unlock_at: "2024-09-01T00:00:00.000Z",
        lock_at: null,
        points_possible: 12.5,
        published: 1,
        position: 3,
        grading_type: "letter_grade",
        submission_types: '["online_upload","online_url"]',
      },
    ]);
    expect(rows.search_rows).toEqual([{ doc_url: assignment.url, kind: "assignment", course_url: courseUrl, title: "Essay", body: "On cells" }]);
  });

  it("projects a submission, and keeps student work out of the course-wide search", () => {
    const assignment = newDocUrl();
    const student = newDocUrl();
    const submission = makeSnapshot(
      "submission",
      { assignment, student, body: "My essay", link: "https://example.org/essay", attempt: 2, submittedAt: "2024-09-14T10:00:00.000Z", state: "submitted" },
      c,
    );
    expect(projectSnapshot(submission)).toEqual({
      submissions: [
        {
          doc_url: submission.url,
          course_url: courseUrl,
          canvas_id: null,
          discourse_id: null,
          created_at: T0,
          updated_at: T0,
          assignment_url: assignment,
          student_url: student,
          body: "My essay",
          url: "https://example.org/essay",
          attempt: 2,
          submitted_at: "2024-09-14T10:00:00.000Z",
          state: "submitted",
        },
      ],
    });
  });

  it("projects a grade with its comments as JSON with sorted keys", () => {
    const [submission, assignment, student, grader] = [newDocUrl(), newDocUrl(), newDocUrl(), newDocUrl()];
    const grade = makeSnapshot(
      "grade",
      {
        submission,
        assignment,
        student,
        score: 8,
        grade: "B",
        gradedAt: "2024-09-16T10:00:00.000Z",
        grader,
        comments: [{ createdAt: "2024-09-16T10:00:00.000Z", body: "Good", id: "c1", author: grader }],
      },
      c,
    );
    const rows = projectSnapshot(grade);
    expect(rows.grades).toEqual([
      expect.objectContaining({
        submission_url: submission,
        assignment_url: assignment,
        student_url: student,
        score: 8,
        grade: "B",
        graded_at: "2024-09-16T10:00:00.000Z",
        grader_url: grader,
        comments: `[{"author":"${grader}","body":"Good","createdAt":"2024-09-16T10:00:00.000Z","id":"c1"}]`,
      }),
    ]);
    expect(rows.search_rows).toBeUndefined();
  });

  it("projects a discussion topic and a post; a removed post keeps its row but leaves search", () => {
    const author = newDocUrl();
    const topic = makeSnapshot(
      "discussion_topic",
      { title: "Intro", message: "Hello all", author, published: true, locked: true, announcement: true, postedAt: "2024-09-02T09:00:00.000Z", position: 1 },
      c,
    );
    expect(projectSnapshot(topic).discussion_topics).toEqual([
      expect.objectContaining({
        title: "Intro",
        message: "Hello all",
        author_url: author,
        published: 1,
        locked: 1,
        announcement: 1,
        posted_at: "2024-09-02T09:00:00.000Z",
        position: 1,
      }),
    ]);
    expect(projectSnapshot(topic).search_rows).toEqual([
      { doc_url: topic.url, kind: "discussion_topic", course_url: courseUrl, title: "Intro", body: "Hello all" },
    ]);

    const parent = newDocUrl();
    const post = makeSnapshot("post", { topic: topic.url, parent, author, message: "Hi", editedAt: null, deleted: false }, c);
    expect(projectSnapshot(post)).toEqual({
      posts: [
        {
          doc_url: post.url,
          course_url: courseUrl,
          canvas_id: null,
          discourse_id: null,
          created_at: T0,
          updated_at: T0,
          topic_url: topic.url,
          parent_url: parent,
          author_url: author,
          message: "Hi",
          edited_at: null,
          deleted: 0,
        },
      ],
      search_rows: [{ doc_url: post.url, kind: "post", course_url: courseUrl, title: "", body: "Hi" }],
    });
    const removed = makeSnapshot("post", { topic: topic.url, author, message: "Something rude", deleted: true }, c);
    expect(projectSnapshot(removed).posts).toEqual([expect.objectContaining({ deleted: 1 })]);
    expect(projectSnapshot(removed).search_rows).toBeUndefined();
  });

  it("projects a page", () => {
    const page = makeSnapshot("page", { slug: "syllabus", title: "Syllabus", body: "Chapters", published: false, frontPage: true }, c);
    expect(projectSnapshot(page)).toEqual({
      pages: [
        {
          doc_url: page.url,
          course_url: courseUrl,
          canvas_id: null,
          discourse_id: null,
          created_at: T0,
          updated_at: T0,
          slug: "syllabus",
          title: "Syllabus",
          body: "Chapters",
          published: 0,
          front_page: 1,
        },
      ],
      search_rows: [{ doc_url: page.url, kind: "page", course_url: courseUrl, title: "Syllabus", body: "Chapters" }],
    });
  });

  it("gives one conflicts row per conflicted field, fields sorted, values as canonical JSON", () => {
    const page = makeSnapshot("page", { title: "B" }, { ...c, conflicts: { title: ["A", "B"], body: [{ z: 1, a: 2 }, null] } });
    expect(projectSnapshot(page).conflicts).toEqual([
      { doc_url: page.url, field: "body", values: '[{"a":2,"z":1},null]' },
      { doc_url: page.url, field: "title", values: '["A","B"]' },
    ]);
  });

  it("gives a deleted document no rows at all", () => {
    const page = makeSnapshot("page", { title: "Gone" }, { ...c, conflicts: { title: ["a", "b"] } });
    expect(projectSnapshot(tombstoned(page))).toEqual({});
  });

  it("is deterministic: equal snapshots with keys in another order give identical rows", () => {
    const url = newDocUrl();
    const make = (comments: Array<Record<string, unknown>>, conflicts: Record<string, unknown[]>) =>
      makeSnapshot("grade", { comments: comments as never, score: 1 }, { url, heads: "h", conflicts });
    const a = make([{ id: "1", author: null, body: "x", createdAt: T0 }], { score: [{ b: 1, a: 2 }] });
    const b = make([{ createdAt: T0, body: "x", author: null, id: "1" }], { score: [{ a: 2, b: 1 }] });
    expect(JSON.stringify(projectSnapshot(a))).toBe(JSON.stringify(projectSnapshot(b)));
  });

  it("keys rows by the snapshot's URL", () => {
    const page = makeSnapshot("page", { title: "x" });
    const moved: DocSnapshot = { ...page, url: newDocUrl() };
    expect(projectSnapshot(moved).pages?.[0]?.doc_url).toBe(moved.url);
  });

  it("refuses a kind it does not know with a ProjectionError", () => {
    const odd = { ...makeSnapshot("page"), kind: "catalog" } as unknown as DocSnapshot;
    expect(() => projectSnapshot(odd)).toThrow(ProjectionError);
  });
});

describe("normalizeTime", () => {
  it("rewrites ISO instants to UTC with milliseconds so they sort as text", () => {
    expect(normalizeTime("2024-09-15T23:59Z")).toBe("2024-09-15T23:59:00.000Z");
    expect(normalizeTime("2024-09-15T12:00:00+02:00")).toBe("2024-09-15T10:00:00.000Z");
    expect(normalizeTime("2024-09-15T10:00:00.5Z")).toBe("2024-09-15T10:00:00.500Z");
  });

  it("keeps strings whose meaning would depend on the local time zone as written", () => {
    expect(normalizeTime("2024-09-15T10:00:00")).toBe("2024-09-15T10:00:00");
    expect(normalizeTime("September 15, 2024")).toBe("September 15, 2024");
    expect(normalizeTime(null)).toBeNull();
  });
});

describe("stringifyCanonical", () => {
  it("sorts keys at every depth and keeps array order", () => {
    expect(stringifyCanonical({ b: [{ d: 1, c: 2 }], a: null })).toBe('{"a":null,"b":[{"c":2,"d":1}]}');
  });
});
