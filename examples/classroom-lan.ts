// A classroom on one LAN, no server: a teacher's laptop and three students' laptops find each
// other over mDNS and sync a discussion. Here all four run on this machine, on loopback.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Authority, SyncNode, queries, type DocStore, type DocUrl } from "ordo-sync";

/** The whole classroom must settle within this, or the example fails. */
const TIMEOUT_MS = 30_000;
const start = Date.now();

/** mDNS on loopback only: nothing leaves this machine, and it works without a network. */
const LAN = { listen: { port: 0, host: "127.0.0.1" }, discovery: { interface: "127.0.0.1" } } as const;

const STUDENTS = [
  { name: "Ada Okafor", reply: "The membrane let the dye in only where we scratched it." },
  { name: "Ben Novak", reply: "Our onion cells shrank in salt water: osmosis, I think." },
  { name: "Chloe Haddad", reply: "Could the chloroplasts move toward the light?" },
];

const dirs: string[] = [];
const tempDir = (name: string): string => {
  const dir = mkdtempSync(join(tmpdir(), `ordo-lan-${name}-`));
  dirs.push(dir);
  return dir;
};

const nodes: Array<{ name: string; node: SyncNode }> = [];
/** Per node (peer id), the peers it dialled after discovery found them. */
const found = new Map<string, Set<string>>();
try {
  // The teacher's laptop has no token: it is the course authority and signs its own. It
  // advertises on the LAN the courses it holds, so it advertises the course once created.
  const teacherDir = tempDir("teacher");
  const teacher = await SyncNode.start({ dataDir: teacherDir, create: true, ...LAN });
  nodes.push({ name: "Ms. Rossi (teacher)", node: teacher });
  watchLinks(teacher);
  const { course, topic, students } = await createCourse(teacher.engine.docs);

  // Each student's laptop starts empty, with a token the teacher's authority issued.
  const authority = Authority.open(teacherDir);
  for (const student of students) {
    // The token names the device's own key, so it is worthless to anyone who copies it.
    const dataDir = tempDir("student");
    const holderKey = Authority.open(dataDir).publicKey;
    const token = authority.issue({ user: student.url, role: "student", courses: [course], ttlMs: 3_600_000, holderKey });
    const node = await SyncNode.start({ dataDir, create: true, token, ...LAN });
    nodes.push({ name: student.name, node });
    watchLinks(node);
  }

  // No connect() anywhere: discovery finds the classmates. Each student replies once the topic arrives.
  await Promise.all(
    students.map(async (student, i) => {
      const { node } = nodes[i + 1]!;
      await until(async () => (await node.engine.db.selectFrom("discussion_topics").select("doc_url").where("doc_url", "=", topic).executeTakeFirst()) !== undefined, `the topic at ${student.name}'s`);
      await node.engine.docs.create("post", { course, topic, parent: null, author: student.url, message: student.reply });
    }),
  );

  // Done when every laptop's SQL tables show every reply.
  for (const { name, node } of nodes) {
    await until(async () => (await node.engine.db.selectFrom("posts").select("doc_url").where("topic_url", "=", topic).execute()).length === students.length, `all ${students.length} replies at ${name}'s`);
  }

  const names = new Map<string, string>(nodes.map((n) => [n.node.peerId, n.name]));
  const title = await teacher.engine.db.selectFrom("discussion_topics").select("title").where("doc_url", "=", topic).executeTakeFirstOrThrow();
  console.log(`Discussion "${title.title}", synced over the LAN in ${((Date.now() - start) / 1000).toFixed(1)} s.`);
  // Of two nodes that hear each other, the one with the smaller peer id dials: one link a pair.
  console.log("Who found whom (each found the other; the first dialled):");
  for (const { name, node } of nodes) {
    for (const peerId of found.get(node.peerId) ?? []) console.log(`  ${name} <-> ${names.get(peerId) ?? peerId}`);
  }
  const authors = new Map<string, string>(students.map((s) => [s.url, s.name]));
  for (const { name, node } of nodes) {
    const thread = await queries.topicThread(node.engine.db, topic);
    console.log(`${name}'s thread:`);
    for (const post of thread) console.log(`  ${"  ".repeat(post.depth)}${authors.get(post.author_url ?? "") ?? "?"}: ${post.message}`);
  }
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
} finally {
  for (const { node } of nodes.reverse()) await node.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}

/** The course, its people, their enrollments and a published topic. */
async function createCourse(docs: DocStore) {
  const course = (await docs.create("course", { name: "Biology 101", courseCode: "BIO-101" })).url;
  const teacher = (await docs.create("user", { name: "Rosa Rossi" })).url;
  await docs.create("enrollment", { course, user: teacher, role: "teacher", state: "active" });
  const students: Array<{ name: string; reply: string; url: DocUrl }> = [];
  for (const student of STUDENTS) {
    const url = (await docs.create("user", { name: student.name })).url;
    await docs.create("enrollment", { course, user: url, role: "student", state: "active" });
    students.push({ ...student, url });
  }
  const topic = (await docs.create("discussion_topic", { course, title: "Week 1: what did you see under the microscope?", author: teacher, published: true })).url;
  return { course, topic, students };
}

/** Polls `check` until it holds; throws a readable error after TIMEOUT_MS. */
async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = start + TIMEOUT_MS;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${TIMEOUT_MS / 1000} s waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Notes every link a node dialled itself: the classmates its LAN discovery found. */
function watchLinks(node: SyncNode): void {
  const dialled = new Set<string>();
  found.set(node.peerId, dialled);
  node.replicator.on("peer-status", (peer) => {
    if (peer.connected && peer.direction === "outbound") dialled.add(peer.peerId);
  });
}
