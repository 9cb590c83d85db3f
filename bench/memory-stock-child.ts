import { readFileSync } from "node:fs";
import { format } from "node:util";
import { Repo, type AutomergeUrl, type DocHandle, type DocumentId } from "@automerge/automerge-repo";
import { WebSocketClientAdapter, WebSocketServerAdapter } from "@automerge/automerge-repo-network-websocket";
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs";
import { WebSocketServer } from "ws";
import { nodeFsDocuments, readTask, rssMb, runChild, runService, since } from "./child-kit.js";
import { breakdownAfterGc, readIds, reportCrashes, sleep, startMemorySampler, type DeviceReport, type MemoryFigures, type SeatOutcome, type SeatsReady, type ServerMemoryReport } from "./memory-kit.js";
import { preGrow, shutdown } from "./stock-kit.js";

/**
 * Stock automerge-repo's side of the memory figures: a server `Repo` (WebSocket server
 * adapter, NodeFS storage, configured as the stock sync server is) holding the course our
 * relay holds, and client `Repo`s that find what the same student of ours may read: 30 at
 * once in two processes, or one alone.
 */
export type MemoryStockTask =
  /** Imports lines `from` to `to` of our relay's export, under the same ids, into the server's NodeFS directory (untimed). */
  | { task: "seed"; dir: string; exportFile: string; from: number; to: number; preGrowMb: number }
  /** Runs the server until stdin ends. */
  | { task: "server"; dir: string }
  /** Runs students' clients until stdin ends; ready once each has found its documents (or at the deadline). */
  | { task: "clients"; serverUrl: string; seats: StockSeat[]; concurrency: number; deadlineMs: number }
  /** One student's client alone: finds its documents, stays `holdMs` more, reports its memory. */
  | { task: "device"; serverUrl: string; seat: StockSeat; concurrency: number; deadlineMs: number; holdMs: number };

export interface StockSeat {
  index: number;
  dir: string;
  /** The ids our node of the same student held after its cold sync. */
  idsFile: string;
}

type Root = Record<string, unknown>;

/**
 * Stock logs some errors with `console.log` ("error receiving message" when a sync message
 * fails), on stdout, where a child's reports go: they go to stderr instead, and are counted.
 */
const logged = { count: 0, first: undefined as string | undefined };
for (const method of ["log", "info", "debug"] as const) {
  console[method] = (...args: unknown[]) => {
    logged.count++;
    logged.first ??= format(...args).replace(/\s+/g, " ").slice(0, 300);
    process.stderr.write(`${format(...args)}\n`);
  };
}




async function seed(task: Extract<MemoryStockTask, { task: "seed" }>): Promise<{ documents: number; imported: number; ms: number }> {
  preGrow(task.preGrowMb);
  const start = performance.now();
  const repo = new Repo({ storage: new NodeFSStorageAdapter(task.dir), network: [] });
  const lines = readFileSync(task.exportFile, "utf8")
    .split("\n")
    .filter((line) => line.length > 0)
    .slice(task.from, task.to);
  let imported = 0;
  for (const line of lines) {
    const space = line.indexOf(" ");
    repo.import(Buffer.from(line.slice(space + 1), "base64"), { docId: line.slice(0, space) as DocumentId });
    // Let the debounced saves run as the import goes.
    if (++imported % 200 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  await repo.flush();
  // In 2.5.6 flush() can resolve while a throttled save is still rewriting a snapshot (see run.ts): let those land.
  await sleep(2_000);
  await shutdown(repo);
  const documents = nodeFsDocuments(task.dir);
  if (documents < task.to) throw new Error(`after importing documents ${task.from} to ${task.to}, the NodeFS directory holds ${documents}`);
  return { documents, imported, ms: since(start) };
}

function server(task: Extract<MemoryStockTask, { task: "server" }>): void {
  runService(async () => {
    const memory = startMemorySampler();
    // The adapter's types name the CommonJS copy of ws's typings; the server is the same class.
    const wss = new WebSocketServer({ port: 0, host: "127.0.0.1" });
    await new Promise<void>((resolve) => wss.once("listening", () => resolve()));
    // As the stock sync server runs: it answers what peers ask for and announces nothing.
    const repo = new Repo({ storage: new NodeFSStorageAdapter(task.dir), network: [new WebSocketServerAdapter(wss as unknown as ConstructorParameters<typeof WebSocketServerAdapter>[0])], sharePolicy: async () => false });
    // The adapter handles connections only once the repo knows its storage id (HAZARDS): ready after that.
    await repo.storageId();
    memory.markReady();
    const { port } = wss.address() as { port: number };
    return {
      ready: { url: `ws://127.0.0.1:${port}`, rssMb: rssMb() },
      // Taken while every client is still connected. The process exits right after reporting, so
      // nothing is shut down first: whatever a shutdown would do cannot cost the report.
      stop: async (): Promise<ServerMemoryReport> => ({ ...memory.figures(), afterGc: breakdownAfterGc(), logged: logged.count, firstLogged: logged.first }),
    };
  });
}

function clientRepo(dir: string, serverUrl: string): Repo {
  return new Repo({ storage: new NodeFSStorageAdapter(dir), network: [new WebSocketClientAdapter(serverUrl)] });
}

/**
 * Finds every id, `concurrency` at a time, until `deadline` (`performance.now()`); once all
 * are found, `repo.flush()` stores them. A stock client cannot ask for what it may read: it is told.
 * A find that fails as unavailable (stock marks a pending find so when its connection drops, or
 * after 60 s) is waited for, as an app would: the client redials by itself and asks again for
 * every document it holds a handle of.
 */
async function findAll(repo: Repo, seat: StockSeat, concurrency: number, start: number, deadline: number): Promise<SeatOutcome> {
  const urls = readIds(seat.idsFile).map((id) => `automerge:${id}` as AutomergeUrl);
  let drops = 0;
  repo.networkSubsystem.on("peer-disconnected", () => drops++);
  let found = 0;
  let failures = 0;
  let firstFailure: string | undefined;
  const failed: AutomergeUrl[] = [];
  for (let from = 0; from < urls.length && performance.now() < deadline; from += concurrency) {
    const batch = urls.slice(from, from + concurrency);
    const outcomes = await Promise.allSettled(batch.map((url) => repo.find<Root>(url)));
    outcomes.forEach((outcome, i) => {
      if (outcome.status === "fulfilled") found++;
      else {
        failures++;
        firstFailure ??= String(outcome.reason);
        failed.push(batch[i]!);
      }
    });
  }
  let recovered = 0;
  if (failed.length > 0) {
    const waiting: Array<DocHandle<Root>> = [];
    for (const url of failed) waiting.push(await repo.find<Root>(url, { allowableStates: ["ready", "unavailable", "requesting"] }));
    while (waiting.some((handle) => !handle.isReady()) && performance.now() < deadline) await sleep(250);
    recovered = waiting.filter((handle) => handle.isReady()).length;
    found += recovered;
  }
  const done = found === urls.length;
  if (done) await repo.flush();
  return { index: seat.index, done, ms: since(start), documents: found, expected: urls.length, failures, recovered, firstFailure, drops };
}

function clients(task: Extract<MemoryStockTask, { task: "clients" }>): void {
  runService(async () => {
    const memory = startMemorySampler();
    const start = performance.now();
    const repos = task.seats.map((seat) => clientRepo(seat.dir, task.serverUrl));
    const seats = await Promise.all(repos.map((repo, i) => findAll(repo, task.seats[i]!, task.concurrency, start, start + task.deadlineMs)));
    const ready: SeatsReady = { seats, readyMs: since(start), rssMb: rssMb(), logged: logged.count, firstLogged: logged.first };
    return {
      ready: ready as unknown as Record<string, unknown>,
      // As the server's: the process exits right after reporting.
      stop: async (): Promise<MemoryFigures> => memory.figures(),
    };
  });
}

async function device(task: Extract<MemoryStockTask, { task: "device" }>): Promise<DeviceReport> {
  const memory = startMemorySampler();
  memory.markReady();
  const start = performance.now();
  const repo = clientRepo(task.seat.dir, task.serverUrl);
  const outcome = await findAll(repo, task.seat, task.concurrency, start, start + task.deadlineMs);
  await sleep(task.holdMs);
  const figures = memory.figures();
  return { ...figures, done: outcome.done, ms: outcome.ms, documents: outcome.documents, expected: outcome.expected, failures: outcome.failures, recovered: outcome.recovered, firstFailure: outcome.firstFailure, drops: outcome.drops, logged: logged.count, firstLogged: logged.first };
}

reportCrashes();
const task = readTask<MemoryStockTask>();
if (task.task === "server") server(task);
else if (task.task === "clients") clients(task);
else runChild(() => (task.task === "seed" ? seed(task) : device(task)));
