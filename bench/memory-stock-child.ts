import { readFileSync } from "node:fs";
import { Repo, type DocumentId } from "@automerge/automerge-repo";
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs";
import { nodeFsDocuments, readTask, rssMb, runChild, runService, since } from "./child-kit.js";
import { breakdownAfterGc, reportCrashes, sleep, startMemorySampler, type DeviceReport, type MemoryFigures, type SeatsReady, type ServerMemoryReport } from "./memory-kit.js";
import { captureStockLogs, clientRepo, findAll, preGrow, shutdown, startStockServer, type StockSeat } from "./stock-kit.js";

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

const logged = captureStockLogs();

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
    const { url } = await startStockServer(task.dir);
    memory.markReady();
    return {
      ready: { url, rssMb: rssMb() },
      // Taken while every client is still connected. The process exits right after reporting, so
      // nothing is shut down first: whatever a shutdown would do cannot cost the report.
      stop: async (): Promise<ServerMemoryReport> => ({ ...memory.figures(), afterGc: breakdownAfterGc(), logged: logged.count, firstLogged: logged.first }),
    };
  });
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
