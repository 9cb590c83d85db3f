import type { DocUrl } from "../ids.js";
import type { Entity } from "./document.js";

/**
 * Who may read a document, as the course catalog partitions it:
 * - `course`: every member of the course (published content, the roster, discussions);
 * - `staff`: teachers and TAs only (content not yet published);
 * - `student:<user url>`: one student and the staff (their submissions and grades).
 *
 * Keeping this in the catalog's shape lets a student's view be the `course` partition plus
 * their own, so it never names another student's work.
 */
export type Audience = "course" | "staff" | `student:${DocUrl}`;

export interface Placement {
  audience: Audience;
  /** The user whose document it is: the student of a submission or grade, the author of a post. */
  owner: DocUrl | null;
}

export function studentAudience(student: DocUrl): Audience {
  return `student:${student}`;
}

export function placementOf(entity: Entity): Placement {
  switch (entity.kind) {
    case "submission":
    case "grade": {
      const student = (entity as Entity<"submission" | "grade">).student;
      return { audience: student ? studentAudience(student) : "staff", owner: student };
    }
    case "post":
      return { audience: "course", owner: (entity as Entity<"post">).author };
    case "enrollment":
      return { audience: "course", owner: (entity as Entity<"enrollment">).user };
    case "user":
      return { audience: "course", owner: entity.url };
    case "module":
    case "assignment":
    case "discussion_topic":
    case "page":
      return { audience: (entity as Entity<"page">).published ? "course" : "staff", owner: null };
    case "course":
      return { audience: "course", owner: null };
  }
}
