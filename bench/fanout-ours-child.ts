import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { docUrlOf, type DocUrl } from "../src/crdt/ids.js";
import { seedDemoCourse } from "../src/demo/demo-course.js";
import { Engine } from "../src/engine.js";
import { Authority } from "../src/net/authority.js";
import { SyncNode } from "../src/node/sync-node.js";
import { demoUser } from "../src/testing/principals.js";
import { cpuMs, readTask, rssMb, runChild, runService, startRssSampler, wallNow } from "./child-kit.js";
import { ArrivalLog, serveControl, sleep, type ChangeAnswer, type MemoryReport, type ReceiversReport, RSS_SAMPLE_MS, waitRoute } from "./fanout-kit.js";

/**
 * Our side of the fan-out figure: a teacher's node holding a demo course, listening on
 * loopback as on a classroom LAN (no relay), and students' nodes that dial it directly.
 */
export type FanoutOursTask =
  /** Seeds the teacher's store, exports it for the stock server, and issues each student a token bound to the key in the student's data directory. */
  | { task: "seed"; teacherDir: string; studentsDir: string; students: number; assignments: number; exportFile: string }
  /** Runs the teacher's node until stdin ends; `/change?title=` retitles the document. */
  | { task: "teacher"; teacherDir: string; target: DocUrl }
  /** Runs students' nodes dialing the teacher until stdin ends; `/wait?title=` answers once every projection shows it. */
  | { task: "students"; teacherUrl: string; students: StudentSeat[]; target: DocUrl; firstTitle: string; readyDeadlineMs: number };

export interface StudentSeat {
  dataDir: string;
  token: string;
}

export interface FanoutSeed {
  course: DocUrl;
  /** The document the teacher changes: the first assignment, which every student may read. */
  target: DocUrl;
  title: string;
  seats: StudentSeat[];
  documents: number;
}

/** The students' tokens outlive any run. */
const TOKEN_TTL_MS = 24 * 3_600_000;

async function seed(task: Extract<FanoutOursTask, { task: "seed" }>): Promise<FanoutSeed> {
  const engine = await Engine.open({ dataDir: task.teacherDir, create: true });
  const demo = await seedDemoCourse(engine.docs, { students: task.students, assignments: task.assignments });
  await engine.whenProjected();
  const first = await engine.db.selectFrom("assignments").select(["doc_url", "title"]).where("course_url", "=", demo.course).orderBy("position").executeTakeFirstOrThrow();
  // One document per line, `<document id> <saved document, base64>`: the stock server imports each under the same id.
  const lines: string[] = [];
  for (const record of await engine.docs.records({ includeDeleted: true })) {
    const saved = await engine.docs.export(docUrlOf(record.id));
    if (saved) lines.push(`${record.id} ${Buffer.from(saved).toString("base64")}`);
  }
  writeFileSync(task.exportFile, `${lines.join("\n")}\n`);
  await engine.close();
  // The teacher's node has no token: it is the course authority and signs each student's, bound to that student's device key.
  const authority = Authority.open(task.teacherDir);
  const seats = Array.from({ length: task.students }, (_, i): StudentSeat => {
    const dataDir = join(task.studentsDir, `student-${i}`);
    const holderKey = Authority.open(dataDir).publicKey;
    return { dataDir, token: authority.issue({ user: demoUser("student", i), role: "student", courses: [demo.course], ttlMs: TOKEN_TTL_MS, holderKey }) };
  });
  return { course: demo.course, target: first.doc_url, title: first.title, seats, documents: lines.length };
}

function teacher(task: Extract<FanoutOursTask, { task: "teacher" }>): void {
  runService(async () => {
    const sampler = startRssSampler(RSS_SAMPLE_MS);
    const node = await SyncNode.start({ dataDir: task.teacherDir, listen: { port: 0 }, discovery: false, connectors: false });
    const controlUrl = await serveControl({
      change: async (params): Promise<ChangeAnswer> => {
        const title = params.get("title") ?? "";
        const cpuAtChange = cpuMs();
        const at = wallNow();
        await node.engine.docs.change<"assignment">(task.target, (draft) => {
          draft.title = title;
        });
        return { at, committedAt: wallNow(), cpuMs: cpuAtChange };
      },
    });
    return {
      ready: { url: node.url, controlUrl },
      stop: async (): Promise<MemoryReport & { peers: number }> => {
        const report = { rssMb: rssMb(), peakRssMb: sampler.peakMb(), peers: node.status().peers.filter((peer) => peer.connected).length };
        await node.close();
        return report;
      },
    };
  });
}

/** The assignment's title as the node's SQL projection holds it now. */
async function projectedTitle(node: SyncNode, target: DocUrl): Promise<string | undefined> {
  const row = await node.engine.db.selectFrom("assignments").select("title").where("doc_url", "=", target).executeTakeFirst();
  return row?.title;
}

/**
 * Notes each title the target shows in the node's projection, as soon as it does: on every
 * change of the document, once the engine has projected what it received, the table is read.
 */
function watchProjection(node: SyncNode, target: DocUrl, onTitle: (title: string) => void, onStored: () => void): void {
  let reading = false;
  let again = false;
  const read = async () => {
    if (reading) {
      again = true;
      return;
    }
    reading = true;
    try {
      do {
        again = false;
        await node.engine.whenProjected();
        const title = await projectedTitle(node, target);
        if (title !== undefined) onTitle(title);
      } while (again);
    } finally {
      reading = false;
    }
  };
  node.engine.docs.on("doc-changed", (change) => {
    if (change.url !== target) return;
    if (change.origin === "remote") onStored();
    read().catch(() => undefined);
  });
}

/** In sync with the teacher: the one link is up and both sides have offered everything. */
function inSync(node: SyncNode): boolean {
  const peers = node.status().peers;
  return peers.length > 0 && peers.every((peer) => peer.connected && peer.inSync);
}

function students(task: Extract<FanoutOursTask, { task: "students" }>): void {
  runService(async () => {
    const sampler = startRssSampler(RSS_SAMPLE_MS);
    const log = new ArrivalLog(task.students.length);
    const start = performance.now();
    const nodes = await Promise.all(task.students.map((seat) => SyncNode.start({ dataDir: seat.dataDir, create: true, token: seat.token, discovery: false, connectors: false })));
    // When each student's store committed a change of the assignment: how much of the time the projection takes.
    const stored = nodes.map((): number[] => []);
    nodes.forEach((node, i) =>
      watchProjection(
        node,
        task.target,
        (title) => log.note(i, title, wallNow()),
        () => stored[i]!.push(wallNow()),
      ),
    );
    for (const node of nodes) node.connect(task.teacherUrl);
    const deadline = start + task.readyDeadlineMs;
    for (;;) {
      // A document that arrived before its watcher could read it is read here.
      for (const [i, node] of nodes.entries()) {
        if (log.has(i, task.firstTitle)) continue;
        const title = await projectedTitle(node, task.target);
        if (title !== undefined) log.note(i, title, wallNow());
      }
      const ready = nodes.every((node, i) => inSync(node) && log.has(i, task.firstTitle));
      if (ready) break;
      if (performance.now() > deadline) throw new Error(`students not in sync after ${task.readyDeadlineMs / 1000} s: ${nodes.filter((node) => inSync(node)).length} of ${nodes.length} in sync, ${log.count(task.firstTitle)} showing the assignment`);
      await sleep(50);
    }
    const readyMs = performance.now() - start;
    const documents = await Promise.all(nodes.map(async (node) => (await node.engine.status()).documents));
    const controlUrl = await serveControl(waitRoute(log));
    return {
      ready: { controlUrl },
      stop: async (): Promise<ReceiversReport> => {
        const report = { arrivals: log.arrivals(), stored, readyMs, documents, rssMb: rssMb(), peakRssMb: sampler.peakMb() };
        await Promise.all(nodes.map((node) => node.close()));
        return report;
      },
    };
  });
}

const task = readTask<FanoutOursTask>();
if (task.task === "seed") runChild(() => seed(task));
else if (task.task === "teacher") teacher(task);
else students(task);
