import type { CreateInput } from "../src/crdt/doc-store.js";
import type { DocUrl } from "../src/crdt/ids.js";
import type { Kind } from "../src/crdt/schema/kinds.js";
import { createRandom } from "../src/util/random.js";

/**
 * The documents both sides of the benchmark create: whole classes (a course, its people,
 * assignments with submissions and grades, discussions, pages, modules) with texts of the
 * lengths an LMS really holds. Deterministic, so both sides get the same values in the same
 * order; references are indices into the corpus, resolved to each side's own URLs.
 */
export interface CorpusDoc {
  kind: Kind;
  /** Index of this document's course in the corpus (its own index for a course, null for users). */
  course: number | null;
  /** Field values, with references still as corpus indices in `refs`. */
  fields: Record<string, unknown>;
  /** Fields that reference another document: field name to corpus index (always an earlier one). */
  refs: Record<string, number>;
}

/** Resolves a document's references with `urlOf` into the input `DocStore.create` takes. */
export function inputOf(doc: CorpusDoc, urlOf: (index: number) => DocUrl): CreateInput<Kind> {
  const fields: Record<string, unknown> = { ...doc.fields };
  for (const [field, index] of Object.entries(doc.refs)) fields[field] = urlOf(index);
  if (doc.kind === "module") {
    fields.items = (fields.items as Array<Record<string, unknown>>).map((item) => ({ ...item, target: urlOf(item.target as number) }));
  }
  if (doc.kind === "grade") {
    fields.comments = (fields.comments as Array<Record<string, unknown>>).map((c) => ({ ...c, author: urlOf(c.author as number) }));
  }
  return { ...fields, course: doc.course === null || doc.kind === "course" ? undefined : urlOf(doc.course) } as CreateInput<Kind>;
}

/** A class of this shape is about 2,500 documents: a realistic section of a school term. */
const CLASS = { teachers: 2, students: 30, assignments: 40, topics: 8, postsPerTopic: 20, pages: 6 };

const WORDS = (
  "cell membrane protein enzyme energy light rate sample figure result data error trial " +
  "hypothesis control variable measure observe compare increase decrease temperature acid " +
  "solution water growth plant leaf root seed species habitat population change pattern " +
  "evidence model theory reaction surface volume mass graph table method conclusion source " +
  "question answer reason because however therefore although while before after during " +
  "the a our this that each every most some many few more less than with without under over"
).split(" ");

/**
 * Generates `count` documents (the last class is cut short to fit). Every reference points
 * to an earlier document, so creating them in order never refers forward.
 */
export function generateCorpus(count: number, seed = 7): CorpusDoc[] {
  const random = createRandom(seed);
  const int = (min: number, max: number) => min + Math.floor(random() * (max - min + 1));
  const prose = (minChars: number, maxChars: number): string => {
    const target = int(minChars, maxChars);
    const sentences: string[] = [];
    let length = 0;
    while (length < target) {
      const words = Array.from({ length: int(6, 16) }, () => WORDS[Math.floor(random() * WORDS.length)]!);
      const sentence = `${words.join(" ")}.`;
      sentences.push(sentence.charAt(0).toUpperCase() + sentence.slice(1));
      length += sentence.length + 1;
    }
    return sentences.join(" ").slice(0, target);
  };
  const iso = (ms: number) => new Date(ms).toISOString();
  const docs: CorpusDoc[] = [];
  const add = (doc: CorpusDoc): number => {
    docs.push(doc);
    return docs.length - 1;
  };

  for (let section = 0; docs.length < count; section++) {
    const termStart = Date.UTC(2026, 7, 24);
    const course = docs.length;
    add({ kind: "course", course, refs: {}, fields: { name: `Biology ${101 + section}`, courseCode: `BIO-${101 + section}-${section % 7}`, term: "Fall 2026", timeZone: "America/Chicago", startAt: iso(termStart), endAt: iso(termStart + 116 * 86_400_000) } });
    const person = (role: "teacher" | "student", i: number): number => {
      const user = add({ kind: "user", course: null, refs: {}, fields: { name: `Student ${section}-${role}-${i} Example`, sortableName: `Example, Student ${section}-${role}-${i}`, email: `s${section}.${role}.${i}@school.example`, loginId: `${role[0]}${section}-${i}` } });
      add({ kind: "enrollment", course, refs: { user }, fields: { role, state: "active" } });
      return user;
    };
    const teachers = Array.from({ length: CLASS.teachers }, (_, i) => person("teacher", i));
    const students = Array.from({ length: CLASS.students }, (_, i) => person("student", i));
    const assignments: number[] = [];
    for (let a = 0; a < CLASS.assignments; a++) {
      const due = termStart + (a * 3 + 10) * 86_400_000 + 4 * 3_600_000;
      assignments.push(add({ kind: "assignment", course, refs: {}, fields: { title: `Lab ${a + 1}: ${prose(12, 30)}`, description: prose(400, 900), dueAt: iso(due), unlockAt: iso(due - 7 * 86_400_000), pointsPossible: 10, published: true, position: a + 1 } }));
    }
    const topics: number[] = [];
    for (let t = 0; t < CLASS.topics; t++) {
      topics.push(add({ kind: "discussion_topic", course, refs: { author: teachers[0]! }, fields: { title: `Week ${t + 1}: ${prose(15, 40)}`, message: prose(200, 500), published: true, postedAt: iso(termStart + t * 7 * 86_400_000), position: t + 1 } }));
    }
    const pages: number[] = [];
    for (let p = 0; p < CLASS.pages; p++) {
      pages.push(add({ kind: "page", course, refs: {}, fields: { slug: `page-${p}`, title: prose(10, 30), body: prose(800, 2000), published: true, frontPage: p === 0 } }));
    }
    for (let w = 0; w < CLASS.assignments / 2; w++) {
      const items = [
        ...assignments.slice(w * 2, w * 2 + 2).map((target, i) => ({ id: `w${w}-a${i}`, type: "assignment", title: `Lab ${w * 2 + i + 1}`, target, url: null, indent: 0 })),
        ...(w < pages.length ? [{ id: `w${w}-p`, type: "page", title: "Reading", target: pages[w]!, url: null, indent: 1 }] : []),
      ];
      add({ kind: "module", course, refs: {}, fields: { name: `Week ${w + 1}`, position: w + 1, published: true, items } });
    }
    for (const [a, assignment] of assignments.entries()) {
      for (const student of students) {
        const submitted = random() < 0.85;
        const submittedAt = termStart + (a * 3 + 9) * 86_400_000 + int(0, 40) * 3_600_000;
        const submission = add({ kind: "submission", course, refs: { assignment, student }, fields: { body: submitted ? prose(300, 1200) : "", attempt: submitted ? 1 : 0, submittedAt: submitted ? iso(submittedAt) : null, state: submitted ? "graded" : "unsubmitted" } });
        if (!submitted) continue;
        const score = 4 + Math.round(random() * 12) / 2;
        const gradedAt = iso(submittedAt + 3 * 86_400_000);
        const comments = score < 8 ? [{ id: `c${submission}`, author: teachers[a % teachers.length]!, body: prose(60, 240), createdAt: gradedAt }] : [];
        add({ kind: "grade", course, refs: { submission, assignment, student, grader: teachers[a % teachers.length]! }, fields: { score, grade: String(score), gradedAt, comments } });
      }
    }
    for (const topic of topics) {
      const posts: number[] = [];
      for (let p = 0; p < CLASS.postsPerTopic; p++) {
        const refs: Record<string, number> = { topic, author: students[int(0, students.length - 1)]! };
        // Every third post answers an earlier one: threads two or three levels deep.
        if (p % 3 === 2) refs.parent = posts[int(0, posts.length - 1)]!;
        posts.push(add({ kind: "post", course, refs, fields: { message: prose(150, 600) } }));
      }
    }
  }
  return docs.slice(0, count);
}
