import { readFileSync } from "node:fs";
import { ImmutableString } from "@automerge/automerge";
import { Repo, type AutomergeUrl, type DocHandle, type DocumentId } from "@automerge/automerge-repo";
import { WebSocketClientAdapter, WebSocketServerAdapter } from "@automerge/automerge-repo-network-websocket";
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs";
import { WebSocketServer } from "ws";
import { cpuMs, readTask, rssMb, runChild, runService, since, startRssSampler, wallNow } from "./child-kit.js";
import { ArrivalLog, cpuRoute, plainString, serveControl, sleep, type ChangeAnswer, type MemoryReport, type ReceiversReport, RSS_SAMPLE_MS, waitRoute } from "./fanout-kit.js";
import { shutdown } from "./stock-kit.js";

/**
 * Stock automerge-repo's side of the fan-out figure: a server `Repo` (WebSocket server
 * adapter, NodeFS storage, configured as the stock sync server is) holding the course our
 * teacher's node holds, a teacher's client `Repo` that changes the document, and the
 * students' client `Repo`s that found it. Stock has no authorization: the server relays.
 */
export type FanoutStockTask =
  /** Imports the documents our teacher's node exported, under the same ids, into the server's NodeFS directory (untimed). */
  | { task: "seed"; dir: string; exportFile: string }
  /** Runs the server until stdin ends. */
  | { task: "server"; dir: string }
  /** Runs the teacher's client until stdin ends; `/change?title=` retitles the document. */
  | { task: "teacher"; dir: string; serverUrl: string; target: string }
  /** Runs students' clients until stdin ends; `/wait?title=` answers once every handle shows it. */
  | { task: "students"; dirs: string[]; serverUrl: string; target: string; firstTitle: string; readyDeadlineMs: number };

type Root = Record<string, unknown>;


async function seed(task: Extract<FanoutStockTask, { task: "seed" }>): Promise<{ documents: number; ms: number }> {
  const start = performance.now();
  const repo = new Repo({ storage: new NodeFSStorageAdapter(task.dir), network: [] });
  let documents = 0;
  for (const line of readFileSync(task.exportFile, "utf8").split("\n")) {
    if (line.length === 0) continue;
    const space = line.indexOf(" ");
    repo.import(Buffer.from(line.slice(space + 1), "base64"), { docId: line.slice(0, space) as DocumentId });
    documents++;
  }
  await repo.flush();
  // In 2.5.6 flush() can resolve while a throttled save is still rewriting a snapshot (see run.ts): let those land.
  await sleep(2_000);
  await shutdown(repo);
  return { documents, ms: since(start) };
}

function server(task: Extract<FanoutStockTask, { task: "server" }>): void {
  runService(async () => {
    const sampler = startRssSampler(RSS_SAMPLE_MS);
    // The adapter's types name the CommonJS copy of ws's typings; the server is the same class.
    const wss = new WebSocketServer({ port: 0, host: "127.0.0.1" });
    await new Promise<void>((resolve) => wss.once("listening", () => resolve()));
    // As the stock sync server runs: it answers what peers ask for, announces nothing, and relays changes to the peers that asked.
    const repo = new Repo({ storage: new NodeFSStorageAdapter(task.dir), network: [new WebSocketServerAdapter(wss as unknown as ConstructorParameters<typeof WebSocketServerAdapter>[0])], sharePolicy: async () => false });
    // The adapter handles connections only once the repo knows its storage id (HAZARDS): ready after that.
    await repo.storageId();
    const { port } = wss.address() as { port: number };
    const controlUrl = await serveControl(cpuRoute());
    return {
      ready: { url: `ws://127.0.0.1:${port}`, controlUrl },
      stop: async (): Promise<MemoryReport> => {
        const report = { rssMb: rssMb(), peakRssMb: sampler.peakMb() };
        await shutdown(repo);
        wss.close();
        return report;
      },
    };
  });
}

/** A client `Repo` of its own, with its own NodeFS directory, dialing the server. */
function clientRepo(dir: string, serverUrl: string): Repo {
  return new Repo({ storage: new NodeFSStorageAdapter(dir), network: [new WebSocketClientAdapter(serverUrl)] });
}

function teacher(task: Extract<FanoutStockTask, { task: "teacher" }>): void {
  runService(async () => {
    const sampler = startRssSampler(RSS_SAMPLE_MS);
    const repo = clientRepo(task.dir, task.serverUrl);
    const handle = await repo.find<Root>(task.target as AutomergeUrl);
    const controlUrl = await serveControl({
      change: (params): ChangeAnswer => {
        const title = params.get("title") ?? "";
        const cpuAtChange = cpuMs();
        const at = wallNow();
        // Stored as our schema stores a title, so the document stays the same shape on both sides.
        handle.change((doc) => {
          doc["title"] = new ImmutableString(title);
        });
        return { at, cpuMs: cpuAtChange };
      },
    });
    return {
      ready: { controlUrl },
      stop: async (): Promise<MemoryReport> => {
        const report = { rssMb: rssMb(), peakRssMb: sampler.peakMb() };
        await shutdown(repo);
        return report;
      },
    };
  });
}

function students(task: Extract<FanoutStockTask, { task: "students" }>): void {
  runService(async () => {
    const sampler = startRssSampler(RSS_SAMPLE_MS);
    const log = new ArrivalLog(task.dirs.length);
    const start = performance.now();
    const repos = task.dirs.map((dir) => clientRepo(dir, task.serverUrl));
    const deadline = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`the students' clients did not find the document in ${task.readyDeadlineMs / 1000} s`)), task.readyDeadlineMs).unref());
    const handles: Array<DocHandle<Root>> = await Promise.race([Promise.all(repos.map((repo) => repo.find<Root>(task.target as AutomergeUrl))), deadline]);
    handles.forEach((handle, i) => {
      const note = (doc: Root | undefined) => {
        const title = plainString(doc?.["title"]);
        if (title !== undefined) log.note(i, title, wallNow());
      };
      // Stock has no SQL projection: the handle's `change` event, with the new document, is where a stock app sees a change.
      handle.on("change", ({ doc }) => note(doc));
      note(handle.doc());
    });
    if (log.count(task.firstTitle) !== handles.length) throw new Error(`only ${log.count(task.firstTitle)} of ${handles.length} clients show "${task.firstTitle}"`);
    const readyMs = since(start);
    const controlUrl = await serveControl(waitRoute(log));
    return {
      ready: { controlUrl },
      stop: async (): Promise<ReceiversReport> => {
        const report = { arrivals: log.arrivals(), readyMs, rssMb: rssMb(), peakRssMb: sampler.peakMb() };
        await Promise.all(repos.map((repo) => shutdown(repo)));
        return report;
      },
    };
  });
}

const task = readTask<FanoutStockTask>();
if (task.task === "seed") runChild(() => seed(task));
else if (task.task === "server") server(task);
else if (task.task === "teacher") teacher(task);
else students(task);
