// A school relay: the teacher's and a student's laptops never meet, each keeps one
// connection to the relay, and the relay carries the assignment one way and the submission
// back. The relay is the course authority (it signs the tokens both laptops present) and
// holds the course roster, as if imported from the school's systems.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Authority, SyncNode, type DocStore, type DocUrl } from "ordo-sync";

/** The round trip must finish within this, or the example fails. */
const TIMEOUT_MS = 30_000;
const start = Date.now();

const dirs: string[] = [];
const tempDir = (name: string): string => {
  const dir = mkdtempSync(join(tmpdir(), `ordo-relay-${name}-`));
  dirs.push(dir);
  return dir;
};

const nodes: SyncNode[] = [];
try {
  // The relay: no token, so it signs its own; no LAN discovery (relays never discover).
  const relayDir = tempDir("relay");
  const relay = await SyncNode.start({ dataDir: relayDir, create: true, mode: "relay", listen: { port: 0, host: "127.0.0.1" } });
  nodes.push(relay);
  const relayUrl = relay.url!;

  // The roster lives on the relay; the relay's authority issues both tokens.
  const { course, teacherUser, studentUser } = await createCourse(relay.engine.docs);
  const authority = Authority.open(relayDir);
  // Each token names the laptop's own key, so it is worthless to anyone who copies it.
  const laptop = (user: DocUrl, role: "teacher" | "student") => {
    const dataDir = tempDir(role);
    const token = authority.issue({ user, role, courses: [course], ttlMs: 3_600_000, holderKey: Authority.open(dataDir).publicKey });
    return { dataDir, token };
  };

  // Both laptops start empty and neither listens: all they do is dial the relay.
  const teacher = await SyncNode.start({ ...laptop(teacherUser, "teacher"), create: true, relay: relayUrl, discovery: false });
  nodes.push(teacher);
  const student = await SyncNode.start({ ...laptop(studentUser, "student"), create: true, relay: relayUrl, discovery: false });
  nodes.push(student);

  // The teacher publishes an assignment; it reaches the student's SQL tables through the relay.
  const lab = await teacher.engine.docs.create("assignment", {
    course,
    title: "Lab 1: Cells",
    description: "Draw a plant cell and label its organelles.",
    dueAt: "2026-09-04T23:59:00Z",
    pointsPossible: 10,
    published: true,
  });
  const seen = await until(() => student.engine.db.selectFrom("assignments").select(["title", "due_at", "points_possible"]).where("doc_url", "=", lab.url).executeTakeFirst(), "the assignment at the student's");

  // The student submits; the submission reaches the teacher's SQL tables the same way.
  const submission = await student.engine.docs.create("submission", {
    course,
    assignment: lab.url,
    student: studentUser,
    body: "Cell wall, membrane, nucleus, chloroplasts, vacuole: see the figure.",
    attempt: 1,
    submittedAt: new Date().toISOString(),
    state: "submitted",
  });
  const received = await until(
    () =>
      teacher.engine.db
        .selectFrom("submissions as s")
        .innerJoin("users as u", "u.doc_url", "s.student_url")
        .select(["u.name", "s.state", "s.body"])
        .where("s.doc_url", "=", submission.url)
        .executeTakeFirst(),
    "the submission at the teacher's",
  );

  const peersOf = (node: SyncNode) => node.status().peers.filter((peer) => peer.connected);
  console.log(`Relay at ${relayUrl}; round trip done in ${((Date.now() - start) / 1000).toFixed(1)} s.`);
  console.log(`The relay carries ${peersOf(relay).length} links: ${peersOf(relay).map((peer) => peer.role).sort().join(", ")}`);
  for (const [name, node] of [["teacher", teacher], ["student", student]] as const) {
    const peers = peersOf(node);
    const onlyRelay = peers.length === 1 && peers[0]!.peerId === relay.peerId;
    console.log(`The ${name}'s laptop is linked to ${onlyRelay ? "the relay only" : peers.map((peer) => peer.peerId).join(", ")}`);
  }
  console.log(`The student sees the teacher's assignment: "${seen.title}", due ${seen.due_at}, ${seen.points_possible} points`);
  console.log(`The teacher sees ${received.name}'s submission (${received.state}): "${received.body}"`);
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
} finally {
  for (const node of nodes.reverse()) await node.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}

/** The course, the teacher, one student and their enrollments. */
async function createCourse(docs: DocStore) {
  const course = (await docs.create("course", { name: "Biology 101", courseCode: "BIO-101" })).url;
  const teacherUser = (await docs.create("user", { name: "Rosa Rossi" })).url;
  await docs.create("enrollment", { course, user: teacherUser, role: "teacher", state: "active" });
  const studentUser = (await docs.create("user", { name: "Ada Okafor" })).url;
  await docs.create("enrollment", { course, user: studentUser, role: "student", state: "active" });
  return { course, teacherUser, studentUser };
}

/** Polls `read` until it returns a row; throws a readable error after TIMEOUT_MS. */
async function until<T>(read: () => Promise<T | undefined>, what: string): Promise<T> {
  for (;;) {
    const row = await read();
    if (row !== undefined) return row;
    if (Date.now() > start + TIMEOUT_MS) throw new Error(`timed out after ${TIMEOUT_MS / 1000} s waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
