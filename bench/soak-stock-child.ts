import * as A from "@automerge/automerge";
import { type AutomergeUrl, type Repo } from "@automerge/automerge-repo";
import { documentIdOf } from "../src/crdt/ids.js";
import { readTask, runService, since } from "./child-kit.js";
import { readIds } from "./memory-kit.js";
import { runSoakLoad, submissionUrl, waitForGo, type SoakClientsReport, type SoakCounts, type SoakPlan, type SoakReady, type SoakSeat, type SoakServerReport } from "./soak-kit.js";
import { captureStockLogs, clientRepo, findAll, shutdown, startStockServer, type StockLogs, type StockSeat } from "./stock-kit.js";

/**
 * Stock automerge-repo's side of the soak: a server `Repo` holding the course our relay holds,
 * and processes of client `Repo`s, one per student (one of them the teacher's), that make the
 * same load as ours: edits of their own submissions, grades, reconnections.
 */
export type SoakStockTask =
  /** Runs the server until stdin ends; then reports its heads of every document it holds. */
  | { task: "server"; dir: string }
  /**
   * Runs its seats' clients: ready once each has found its documents (our node's ids for the same
   * student; the teacher, our teacher's grades), then the load of the go file's window; when
   * stdin ends, reports the heads each holds.
   */
  | { task: "clients"; serverUrl: string; seats: StockSoakSeat[]; goFile: string; plan: SoakPlan; concurrency: number; deadlineMs: number };

export interface StockSoakSeat extends StockSeat {
  role: "student" | "teacher";
}

const logged = captureStockLogs();

type Root = Record<string, unknown>;

/** Stock's heads of a document, in one string that two stock repos agree on when their copies are equal. */
function headsOf(repo: Repo, id: string): string | undefined {
  const handle = repo.handles[id as keyof Repo["handles"]];
  return handle?.isReady() ? [...handle.heads()].sort().join(",") : undefined;
}

function server(task: Extract<SoakStockTask, { task: "server" }>): void {
  runService(async () => {
    const { repo, url } = await startStockServer(task.dir);
    return {
      ready: { url },
      // The process exits right after reporting, so nothing is shut down first.
      stop: async (): Promise<SoakServerReport> => {
        const heads: Record<string, string> = {};
        for (const id of Object.keys(repo.handles)) {
          const at = headsOf(repo, id);
          if (at !== undefined) heads[id] = at;
        }
        return { heads, logged: logged.count, firstLogged: logged.first, uncaught: uncaught.count, firstUncaught: uncaught.first };
      },
    };
  });
}

function clients(task: Extract<SoakStockTask, { task: "clients" }>): void {
  runService(async () => {
    const start = performance.now();
    const deadline = start + task.deadlineMs;
    const seats: Array<SoakSeat<Repo>> = task.seats.map((seat) => ({ index: seat.index, role: seat.role, client: clientRepo(seat.dir, task.serverUrl), busy: false }));
    const keyOf = new Map(seats.map((seat, i) => [seat, task.seats[i]!]));
    const found = await Promise.all(seats.map((seat) => findAll(seat.client, keyOf.get(seat)!, task.concurrency, start, deadline)));
    const ready: SoakReady = { seats: found.map((outcome, i) => ({ index: seats[i]!.index, role: seats[i]!.role, done: outcome.done, ms: outcome.ms, documents: outcome.documents })), readyMs: since(start) };
    const teacher = task.seats.find((seat) => seat.role === "teacher");
    const grades = teacher ? readIds(teacher.idsFile).map((id) => `automerge:${id}` as AutomergeUrl) : [];

    let go = false;
    const load: Promise<SoakCounts> = waitForGo(task.goFile).then((window) => {
      go = true;
      return runSoakLoad(seats, task.plan, window, {
        edit: async (seat, assignment, text) => {
          const handle = await seat.client.find<Root>(`automerge:${documentIdOf(submissionUrl(assignment, seat.index))}` as AutomergeUrl);
          handle.change((doc) => A.updateText(doc, ["body"], text));
        },
        grade: async (seat, pick, score) => {
          const url = grades[pick % Math.max(1, grades.length)];
          if (url === undefined) return false;
          const handle = await seat.client.find<Root>(url);
          handle.change((doc) => {
            doc["score"] = score;
            doc["grade"] = new A.ImmutableString(String(score));
          });
          return true;
        },
        // An app restarting: the repo shuts down, a new one opens the same storage and finds its documents again.
        reconnect: async (seat) => {
          await seat.client.flush();
          await shutdown(seat.client);
          seat.client = clientRepo(keyOf.get(seat)!.dir, task.serverUrl);
          const again = performance.now();
          const outcome = await findAll(seat.client, keyOf.get(seat)!, task.concurrency, again, again + task.deadlineMs);
          if (!outcome.done) throw new Error(`after reconnecting, found ${outcome.documents} of ${outcome.expected} documents`);
        },
      });
    });
    return {
      ready: ready as unknown as Record<string, unknown>,
      // The process exits right after reporting, so nothing is shut down first.
      stop: async (): Promise<SoakClientsReport> => {
        const counts = go ? await load : { edits: 0, grades: 0, reconnects: 0, failures: 0 };
        const reported = seats.map((seat) => {
          const heads: Record<string, string> = {};
          let missing = 0;
          for (const id of readIds(keyOf.get(seat)!.idsFile)) {
            const at = headsOf(seat.client, id);
            if (at === undefined) missing++;
            else heads[id] = at;
          }
          return { index: seat.index, role: seat.role, inSync: missing === 0, heads };
        });
        return { ...counts, seats: reported, logged: logged.count, firstLogged: logged.first, uncaught: uncaught.count, firstUncaught: uncaught.first };
      },
    };
  });
}

/**
 * Stock's client adapter throws some errors where nothing can catch them (a refused upgrade:
 * "Unexpected server response"). An app would crash; here they are counted, so one client's
 * error does not end its process's 50 others, and the report says how many there were.
 */
const uncaught: StockLogs = { count: 0 };
const countUncaught = (error: unknown) => {
  uncaught.count++;
  uncaught.first ??= error instanceof Error ? error.message : String(error);
  process.stderr.write(`uncaught: ${uncaught.first}\n`);
};
process.on("uncaughtException", countUncaught);
process.on("unhandledRejection", countUncaught);
const task = readTask<SoakStockTask>();
if (task.task === "server") server(task);
else clients(task);
