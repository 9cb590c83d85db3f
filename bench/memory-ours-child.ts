import { writeFileSync } from "node:fs";
import { docUrlOf, type DocUrl } from "../src/crdt/ids.js";
import { seedDemoCourse } from "../src/demo/demo-course.js";
import { Engine } from "../src/engine.js";
import { Authority } from "../src/net/authority.js";
import { SyncNode } from "../src/node/sync-node.js";
import { demoUser } from "../src/testing/principals.js";
import { inSync, startSeat, writeIds, type Seat } from "./seat-kit.js";
import { diskBytes, readTask, rssMb, runChild, runService, since } from "./child-kit.js";
import { breakdownAfterGc, idsFileOf, reportCrashes, sleep, startMemorySampler, type DeviceReport, type MemoryFigures, type SeatOutcome, type SeatsReady, type ServerMemoryReport } from "./memory-kit.js";

/**
 * Our side of the memory figures: a relay holding a large demo course, students' nodes that
 * cold-sync what they may read from it (30 at once in two processes, or one alone), and the
 * seeding of the relay's store, with an export for the stock server.
 */
export type MemoryOursTask =
  /**
   * Seeds the relay's store with the demo course, exports every document for the stock server,
   * and issues each seat a student's (or teacher's) token signed by the relay's authority and bound to the key
   * in the seat's data directory.
   */
  | { task: "seed"; relayDir: string; students: number; assignments: number; exportFile: string; seats: SeatKey[] }
  /** Runs the relay until stdin ends. */
  | { task: "relay"; relayDir: string }
  /** Runs students' nodes dialing the relay until stdin ends; ready once all are in sync (or at the deadline). */
  | { task: "students"; relayUrl: string; seats: Seat[]; idsDir: string; deadlineMs: number }
  /** One student's node alone: cold sync, stays `holdMs` more, reports its memory. */
  | { task: "device"; relayUrl: string; seat: Seat; idsFile: string; deadlineMs: number; holdMs: number };

/** Whom a token is for: the demo course's `index`th student (or teacher), on the device whose key is in `dataDir`. */
export interface SeatKey {
  index: number;
  dataDir: string;
  role?: "student" | "teacher";
}


export interface MemorySeed {
  course: DocUrl;
  documents: number;
  byKind: Record<string, number>;
  projected: number;
  /** The tokens, in the order of the task's seats. */
  tokens: string[];
  seedMs: number;
  exportMs: number;
  diskBytes: number;
}

/** The students' tokens outlive any run. */
const TOKEN_TTL_MS = 24 * 3_600_000;

async function seed(task: Extract<MemoryOursTask, { task: "seed" }>): Promise<MemorySeed> {
  const start = performance.now();
  const engine = await Engine.open({ dataDir: task.relayDir, create: true });
  const demo = await seedDemoCourse(engine.docs, { students: task.students, assignments: task.assignments });
  await engine.whenProjected();
  await engine.docs.durable();
  const seedMs = since(start);
  const status = await engine.status();
  // One document per line, `<document id> <saved document, base64>`: the stock server imports each under the same id.
  const exportStart = performance.now();
  const lines: string[] = [];
  for (const record of await engine.docs.records({ includeDeleted: true })) {
    const saved = await engine.docs.export(docUrlOf(record.id));
    if (!saved) throw new Error(`the relay's store has no document ${record.id}`);
    lines.push(`${record.id} ${Buffer.from(saved).toString("base64")}`);
  }
  writeFileSync(task.exportFile, `${lines.join("\n")}\n`);
  const exportMs = since(exportStart);
  await engine.close();
  // The relay runs as its own authority (no token): its key signs each student's token, bound to that student's device key.
  const authority = Authority.open(task.relayDir);
  const tokens = task.seats.map(({ index, dataDir, role = "student" }) => authority.issue({ user: demoUser(role, index), role, courses: [demo.course], ttlMs: TOKEN_TTL_MS, holderKey: Authority.open(dataDir).publicKey }));
  return { course: demo.course, documents: status.documents, byKind: status.byKind, projected: status.projected, tokens, seedMs, exportMs, diskBytes: diskBytes(task.relayDir) };
}

function relay(task: Extract<MemoryOursTask, { task: "relay" }>): void {
  runService(async () => {
    const memory = startMemorySampler();
    const node = await SyncNode.start({ dataDir: task.relayDir, mode: "relay", listen: { port: 0 }, discovery: false, connectors: false });
    memory.markReady();
    return {
      ready: { url: node.url, rssMb: rssMb() },
      stop: async (): Promise<ServerMemoryReport> => {
        // Taken before anything closes: every student is still connected.
        const figures = memory.figures();
        const peers = node.status().peers.filter((peer) => peer.connected).length;
        const afterGc = breakdownAfterGc();
        const { documents } = await node.engine.status();
        await node.close();
        return { ...figures, afterGc, peers, documents };
      },
    };
  });
}

function students(task: Extract<MemoryOursTask, { task: "students" }>): void {
  runService(async () => {
    const memory = startMemorySampler();
    const start = performance.now();
    // All at once: the relay takes every cold sync together, as when a class comes online.
    const nodes = await Promise.all(task.seats.map((seat) => startSeat(seat, task.relayUrl)));
    const doneAt: Array<number | undefined> = nodes.map(() => undefined);
    const deadline = start + task.deadlineMs;
    while (doneAt.some((at) => at === undefined) && performance.now() < deadline) {
      nodes.forEach((node, i) => {
        if (doneAt[i] === undefined && inSync(node)) doneAt[i] = performance.now();
      });
      await sleep(50);
    }
    const readyMs = since(start);
    const seats: SeatOutcome[] = [];
    for (const [i, node] of nodes.entries()) {
      await node.engine.whenProjected();
      const documents = await writeIds(node, idsFileOf(task.idsDir, task.seats[i]!.index));
      const at = doneAt[i];
      seats.push({ index: task.seats[i]!.index, done: at !== undefined, ms: Math.round((at ?? performance.now()) - start), documents });
    }
    const ready: SeatsReady = { seats, readyMs, rssMb: rssMb() };
    return {
      ready: ready as unknown as Record<string, unknown>,
      stop: async (): Promise<MemoryFigures> => {
        const figures = memory.figures();
        await Promise.all(nodes.map((node) => node.close()));
        return figures;
      },
    };
  });
}

async function device(task: Extract<MemoryOursTask, { task: "device" }>): Promise<DeviceReport> {
  const memory = startMemorySampler();
  // Modules loaded, nothing opened yet.
  memory.markReady();
  const start = performance.now();
  const node = await startSeat(task.seat, task.relayUrl);
  let doneAt: number | undefined;
  while (performance.now() < start + task.deadlineMs) {
    if (inSync(node)) {
      await node.engine.whenProjected();
      doneAt = performance.now();
      break;
    }
    await sleep(25);
  }
  const ms = since(start);
  // The student keeps the app open a while: whatever the sync left behind (workers, caches) winds down or stays.
  await sleep(task.holdMs);
  const figures = memory.figures();
  const documents = await writeIds(node, task.idsFile);
  const status = await node.engine.status();
  await node.close();
  return { ...figures, done: doneAt !== undefined, ms: doneAt !== undefined ? Math.round(doneAt - start) : ms, documents, byKind: status.byKind, projected: status.projected };
}

reportCrashes();
const task = readTask<MemoryOursTask>();
if (task.task === "relay") relay(task);
else if (task.task === "students") students(task);
else runChild(() => (task.task === "seed" ? seed(task) : device(task)));
