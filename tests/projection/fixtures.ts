import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { newDocUrl, type DocUrl } from "../../src/crdt/ids.js";
import type { Entity, ExternalIds, Tombstone } from "../../src/crdt/schema/document.js";
import { KIND_FIELDS, type Fields, type Kind } from "../../src/crdt/schema/kinds.js";
import type { DocSnapshot } from "../../src/crdt/snapshot.js";
import { openProjectionDb, type OpenProjectionDbOptions, type ProjectionDb } from "../../src/projection/projection-db.js";
import type { ListedDoc, ProjectionSource } from "../../src/projection/projection-runner.js";

export const T0 = "2024-09-01T08:00:00.000Z";

export interface SnapshotOptions {
  url?: DocUrl;
  course?: DocUrl | null;
  heads?: string;
  createdAt?: string;
  updatedAt?: string;
  external?: ExternalIds;
  tombstone?: Tombstone | null;
  conflicts?: Record<string, unknown[]>;
}

let headCounter = 0;

/** A fresh, distinct heads string, as a new document state would have. */
export function nextHeads(): string {
  headCounter += 1;
  return `h${headCounter.toString(16).padStart(8, "0")}`;
}

/** A snapshot of a `kind` document: every field at its schema default unless given. */
export function makeSnapshot<K extends Kind>(kind: K, fields: Partial<Fields<K>> = {}, options: SnapshotOptions = {}): DocSnapshot<K> {
  const url = options.url ?? newDocUrl();
  const defaults: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(KIND_FIELDS[kind])) defaults[key] = structuredClone(spec.fallback);
  // Fields last, as readEntity writes them: a submission's `url` field (its link) replaces
  // the entity's document URL there too.
  const entity = {
    url,
    kind,
    schemaVersion: 1,
    course: options.course ?? null,
    createdAt: options.createdAt ?? T0,
    updatedAt: options.updatedAt ?? options.createdAt ?? T0,
    external: options.external ?? {},
    tombstone: options.tombstone ?? null,
    ...defaults,
    ...fields,
  } as Entity<K>;
  return { url, kind, heads: options.heads ?? nextHeads(), entity, conflicts: options.conflicts ?? {} };
}

/** The same document at a later state: fields changed, new heads. */
export function evolve<K extends Kind>(
  snapshot: DocSnapshot<K>,
  fields: Partial<Fields<K>>,
  envelope: { tombstone?: Tombstone | null; updatedAt?: string } = {},
): DocSnapshot<K> {
  return {
    ...snapshot,
    heads: nextHeads(),
    entity: { ...snapshot.entity, ...fields, ...envelope } as Entity<K>,
  };
}

/** The same document, deleted. */
export function tombstoned<K extends Kind>(snapshot: DocSnapshot<K>): DocSnapshot<K> {
  return evolve(snapshot, {}, { tombstone: { at: "2024-10-01T00:00:00.000Z", by: null } });
}

/** An in-memory document store, as `catchUp` and `rebuild` see one. */
export class MemorySource implements ProjectionSource {
  readonly docs = new Map<DocUrl, { listed: ListedDoc; snapshot: DocSnapshot | undefined }>();
  snapshotCalls = 0;
  /** Throws from `snapshot()` after this many calls, to simulate a crash mid-way. */
  failAfter = Infinity;

  constructor(snapshots: Iterable<DocSnapshot> = []) {
    for (const snapshot of snapshots) this.put(snapshot);
  }

  put(snapshot: DocSnapshot): void {
    this.docs.set(snapshot.url, {
      listed: {
        url: snapshot.url,
        kind: snapshot.kind,
        heads: snapshot.heads,
        status: "ok",
        deleted: snapshot.entity.tombstone !== null,
      },
      snapshot,
    });
  }

  putInvalid(url: DocUrl, kind: string, heads = nextHeads()): void {
    this.docs.set(url, { listed: { url, kind, heads, status: "invalid", deleted: false }, snapshot: undefined });
  }

  putCatalog(url: DocUrl = newDocUrl()): DocUrl {
    this.docs.set(url, { listed: { url, kind: "catalog", heads: nextHeads(), status: "ok", deleted: false }, snapshot: undefined });
    return url;
  }

  remove(url: DocUrl): void {
    this.docs.delete(url);
  }

  async list(): Promise<ListedDoc[]> {
    return [...this.docs.values()].map((doc) => ({ ...doc.listed }));
  }

  async snapshot(url: DocUrl): Promise<DocSnapshot | undefined> {
    this.snapshotCalls += 1;
    if (this.snapshotCalls > this.failAfter) throw new Error("simulated crash");
    return this.docs.get(url)?.snapshot;
  }
}

/** A projection database in a fresh temp dir; `cleanup` closes it and removes the dir. */
export async function openTempProjection(
  options: Partial<OpenProjectionDbOptions> = {},
): Promise<ProjectionDb & { dir: string; path: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "ordo-projection-"));
  const path = join(dir, "projection.sqlite");
  const projection = await openProjectionDb({ path, ...options }).catch(async (error: unknown) => {
    await rm(dir, { recursive: true, force: true });
    throw error;
  });
  return {
    ...projection,
    dir,
    path,
    async cleanup() {
      await projection.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A small course with one document of every kind, all fields set to something non-default. */
export function makeCourseWorld(): {
  course: DocSnapshot<"course">;
  teacher: DocSnapshot<"user">;
  student: DocSnapshot<"user">;
  all: DocSnapshot[];
  assignment: DocSnapshot<"assignment">;
  module: DocSnapshot<"module">;
  topic: DocSnapshot<"discussion_topic">;
} {
  const course = makeSnapshot(
    "course",
    { name: "Biology 101", courseCode: "BIO-101", term: "Fall 2024", startAt: T0, endAt: "2024-12-20T00:00:00.000Z" },
    { external: { canvas: "4242" } },
  );
  const c = { course: course.url };
  const teacher = makeSnapshot("user", { name: "Ada Lovelace", sortableName: "Lovelace, Ada", email: "ada@example.org" });
  const student = makeSnapshot("user", { name: "Alan Turing", sortableName: "Turing, Alan", loginId: "aturing" });
  const teaching = makeSnapshot("enrollment", { user: teacher.url, role: "teacher" }, c);
  const studying = makeSnapshot("enrollment", { user: student.url, role: "student" }, c);
  const assignment = makeSnapshot(
    "assignment",
    { title: "Cell essay", description: "Write about mitochondria", dueAt: "2024-09-15T23:59:00.000Z", pointsPossible: 10, published: true },
    c,
  );
  const page = makeSnapshot("page", { slug: "syllabus", title: "Syllabus", body: "Read chapters one to three", frontPage: true }, c);
  const topic = makeSnapshot("discussion_topic", { title: "Introductions", message: "Say hello", author: teacher.url }, c);
  const post = makeSnapshot("post", { topic: topic.url, author: student.url, message: "Hello from Alan" }, c);
  const module = makeSnapshot(
    "module",
    {
      name: "Week 1",
      position: 1,
      items: [
        { id: "i1", type: "subheader", title: "Read", target: null, url: null, indent: 0 },
        { id: "i2", type: "page", title: "Syllabus", target: page.url, url: null, indent: 1 },
        { id: "i3", type: "assignment", title: "Cell essay", target: assignment.url, url: null, indent: 1 },
      ],
    },
    c,
  );
  const submission = makeSnapshot(
    "submission",
    { assignment: assignment.url, student: student.url, body: "Mitochondria are the powerhouse", attempt: 1, submittedAt: "2024-09-14T10:00:00.000Z", state: "submitted" },
    c,
  );
  const grade = makeSnapshot(
    "grade",
    {
      submission: submission.url,
      assignment: assignment.url,
      student: student.url,
      score: 9.5,
      grade: "A",
      gradedAt: "2024-09-16T10:00:00.000Z",
      grader: teacher.url,
      comments: [{ id: "c1", author: teacher.url, body: "Well done", createdAt: "2024-09-16T10:00:00.000Z" }],
    },
    c,
  );
  return {
    course,
    teacher,
    student,
    assignment,
    module,
    topic,
    all: [course, teacher, student, teaching, studying, assignment, page, topic, post, module, submission, grade],
  };
}
