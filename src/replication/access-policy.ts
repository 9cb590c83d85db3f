import { ALL_COURSES, type Principal } from "../net/principal.js";

/** What the policy needs to know of a document: its index record, never its content. */
export interface DocPlacement {
  kind: string;
  /** Null for users, who belong to every course they are enrolled in. */
  course: string | null;
  /** `course`, `staff` or `student:<user url>` (see the catalog's audiences). */
  audience: string;
  /** The student of a submission or grade, the author of a post, the user of a user document. */
  owner: string | null;
  status: "ok" | "invalid";
}

/** The courses a user is enrolled in, for deciding who may see a user document. */
export type CoursesOf = (user: string) => ReadonlySet<string>;

/** Kinds a student may write, when the document is theirs. */
const STUDENT_WRITES = new Set(["submission", "post"]);

function isStaff(principal: Principal): boolean {
  return principal.role === "teacher" || principal.role === "ta" || principal.role === "node";
}

function inCourse(principal: Principal, course: string): boolean {
  return principal.courses.includes(course) || (principal.role === "node" && principal.courses.includes(ALL_COURSES));
}

/** A user document is visible to the user and to members of a course the user is enrolled in. */
function sharesACourse(principal: Principal, user: string, coursesOf: CoursesOf): boolean {
  if (principal.role === "node" && principal.courses.includes(ALL_COURSES)) return true;
  for (const course of coursesOf(user)) if (principal.courses.includes(course)) return true;
  return false;
}

/**
 * Whether a principal may read a document (and so learn that it exists).
 * Staff read everything in their courses; students and observers read what is published
 * to the course; a student also reads their own partition (submissions, grades).
 * A quarantined document is staff-only: its placement cannot be trusted.
 */
export function canRead(principal: Principal, doc: DocPlacement, coursesOf: CoursesOf): boolean {
  if (doc.course === null) {
    if (doc.kind !== "user" || doc.owner === null) return false;
    return doc.owner === principal.user || sharesACourse(principal, doc.owner, coursesOf);
  }
  if (!inCourse(principal, doc.course)) return false;
  if (isStaff(principal)) return true;
  if (doc.status !== "ok") return false;
  if (doc.audience === "course") return true;
  return principal.role === "student" && doc.audience === `student:${principal.user}`;
}

/**
 * Whether a principal may write a document. Staff write everything in their courses (the
 * catalog partitions included: they list grades, which a student must not hide); a student
 * writes only their own submissions and posts; observers write nothing; nobody but staff
 * writes a grade.
 */
export function canWrite(principal: Principal, doc: DocPlacement, coursesOf: CoursesOf): boolean {
  // Staff bring new users in before their enrollments arrive: a user enrolled nowhere yet is theirs to write.
  if (doc.kind === "user" && doc.course === null && doc.owner !== null && isStaff(principal) && coursesOf(doc.owner).size === 0) return true;
  if (!canRead(principal, doc, coursesOf)) return false;
  if (isStaff(principal)) return true;
  if (principal.role !== "student" || doc.status !== "ok") return false;
  return STUDENT_WRITES.has(doc.kind) && doc.owner === principal.user;
}
