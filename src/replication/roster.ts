import type { DocRecord } from "../crdt/doc-storage.js";

const NONE: ReadonlySet<string> = new Set();

/**
 * Which courses each user is enrolled in, from enrollment records (owner = the user,
 * course = the course). The access policy needs it for user documents, which belong to no
 * single course: a classmate may see a user, a stranger may not.
 */
export class Roster {
  readonly #enrollments = new Map<string, { user: string; course: string }>();
  /** Per user, per course: how many live enrollments say so (a user may be enrolled twice). */
  readonly #courses = new Map<string, Map<string, number>>();

  /** Takes an enrollment record as it is now (a deleted one removes the membership). */
  note(record: DocRecord): void {
    const before = this.#enrollments.get(record.id);
    if (before) this.#forget(record.id, before);
    if (record.deleted || record.status !== "ok" || !record.owner || !record.course) return;
    const membership = { user: record.owner, course: record.course };
    this.#enrollments.set(record.id, membership);
    const courses = this.#courses.get(membership.user) ?? new Map<string, number>();
    courses.set(membership.course, (courses.get(membership.course) ?? 0) + 1);
    this.#courses.set(membership.user, courses);
  }

  coursesOf(user: string): ReadonlySet<string> {
    const courses = this.#courses.get(user);
    return courses ? new Set(courses.keys()) : NONE;
  }

  #forget(id: string, membership: { user: string; course: string }): void {
    this.#enrollments.delete(id);
    const courses = this.#courses.get(membership.user);
    const left = (courses?.get(membership.course) ?? 1) - 1;
    if (left > 0) courses?.set(membership.course, left);
    else courses?.delete(membership.course);
  }
}
