import { describe, expect, it } from "vitest";
import { canRead, canWrite, type DocPlacement } from "../../src/replication/access-policy.js";
import { principal } from "../../src/testing/principals.js";

const COURSE = "automerge:course";
const OTHER = "automerge:other-course";
const A = "automerge:student-a";
const B = "automerge:student-b";
const enrolled = new Map<string, Set<string>>([
  [A, new Set([COURSE])],
  [B, new Set([COURSE])],
  ["automerge:stranger", new Set([OTHER])],
]);
const coursesOf = (user: string) => enrolled.get(user) ?? new Set<string>();

const doc = (kind: string, audience: string, owner: string | null = null, course: string | null = COURSE, status: "ok" | "invalid" = "ok"): DocPlacement => ({ kind, course, audience, owner, status });

const teacher = principal("automerge:teacher", "teacher", [COURSE]);
const studentA = principal(A, "student", [COURSE]);
const observer = principal("automerge:observer", "observer", [COURSE]);
const relay = principal("relay", "node", ["*"]);

describe("the access policy", () => {
  it("lets staff and nodes read and write everything in their courses, and nothing outside them", () => {
    const unpublished = doc("assignment", "staff");
    for (const who of [teacher, relay]) {
      expect(canRead(who, unpublished, coursesOf)).toBe(true);
      expect(canWrite(who, unpublished, coursesOf)).toBe(true);
    }
    expect(canRead(teacher, doc("assignment", "course", null, OTHER), coursesOf)).toBe(false);
  });

  it("lets a student read the course and their own work, and write only their own submissions and posts", () => {
    expect(canRead(studentA, doc("assignment", "course"), coursesOf)).toBe(true);
    expect(canRead(studentA, doc("assignment", "staff"), coursesOf)).toBe(false);
    expect(canRead(studentA, doc("submission", `student:${A}`, A), coursesOf)).toBe(true);
    expect(canRead(studentA, doc("submission", `student:${B}`, B), coursesOf)).toBe(false);
    expect(canWrite(studentA, doc("submission", `student:${A}`, A), coursesOf)).toBe(true);
    expect(canWrite(studentA, doc("post", "course", A), coursesOf)).toBe(true);
    expect(canWrite(studentA, doc("post", "course", B), coursesOf)).toBe(false);
    expect(canWrite(studentA, doc("grade", `student:${A}`, A), coursesOf)).toBe(false);
  });

  it("keeps catalog partitions for staff to write, even the student's own", () => {
    expect(canRead(studentA, doc("catalog", `student:${A}`), coursesOf)).toBe(true);
    expect(canWrite(studentA, doc("catalog", `student:${A}`), coursesOf)).toBe(false);
    expect(canWrite(teacher, doc("catalog", `student:${A}`), coursesOf)).toBe(true);
  });

  it("shows a user to classmates only, and lets staff bring in a user enrolled nowhere yet", () => {
    expect(canRead(studentA, doc("user", "course", B, null), coursesOf)).toBe(true);
    expect(canRead(studentA, doc("user", "course", "automerge:stranger", null), coursesOf)).toBe(false);
    expect(canWrite(studentA, doc("user", "course", A, null), coursesOf)).toBe(false);
    expect(canWrite(teacher, doc("user", "course", "automerge:newcomer", null), coursesOf)).toBe(true);
    expect(canWrite(teacher, doc("user", "course", "automerge:stranger", null), coursesOf)).toBe(false);
  });

  it("lets observers read what is published and write nothing", () => {
    expect(canRead(observer, doc("page", "course"), coursesOf)).toBe(true);
    expect(canWrite(observer, doc("page", "course"), coursesOf)).toBe(false);
    expect(canRead(observer, doc("grade", `student:${A}`, A), coursesOf)).toBe(false);
  });

  it("keeps quarantined documents for staff", () => {
    const invalid = doc("page", "staff", null, COURSE, "invalid");
    expect(canRead(studentA, invalid, coursesOf)).toBe(false);
    expect(canWrite(teacher, invalid, coursesOf)).toBe(true);
  });
});
