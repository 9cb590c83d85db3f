import { writeFileSync } from "node:fs";
import { docUrlOf, type DocUrl } from "../src/crdt/ids.js";
import { seedDemoCourse } from "../src/demo/demo-course.js";
import { Engine } from "../src/engine.js";
import { Authority } from "../src/net/authority.js";
import { SyncNode } from "../src/node/sync-node.js";
import { demoUser } from "../src/testing/principals.js";
import { cpuMs, readTask, rssMb, runChild, runService, since, serveActivity, startActivity, startRssSampler } from "./child-kit.js";
import { lastBusyOfBothEnds, offlinePages, PHASE_DEADLINE_MS, pollUntil, QUIET_MS, regradedScore, SETTLE_MS, sleep, type ChangedFigures, type ColdFigures, type JoinReport, type ReconnectFigures, type ServerReport, type UploadFigures } from "./sync-kit.js";
import { startWireMeter, type WireMeter } from "./wire-meter.js";

/** Our side of the replication figures: a relay holding a demo course, and a fresh teacher's node that joins it. */
export type SyncOursTask =
  /** Seeds the relay's store with the demo course, exports every document for the stock server, and issues the teacher's token for the node's key. */
  | { task: "seed"; relayDir: string; nodeDir: string; students: number; assignments: number; exportFile: string }
  /** Runs the relay until stdin ends. */
  | { task: "relay"; relayDir: string }
  | {
      task: "join";
      nodeDir: string;
      token: string;
      relayUrl: string;
      /** The relay's activity endpoint (`serveActivity`): an exchange is over only once the relay is idle too. */
      activityUrl: string;
      course: string;
      /** Rows the relay's projection holds: the node is done when its own holds as many. */
      expectedProjected: number;
      /** Documents the relay holds, catalogs included. */
      expectedDocuments: number;
      coldDeadlineMs: number;
      warmRuns: number;
      /** Grades regraded offline before the "changed" reconnection (0: none). */
      changed: number;
      upload: number;
    };

export interface SeedReport {
  course: DocUrl;
  token: string;
  documents: number;
  projected: number;
  byKind: Record<string, number>;
  /** Mean size of a saved document (`Automerge.save`), in bytes. */
  meanBytes: number;
  seedMs: number;
}

const TEACHER = demoUser("teacher", 0);
/** The teacher's token outlives any run. */
const TOKEN_TTL_MS = 24 * 3_600_000;

async function seed(task: Extract<SyncOursTask, { task: "seed" }>): Promise<SeedReport> {
  const start = performance.now();
  const engine = await Engine.open({ dataDir: task.relayDir, create: true });
  const demo = await seedDemoCourse(engine.docs, { students: task.students, assignments: task.assignments });
  await engine.whenProjected();
  const status = await engine.status();
  // One document per line, `<document id> <saved document, base64>`: the stock server imports each under the same id.
  const lines: string[] = [];
  let bytes = 0;
  for (const record of await engine.docs.records({ includeDeleted: true })) {
    const saved = await engine.docs.export(docUrlOf(record.id));
    if (!saved) throw new Error(`the relay's store has no document ${record.id}`);
    bytes += saved.length;
    lines.push(`${record.id} ${Buffer.from(saved).toString("base64")}`);
  }
  writeFileSync(task.exportFile, `${lines.join("\n")}\n`);
  await engine.close();
  // The relay runs as its own authority (no token): its key signs the teacher's token, bound to the node's key.
  const holderKey = Authority.open(task.nodeDir).publicKey;
  const token = Authority.open(task.relayDir).issue({ user: TEACHER, role: "teacher", courses: [demo.course], ttlMs: TOKEN_TTL_MS, holderKey });
  return { course: demo.course, token, documents: status.documents, projected: status.projected, byKind: status.byKind, meanBytes: Math.round(bytes / lines.length), seedMs: since(start) };
}

async function projectedRows(node: SyncNode): Promise<number> {
  const row = await node.engine.db
    .selectFrom("doc_heads")
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** In sync with the relay over a link that connected after `sinceWall` (`Date.now()`). */
function inSyncSince(node: SyncNode, sinceWall: number): boolean {
  const peers = node.status().peers;
  return peers.length === 1 && peers[0]!.connected && peers[0]!.inSync && Date.parse(peers[0]!.connectedAt) >= sinceWall;
}

/** Gives the server `SETTLE_MS` to finish what it received; returns when the joining side moves on. */
async function settled(): Promise<number> {
  await sleep(SETTLE_MS);
  return performance.now();
}

/** Waits for the exchange on a new connection to end; ours also says when it is in sync. */
async function reconnection(meter: WireMeter, lastBusy: () => Promise<number | null>, node: SyncNode, sinceWall: number, cpuAtStart: number): Promise<ReconnectFigures> {
  const deadline = performance.now() + PHASE_DEADLINE_MS;
  const inSync = pollUntil(() => inSyncSince(node, sinceWall), deadline, 5);
  const quiet = await meter.whenQuiet(QUIET_MS, deadline, lastBusy);
  const inSyncAt = await inSync;
  const wire = quiet ?? meter.window();
  const connectedAt = wire.connectedAt;
  return {
    finished: quiet !== undefined && inSyncAt !== undefined,
    ms: connectedAt !== null && wire.lastMessageAt !== null ? wire.lastMessageAt - connectedAt : PHASE_DEADLINE_MS,
    inSyncMs: connectedAt !== null && inSyncAt !== undefined ? inSyncAt - connectedAt : null,
    wire,
    cpuMs: cpuMs() - cpuAtStart,
    windowEndAt: await settled(),
  };
}

async function join(task: Extract<SyncOursTask, { task: "join" }>): Promise<JoinReport> {
  const sampler = startRssSampler();
  const activity = startActivity();
  const lastBusy = lastBusyOfBothEnds(activity, task.activityUrl);
  const meter = await startWireMeter(task.relayUrl);
  const start = performance.now();
  const cpuAtStart = cpuMs();
  const node = await SyncNode.start({ dataDir: task.nodeDir, create: true, token: task.token, relay: meter.url, discovery: false, connectors: false });
  // Documents that came from the relay (the node also writes catalogs of its own).
  const arrived = new Set<string>();
  let arrivedAt: number | null = null;
  node.engine.docs.on("doc-changed", (change) => {
    if (change.origin !== "remote") return;
    arrived.add(change.url);
    if (arrived.size >= task.expectedDocuments) arrivedAt ??= performance.now();
  });
  let rows = 0;
  const doneAt = await pollUntil(
    async () => {
      rows = await projectedRows(node);
      return rows >= task.expectedProjected && arrivedAt !== null;
    },
    start + task.coldDeadlineMs,
  );
  const wire = meter.window();
  const cold: ColdFigures = {
    finished: doneAt !== undefined,
    ms: (doneAt ?? performance.now()) - start,
    arrivedMs: (arrivedAt ?? performance.now()) - start,
    connectMs: wire.connectedAt === null ? null : wire.connectedAt - start,
    docs: rows,
    expected: task.expectedProjected,
    wire,
    cpuMs: cpuMs() - cpuAtStart,
    rssMb: rssMb(),
    startAt: start,
    windowEndAt: performance.now(),
  };
  const warm: ReconnectFigures[] = [];
  let changed: ChangedFigures | null = null;
  let upload: UploadFigures | null = null;
  if (cold.finished) {
    // Untimed: whatever the cold sync still had in flight ends before the first reconnection.
    await meter.whenQuiet(QUIET_MS, performance.now() + PHASE_DEADLINE_MS, lastBusy);
    cold.windowEndAt = await settled();
    for (let run = 0; run < task.warmRuns; run++) {
      const sinceWall = Date.now();
      const cpuAtCut = cpuMs();
      meter.mark();
      meter.cut();
      const figures = await reconnection(meter, lastBusy, node, sinceWall, cpuAtCut);
      warm.push(figures);
      if (!figures.finished) break;
    }
    if (warm.every((figures) => figures.finished) && task.changed > 0) {
      await meter.setOnline(false);
      await pollUntil(() => !node.status().peers.some((peer) => peer.connected), performance.now() + 10_000, 5);
      // The first grades in id order: the stock client regrades the same ones.
      const grades = (await node.engine.docs.records({ kind: "grade" })).slice(0, task.changed);
      for (const [index, grade] of grades.entries()) await node.engine.docs.change<"grade">(docUrlOf(grade.id), (draft) => void (draft.score = regradedScore(index)));
      await node.engine.docs.durable();
      const sinceWall = Date.now();
      const cpuAtOnline = cpuMs();
      meter.mark();
      await meter.setOnline(true);
      changed = { ...(await reconnection(meter, lastBusy, node, sinceWall, cpuAtOnline)), docs: grades.length };
    }
    if (warm.every((figures) => figures.finished) && (changed?.finished ?? true) && task.upload > 0) {
      await meter.setOnline(false);
      await pollUntil(() => !node.status().peers.some((peer) => peer.connected), performance.now() + 10_000, 5);
      const createStart = performance.now();
      const pages = offlinePages(task.upload);
      const batch = 200;
      for (let from = 0; from < pages.length; from += batch) {
        await Promise.all(pages.slice(from, from + batch).map((page) => node.engine.docs.create("page", { ...page, course: task.course as DocUrl })));
      }
      await node.engine.docs.durable();
      const createMs = since(createStart);
      const sinceWall = Date.now();
      const cpuAtOnline = cpuMs();
      meter.mark();
      await meter.setOnline(true);
      upload = { ...(await reconnection(meter, lastBusy, node, sinceWall, cpuAtOnline)), docs: task.upload, createMs };
    }
  }
  const peakRssMb = sampler.peakMb();
  await meter.close();
  await node.close();
  return { cold, warm, changed, upload, peakRssMb, timeOrigin: performance.timeOrigin, cpu: activity.samples() };
}

const task = readTask<SyncOursTask>();
if (task.task === "relay") {
  runService(async () => {
    const sampler = startRssSampler();
    const activity = startActivity();
    const activityUrl = await serveActivity(activity);
    const node = await SyncNode.start({ dataDir: task.relayDir, mode: "relay", listen: { port: 0 }, discovery: false, connectors: false });
    return {
      ready: { url: node.url, activityUrl },
      stop: async (): Promise<ServerReport> => {
        const status = await node.engine.status();
        const report = { documents: status.documents, rssMb: rssMb(), peakRssMb: sampler.peakMb(), cpu: activity.samples() };
        await node.close();
        return report;
      },
    };
  });
} else {
  runChild(() => (task.task === "seed" ? seed(task) : join(task)));
}
