import type { CreateInput, DocStore } from "../crdt/doc-store.js";
import { externalDocUrl, type DocUrl } from "../crdt/ids.js";
import type { Kind, ModuleItem } from "../crdt/schema/kinds.js";
import { createRandom } from "../util/random.js";

/** The size of the demo course; the defaults make a realistic class. */
export interface DemoOptions {
  teachers?: number;
  students?: number;
  assignments?: number;
  topics?: number;
  /** Posts per discussion topic. */
  postsPerTopic?: number;
  /** Seed for the names, texts and scores: the same seed gives the same course. */
  seed?: number;
}

export interface DemoSummary {
  course: DocUrl;
  documents: number;
  byKind: Partial<Record<Kind, number>>;
}

/** The system name under which demo entities get their identities, so every seeding yields the same URLs. */
export const DEMO_SYSTEM = "ordo-demo";

const FIRST = ["Ada", "Ben", "Chloe", "Dev", "Elif", "Farah", "Gus", "Hana", "Ivan", "Jade", "Kofi", "Lena", "Mateo", "Nia", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tariq", "Uma", "Vera", "Wen", "Xavi", "Yara", "Zane"];
const LAST = ["Okafor", "Novak", "Haddad", "Lindqvist", "Moreau", "Tanaka", "Silva", "Kowalski", "Nguyen", "Mensah", "Patel", "Rossi", "Garcia", "Schmidt", "Ivanova", "Kim"];
const TOPICS = ["Cells", "Photosynthesis", "Genetics", "Evolution", "Ecology", "Microbes", "Proteins", "Respiration", "Mitosis", "Enzymes"];
const OPENERS = ["I think", "In our lab we saw that", "My hypothesis is that", "The reading suggests", "I was surprised that", "Could it be that"];
const CLAIMS = ["the cell membrane controls what enters", "light intensity limits the rate", "dominant alleles mask recessive ones", "variation drives selection", "energy flows one way through a food web", "temperature changes enzyme activity"];

/** Documents created per commit: large enough to amortize the transaction, small enough to keep memory flat. */
const DEMO_BATCH = 200;

/**
 * Seeds a realistic course: teachers, students and their enrollments, modules, assignments
 * with submissions and grades, discussion topics with threaded posts, an announcement and pages.
 * Every entity has a demo identity, so seeding twice (or on two peers) gives the same documents.
 */
export async function seedDemoCourse(store: DocStore, options: DemoOptions = {}): Promise<DemoSummary> {
  const { teachers = 2, students = 30, assignments = 10, topics = 3, postsPerTopic = 8, seed = 1 } = options;
  const random = createRandom(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;
  const byKind: Partial<Record<Kind, number>> = {};
  const pending: Array<Promise<unknown>> = [];

  /** Queues a creation and returns its URL at once (demo URLs follow from their identities); commits every DEMO_BATCH. */
  const make = async <K extends Kind>(kind: K, key: string, input: CreateInput<K>): Promise<DocUrl> => {
    byKind[kind] = (byKind[kind] ?? 0) + 1;
    const identity = { system: DEMO_SYSTEM, id: `${seed}/${key}` };
    const created = store.create(kind, input, { identity });
    // Marked handled here; Promise.all below still reports the first failure.
    created.catch(() => undefined);
    pending.push(created);
    if (pending.length >= DEMO_BATCH) await Promise.all(pending.splice(0));
    return externalDocUrl(kind, identity);
  };

  const c = await make("course", "course", { name: "Biology 101", courseCode: "BIO-101", term: "Fall 2026", timeZone: "America/Chicago", startAt: "2026-08-24T05:00:00Z", endAt: "2026-12-18T06:00:00Z" });

  const people = async (role: "teacher" | "student", count: number) => {
    const urls: DocUrl[] = [];
    for (let i = 0; i < count; i++) {
      const first = FIRST[(i * 7 + (role === "teacher" ? 3 : 0)) % FIRST.length]!;
      const last = LAST[(i * 5 + Math.floor(i / FIRST.length)) % LAST.length]!;
      const suffix = i >= FIRST.length ? ` ${Math.floor(i / FIRST.length) + 1}` : "";
      const user = await make("user", `${role}/${i}`, { name: `${first} ${last}${suffix}`, sortableName: `${last}, ${first}${suffix}`, email: `${first}.${last}${i}@school.example`.toLowerCase(), loginId: `${role[0]}${i}` });
      await make("enrollment", `${role}/${i}/enrollment`, { course: c, user, role, state: "active" });
      urls.push(user);
    }
    return urls;
  };
  const teacherUrls = await people("teacher", teachers);
  const studentUrls = await people("student", students);

  const assignmentUrls: DocUrl[] = [];
  for (let a = 0; a < assignments; a++) {
    const topic = TOPICS[a % TOPICS.length]!;
    const due = new Date(Date.UTC(2026, 8, 4 + a * 7, 4, 59)).toISOString();
    const assignment = await make("assignment", `assignment/${a}`, {
      course: c,
      title: `Lab ${a + 1}: ${topic}`,
      description: `Observe ${topic.toLowerCase()} in the lab and write up what you saw, with one figure and a conclusion of at most 300 words.`,
      dueAt: due,
      unlockAt: new Date(Date.UTC(2026, 8, a * 7 - 3)).toISOString(),
      pointsPossible: 10,
      published: a < assignments - 1,
      position: a + 1,
    });
    assignmentUrls.push(assignment);
    for (const [s, student] of studentUrls.entries()) {
      const submitted = random() < 0.85;
      const key = `assignment/${a}/student/${s}`;
      const submission = await make("submission", key, {
        course: c,
        assignment,
        student,
        body: submitted ? `${pick(OPENERS)} ${pick(CLAIMS)}. ${pick(OPENERS)} ${pick(CLAIMS)}.` : "",
        attempt: submitted ? 1 : 0,
        submittedAt: submitted ? new Date(Date.parse(due) - Math.floor(random() * 72) * 3_600_000).toISOString() : null,
        state: submitted ? "graded" : "unsubmitted",
      });
      if (!submitted) continue;
      const score = 5 + Math.round(random() * 10) / 2;
      await make("grade", `${key}/grade`, {
        course: c,
        submission,
        assignment,
        student,
        score,
        grade: String(score),
        gradedAt: new Date(Date.parse(due) + 3 * 86_400_000).toISOString(),
        grader: teacherUrls[a % teacherUrls.length] ?? null,
        comments: score < 8 ? [{ id: `${key}/c1`, author: teacherUrls[0] ?? null, body: "Add a labelled figure next time.", createdAt: new Date(Date.parse(due) + 3 * 86_400_000).toISOString() }] : [],
      });
    }
  }

  const topicUrls: DocUrl[] = [];
  for (let t = 0; t < topics; t++) {
    const topic = await make("discussion_topic", `topic/${t}`, { course: c, title: `Week ${t + 1} discussion: ${TOPICS[t % TOPICS.length]}`, message: `What surprised you most about ${TOPICS[t % TOPICS.length]!.toLowerCase()} this week?`, author: teacherUrls[0] ?? null, published: true, postedAt: new Date(Date.UTC(2026, 7, 24 + t * 7, 14)).toISOString(), position: t + 1 });
    topicUrls.push(topic);
    const posts: DocUrl[] = [];
    for (let p = 0; p < postsPerTopic; p++) {
      // Every third post replies to an earlier one: threads two or three levels deep.
      const parent = p % 3 === 2 && posts.length > 0 ? posts[Math.floor(random() * posts.length)]! : null;
      const author = studentUrls.length > 0 ? pick(studentUrls) : (teacherUrls[0] ?? null);
      const post = await make("post", `topic/${t}/post/${p}`, { course: c, topic, parent, author, message: `${pick(OPENERS)} ${pick(CLAIMS)}.` });
      posts.push(post);
    }
  }
  await make("discussion_topic", "announcement/0", { course: c, title: "Welcome to Biology 101", message: "Lab coats and goggles are required from week 2.", author: teacherUrls[0] ?? null, published: true, announcement: true, postedAt: "2026-08-24T14:00:00Z" });

  const pages: Array<[string, string, string]> = [
    ["welcome", "Welcome", "Welcome to Biology 101. Start with the syllabus, then the lab safety rules."],
    ["syllabus", "Syllabus", "Weekly labs, three discussions, one final project. Late work loses one point a day."],
    ["lab-safety", "Lab safety", "Goggles on, hair tied back, no food in the lab. Report every spill."],
  ];
  const pageUrls: DocUrl[] = [];
  for (const [slug, title, body] of pages) {
    pageUrls.push(await make("page", `page/${slug}`, { course: c, slug, title, body, published: true, frontPage: slug === "welcome" }));
  }

  const weeks = Math.max(1, Math.ceil(assignments / 2));
  for (let w = 0; w < weeks; w++) {
    const items: ModuleItem[] = assignmentUrls.slice(w * 2, w * 2 + 2).map((target, i) => ({ id: `week-${w}-a${i}`, type: "assignment", title: `Lab ${w * 2 + i + 1}`, target, url: null, indent: 0 }));
    if (w === 0) items.unshift({ id: "week-0-welcome", type: "page" as const, title: "Welcome", target: pageUrls[0]!, url: null, indent: 0 });
    const topic = topicUrls[w];
    if (topic) items.push({ id: `week-${w}-discussion`, type: "discussion" as const, title: `Week ${w + 1} discussion`, target: topic, url: null, indent: 1 });
    await make("module", `module/${w}`, { course: c, name: `Week ${w + 1}`, position: w + 1, published: true, items });
  }

  await Promise.all(pending.splice(0));
  await store.flush();
  const documents = Object.values(byKind).reduce((sum, n) => sum + (n ?? 0), 0);
  return { course: c, documents, byKind };
}
