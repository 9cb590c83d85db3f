import { format } from "node:util";
import * as A from "@automerge/automerge";
import { Repo, type AutomergeUrl, type DocHandle } from "@automerge/automerge-repo";
import { WebSocketClientAdapter, WebSocketServerAdapter } from "@automerge/automerge-repo-network-websocket";
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs";
import { WebSocketServer } from "ws";
import { since } from "./child-kit.js";
import { readIds, sleep, type SeatOutcome } from "./memory-kit.js";

/**
 * What the stock children share: the server and clients as stock automerge-repo 2.5.6 runs
 * them, and ways around its HAZARDS.
 */

/** A student's stock client: where it stores, and the ids our node of the same student held after its cold sync. */
export interface StockSeat {
  index: number;
  dir: string;
  idsFile: string;
}

/** The lines stock logged, and the first: see `captureStockLogs`. */
export interface StockLogs {
  count: number;
  first?: string;
}

/**
 * Stock logs some errors with `console.log` ("error receiving message" when a sync message
 * fails), on stdout, where a child's reports go: they go to stderr instead, and are counted.
 */
export function captureStockLogs(): StockLogs {
  const logged: StockLogs = { count: 0 };
  for (const method of ["log", "info", "debug"] as const) {
    console[method] = (...args: unknown[]) => {
      logged.count++;
      logged.first ??= format(...args).replace(/\s+/g, " ").slice(0, 300);
      process.stderr.write(`${format(...args)}\n`);
    };
  }
  return logged;
}

/**
 * A server `Repo` on a loopback WebSocket server, as the stock sync server runs: NodeFS
 * storage, and it answers what peers ask for but announces nothing.
 */
export async function startStockServer(dir: string): Promise<{ repo: Repo; url: string }> {
  const wss = new WebSocketServer({ port: 0, host: "127.0.0.1" });
  await new Promise<void>((resolve) => wss.once("listening", () => resolve()));
  // The adapter's types name the CommonJS copy of ws's typings; the server is the same class.
  const repo = new Repo({ storage: new NodeFSStorageAdapter(dir), network: [new WebSocketServerAdapter(wss as unknown as ConstructorParameters<typeof WebSocketServerAdapter>[0])], sharePolicy: async () => false });
  // The adapter handles connections only once the repo knows its storage id (HAZARDS): ready after that.
  await repo.storageId();
  const { port } = wss.address() as { port: number };
  return { repo, url: `ws://127.0.0.1:${port}` };
}

type Root = Record<string, unknown>;


/** `repo.shutdown()` can throw in 2.5.6 (HAZARDS); the process exits right after, so a failure changes nothing. */
export async function shutdown(repo: Repo): Promise<void> {
  await repo.shutdown().catch(() => undefined);
}

/**
 * The HAZARDS workaround: grow Automerge's wasm memory once instead of in thousands of small
 * steps that each cost Node a full GC. Loading bytes that are no document copies them into
 * wasm memory (growing it) and fails at once on the header.
 */
export function preGrow(mb: number): void {
  if (mb <= 0) return;
  try {
    A.load(new Uint8Array(mb * 1024 * 1024));
  } catch {
    // Expected: the bytes only serve to grow the memory.
  }
}

export function clientRepo(dir: string, serverUrl: string): Repo {
  return new Repo({ storage: new NodeFSStorageAdapter(dir), network: [new WebSocketClientAdapter(serverUrl)] });
}

/**
 * Finds every id, `concurrency` at a time, until `deadline` (`performance.now()`); once all
 * are found, `repo.flush()` stores them. A stock client cannot ask for what it may read: it is told.
 * A find that fails as unavailable (stock marks a pending find so when its connection drops, or
 * after 60 s) is waited for, as an app would: the client redials by itself and asks again for
 * every document it holds a handle of.
 */
export async function findAll(repo: Repo, seat: StockSeat, concurrency: number, start: number, deadline: number): Promise<SeatOutcome> {
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
