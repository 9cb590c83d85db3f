import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { assignmentFrom, canvasInstance, courseFrom, enrollmentFrom, entryFrom, instant, moduleFrom, pageFrom, submissionFrom, topicFrom, urlOf, userFrom, type Imported } from "../../src/connectors/canvas/canvas-mapping.js";
import type { Kind } from "../../src/crdt/schema/kinds.js";
import { openTempStore } from "../../src/testing/temp-store.js";

const FIXTURES = join(import.meta.dirname, "../fixtures/lms/canvas");
const body = <T = Record<string, unknown>>(name: string): T => (JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), "utf8")) as { body: T }).body;
const instance = canvasInstance("https://canvas.example.edu");

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

describe("Canvas payloads as documents", () => {
  it("maps the fixture course into documents a store accepts, references computed from ids", async () => {
    const course = courseFrom(instance, body("course_4201"));
    const c = course.url;
    const pages = body<Array<Record<string, unknown>>>("pages").map((p) => pageFrom(instance, c, p));
    const pageIds = new Map(body<Array<Record<string, unknown>>>("pages").map((p) => [String(p.url), String(p.page_id)]));
    const all: Array<Imported<Kind>> = [
      course,
      ...body<Array<Record<string, unknown>>>("course_users").map((u) => userFrom(instance, u)),
      ...body<Array<Record<string, unknown>>>("enrollments").map((e) => enrollmentFrom(instance, c, e)),
      ...body<Array<Record<string, unknown>>>("assignments").map((a) => assignmentFrom(instance, c, a)),
      ...body<Array<Record<string, unknown>>>("submissions_assignment_31001").flatMap((s) => {
        const { submission, grade } = submissionFrom(instance, c, s);
        return grade ? [submission, grade] : [submission];
      }),
      ...body<Array<Record<string, unknown>>>("discussion_topics").map((t) => topicFrom(instance, c, t)),
      ...body<Array<Record<string, unknown>>>("discussion_topic_41001_entries").map((e) => entryFrom(instance, c, "41001", e)),
      ...pages,
      ...body<Array<Record<string, unknown>>>("modules").map((m) => moduleFrom(instance, c, m, (m.items as Array<Record<string, unknown>> | undefined) ?? [], pageIds)),
    ];
    const { store, close } = openTempStore();
    cleanups.push(close);
    for (const doc of all) {
      const created = await store.create(doc.kind, doc.fields as never, { identity: doc.identity });
      expect(created.url).toBe(doc.url);
    }
    expect(await store.records({ status: "invalid" })).toEqual([]);

    const lab = all.find((d) => d.kind === "assignment")!.fields as Record<string, unknown>;
    expect(lab).toMatchObject({ title: expect.any(String), dueAt: "2025-01-21T05:59:59.000Z", pointsPossible: 10, external: { canvas: "31001" } });
    const enrollment = all.find((d) => d.kind === "enrollment")!.fields as Record<string, unknown>;
    expect(enrollment).toMatchObject({ role: "teacher", user: urlOf(instance, "user", 7001) });
    const graded = all.filter((d) => d.kind === "grade");
    expect(graded.length).toBeGreaterThan(0);
    const module = all.find((d) => d.kind === "module")!.fields as { items: Array<{ type: string; target: string | null }> };
    expect(module.items.find((i) => i.type === "page")?.target).toBe(pages[0]!.url);
  });

  it("reads instants whatever their offset, and names one object the same on every laptop", () => {
    expect(instant("2023-08-14T09:02:11-05:00")).toBe("2023-08-14T14:02:11.000Z");
    expect(instant("not a date")).toBeNull();
    expect(userFrom(instance, { id: "7001", name: "A" }).url).toBe(urlOf(instance, "user", 7001));
    expect(urlOf(canvasInstance("https://other.example.edu"), "user", 7001)).not.toBe(urlOf(instance, "user", 7001));
  });
});
