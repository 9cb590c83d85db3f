import { readFileSync } from "node:fs";
import * as A from "@automerge/automerge";
import { Repo, type AutomergeUrl, type DocHandle, type DocumentId } from "@automerge/automerge-repo";
import { WebSocketClientAdapter, WebSocketServerAdapter } from "@automerge/automerge-repo-network-websocket";
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs";
import { WebSocketServer } from "ws";
import type { DocUrl } from "../src/crdt/ids.js";
import { initialRoot } from "../src/crdt/schema/document.js";
import { cpuMs, nodeFsDocuments, readTask, rssMb, runChild, runService, since, serveActivity, startActivity, startRssSampler } from "./child-kit.js";
import { lastBusyOfBothEnds, offlinePages, PHASE_DEADLINE_MS, QUIET_MS, regradedScore, SETTLE_MS, sleep, type ChangedFigures, type ColdFigures, type JoinReport, type ReconnectFigures, type ServerReport, type UploadFigures } from "./sync-kit.js";
import { startWireMeter, type WireMeter } from "./wire-meter.js";
import { preGrow, shutdown } from "./stock-kit.js";

/**
 * Stock automerge-repo's side of the replication figures, both ends stock: a server (`Repo`
 * with `WebSocketServerAdapter` and `NodeFSStorageAdapter`, configured as the stock sync
 * server is) and a fresh client (`Repo` with `WebSocketClientAdapter` and its own
 * `NodeFSStorageAdapter`).
 */
export type SyncStockTask =
  /** Imports the documents our relay exported, under the same ids, into the server's NodeFS directory (untimed). */
  | { task: "seed"; dir: string; exportFile: string; preGrowMb: number }
  /** Runs the server until stdin ends. `preGrowMb` > 0 applies the HAZARDS wasm workaround (for an informational run only). */
  | { task: "server"; dir: string; preGrowMb: number }
  | {
      task: "join";
      dir: string;
      serverUrl: string;
      /** The server's activity endpoint (`serveActivity`): an exchange is over only once the server is idle too. */
      activityUrl: string;
      /** The ids of every document on the server: a stock client can only ask for documents it is told of. */
      exportFile: string;
      course: string;
      concurrency: number;
      coldDeadlineMs: number;
      warmRuns: number;
      /** Grades regraded offline before the "changed" reconnection (0: none). */
      changed: number;
      upload: number;
      preGrowMb: number;
    };

type Root = Record<string, unknown>;

/** A string field as our schema writes it (an immutable string) or as plain text. */
function textOf(value: unknown): unknown {
  return value instanceof A.ImmutableString ? value.val : value;
}

/** The document ids in the export file (the first field of each line). */
function exportedIds(file: string): DocumentId[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((line) => line.length > 0)
    .map((line) => line.slice(0, line.indexOf(" ")) as DocumentId);
}




async function seed(task: Extract<SyncStockTask, { task: "seed" }>): Promise<{ documents: number; ms: number }> {
  // Untimed setup, so the workaround is used as run.ts does for its stock builds.
  preGrow(task.preGrowMb);
  const start = performance.now();
  const repo = new Repo({ storage: new NodeFSStorageAdapter(task.dir), network: [] });
  let count = 0;
  for (const line of readFileSync(task.exportFile, "utf8").split("\n")) {
    if (line.length === 0) continue;
    const space = line.indexOf(" ");
    repo.import(Buffer.from(line.slice(space + 1), "base64"), { docId: line.slice(0, space) as DocumentId });
    // Let the debounced saves run as the import goes.
    if (++count % 200 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  await repo.flush();
  // In 2.5.6 flush() can resolve while a throttled save is still rewriting a snapshot (see run.ts): let those land.
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  await shutdown(repo);
  const documents = nodeFsDocuments(task.dir);
  if (documents !== count) throw new Error(`imported ${count} documents, the NodeFS directory holds ${documents}`);
  return { documents, ms: since(start) };
}

/** Gives the server `SETTLE_MS` to finish what it received; returns when the joining side moves on. */
async function settled(): Promise<number> {
  await sleep(SETTLE_MS);
  return performance.now();
}

/** Waits for the exchange on a new connection to end. Stock has no "in sync" to ask: the wire falling quiet is the only sign. */
async function reconnection(meter: WireMeter, lastBusy: () => Promise<number | null>, cpuAtStart: number): Promise<ReconnectFigures> {
  const quiet = await meter.whenQuiet(QUIET_MS, performance.now() + PHASE_DEADLINE_MS, lastBusy);
  const wire = quiet ?? meter.window();
  return {
    finished: quiet !== undefined,
    ms: wire.connectedAt !== null && wire.lastMessageAt !== null ? wire.lastMessageAt - wire.connectedAt : PHASE_DEADLINE_MS,
    inSyncMs: null,
    wire,
    cpuMs: cpuMs() - cpuAtStart,
    windowEndAt: await settled(),
  };
}

async function join(task: Extract<SyncStockTask, { task: "join" }>): Promise<JoinReport> {
  preGrow(task.preGrowMb);
  const sampler = startRssSampler();
  const activity = startActivity();
  const lastBusy = lastBusyOfBothEnds(activity, task.activityUrl);
  const meter = await startWireMeter(task.serverUrl);
  const urls = exportedIds(task.exportFile).map((id) => `automerge:${id}` as AutomergeUrl);
  const start = performance.now();
  const cpuAtStart = cpuMs();
  const deadline = start + task.coldDeadlineMs;
  const repo = new Repo({ storage: new NodeFSStorageAdapter(task.dir), network: [new WebSocketClientAdapter(meter.url)] });
  const handles: Array<DocHandle<Root>> = [];
  let failures = 0;
  let firstFailure: string | undefined;
  for (let from = 0; from < urls.length && performance.now() < deadline; from += task.concurrency) {
    const found = await Promise.allSettled(urls.slice(from, from + task.concurrency).map((url) => repo.find<Root>(url)));
    for (const outcome of found) {
      if (outcome.status === "fulfilled") handles.push(outcome.value);
      else {
        failures++;
        firstFailure ??= String(outcome.reason);
      }
    }
  }
  const arrivedMs = since(start);
  const allFound = handles.length === urls.length;
  if (allFound) await repo.flush();
  const wire = meter.window();
  const cold: ColdFigures = {
    finished: allFound,
    ms: since(start),
    arrivedMs,
    connectMs: wire.connectedAt === null ? null : wire.connectedAt - start,
    docs: handles.length,
    expected: urls.length,
    wire,
    cpuMs: cpuMs() - cpuAtStart,
    rssMb: rssMb(),
    startAt: start,
    windowEndAt: performance.now(),
    failures,
    firstFailure,
  };
  const warm: ReconnectFigures[] = [];
  let changed: ChangedFigures | null = null;
  let upload: UploadFigures | null = null;
  if (cold.finished) {
    // Untimed: whatever the cold sync still had in flight ends before the first reconnection.
    await meter.whenQuiet(QUIET_MS, performance.now() + PHASE_DEADLINE_MS, lastBusy);
    cold.windowEndAt = await settled();
    for (let run = 0; run < task.warmRuns; run++) {
      const cpuAtCut = cpuMs();
      meter.mark();
      // The client redials on its own, every 5 s (its fixed retry interval): the figure runs from the new connection.
      meter.cut();
      const figures = await reconnection(meter, lastBusy, cpuAtCut);
      warm.push(figures);
      if (!figures.finished) break;
    }
    if (warm.every((figures) => figures.finished) && task.changed > 0) {
      await meter.setOnline(false);
      // The first grades in id order, as our node regrades them.
      const grades = handles.filter((handle) => textOf(handle.doc().kind) === "grade").sort((a, b) => (a.documentId < b.documentId ? -1 : 1)).slice(0, task.changed);
      grades.forEach((handle, index) => handle.change((draft) => void (draft.score = regradedScore(index))));
      await repo.flush();
      const cpuAtOnline = cpuMs();
      meter.mark();
      await meter.setOnline(true);
      changed = { ...(await reconnection(meter, lastBusy, cpuAtOnline)), docs: grades.length };
    }
    if (warm.every((figures) => figures.finished) && (changed?.finished ?? true) && task.upload > 0) {
      await meter.setOnline(false);
      const createStart = performance.now();
      const now = () => new Date().toISOString();
      // The very document our store writes for the same page, built by the same schema code.
      for (const page of offlinePages(task.upload)) repo.create<Root>(initialRoot("page", task.course as DocUrl, page, now()));
      await repo.flush();
      const createMs = since(createStart);
      const cpuAtOnline = cpuMs();
      meter.mark();
      await meter.setOnline(true);
      upload = { ...(await reconnection(meter, lastBusy, cpuAtOnline)), docs: task.upload, createMs };
    }
  }
  const peakRssMb = sampler.peakMb();
  await meter.close();
  await shutdown(repo);
  return { cold, warm, changed, upload, peakRssMb, timeOrigin: performance.timeOrigin, cpu: activity.samples() };
}

const task = readTask<SyncStockTask>();
if (task.task === "server") {
  runService(async () => {
    preGrow(task.preGrowMb);
    const sampler = startRssSampler();
    const activity = startActivity();
    const activityUrl = await serveActivity(activity);
    // The adapter's types name the CommonJS copy of ws's typings; the server is the same class.
    const wss = new WebSocketServer({ port: 0, host: "127.0.0.1" });
    await new Promise<void>((resolve) => wss.once("listening", () => resolve()));
    // As the stock sync server runs: it answers what peers ask for and announces nothing.
    const repo = new Repo({ storage: new NodeFSStorageAdapter(task.dir), network: [new WebSocketServerAdapter(wss as unknown as ConstructorParameters<typeof WebSocketServerAdapter>[0])], sharePolicy: async () => false });
    // The adapter handles connections only once the repo knows its storage id (HAZARDS): ready after that.
    await repo.storageId();
    const { port } = wss.address() as { port: number };
    return {
      ready: { url: `ws://127.0.0.1:${port}`, activityUrl },
      stop: async (): Promise<ServerReport> => {
        await repo.flush();
        const report = { documents: nodeFsDocuments(task.dir), rssMb: rssMb(), peakRssMb: sampler.peakMb(), cpu: activity.samples() };
        await shutdown(repo);
        wss.close();
        return report;
      },
    };
  });
} else {
  runChild(() => (task.task === "seed" ? seed(task) : join(task)));
}
