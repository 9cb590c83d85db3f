import { docUrlOf, type DocUrl, type DocumentId } from "../src/crdt/ids.js";
import { SyncNode } from "../src/node/sync-node.js";
import { readTask, runService, since } from "./child-kit.js";
import { idsFileOf, reportCrashes, sleep } from "./memory-kit.js";
import { inSync, startSeat, writeIds, type Seat } from "./seat-kit.js";
import { runSoakLoad, submissionUrl, teacherIdsFile, waitForGo, type SoakClientsReport, type SoakCounts, type SoakPlan, type SoakReady, type SoakSeat, type SoakServerReport } from "./soak-kit.js";

/**
 * Our side of the soak: a relay, and processes of students' nodes (one of them with the
 * teacher's) that edit, grade and reconnect against it for the whole window the parent sets.
 */
export type SoakOursTask =
  /** Runs the relay until stdin ends; then reports its heads of every document. */
  | { task: "relay"; relayDir: string }
  /**
   * Runs its seats' nodes: ready once each is in sync (or at the deadline), then the load of the
   * go file's window; when stdin ends, waits until every node is in sync again and reports.
   * Each seat writes the ids it holds into `idsDir` (the teacher: its grades), for stock's clients.
   */
  | { task: "clients"; relayUrl: string; seats: OursSoakSeat[]; idsDir: string; goFile: string; plan: SoakPlan; deadlineMs: number };

export interface OursSoakSeat extends Seat {
  role: "student" | "teacher";
}

async function headsOf(node: SyncNode): Promise<Record<string, string>> {
  const heads: Record<string, string> = {};
  for (const record of await node.engine.docs.records({ includeDeleted: true })) heads[record.id] = record.heads;
  return heads;
}

function relay(task: Extract<SoakOursTask, { task: "relay" }>): void {
  runService(async () => {
    const node = await SyncNode.start({ dataDir: task.relayDir, mode: "relay", listen: { port: 0 }, discovery: false, connectors: false });
    return {
      ready: { url: node.url },
      stop: async (): Promise<SoakServerReport> => {
        const heads = await headsOf(node);
        await node.close();
        return { heads };
      },
    };
  });
}

/** Waits until every seat's node is in sync with the relay, or `deadline` passes; the time each took. */
async function whenInSync(seats: ReadonlyArray<SoakSeat<SyncNode>>, start: number, deadline: number): Promise<Array<number | undefined>> {
  const doneAt: Array<number | undefined> = seats.map(() => undefined);
  while (doneAt.some((at) => at === undefined) && performance.now() < deadline) {
    seats.forEach((seat, i) => {
      if (doneAt[i] === undefined && inSync(seat.client)) doneAt[i] = since(start);
    });
    await sleep(50);
  }
  return doneAt;
}

function clients(task: Extract<SoakOursTask, { task: "clients" }>): void {
  runService(async () => {
    const start = performance.now();
    // All at once: the relay takes every cold sync together, as when a class comes online.
    const seats: Array<SoakSeat<SyncNode>> = await Promise.all(task.seats.map(async (seat) => ({ index: seat.index, role: seat.role, client: await startSeat(seat, task.relayUrl), busy: false })));
    const keyOf = new Map(seats.map((seat, i) => [seat, task.seats[i]!]));
    const doneAt = await whenInSync(seats, start, start + task.deadlineMs);
    const ready: SoakReady = { seats: [], readyMs: since(start) };
    let grades: DocUrl[] = [];
    for (const [i, seat] of seats.entries()) {
      const documents =
        seat.role === "teacher" ? await writeIds(seat.client, teacherIdsFile(task.idsDir), "grade") : await writeIds(seat.client, idsFileOf(task.idsDir, seat.index));
      if (seat.role === "teacher") grades = (await seat.client.engine.docs.records()).filter((r) => r.kind === "grade").map((r) => docUrlOf(r.id as DocumentId));
      ready.seats.push({ index: seat.index, role: seat.role, done: doneAt[i] !== undefined, ms: doneAt[i] ?? since(start), documents });
    }

    let go = false;
    const load: Promise<SoakCounts> = waitForGo(task.goFile).then((window) => {
      go = true;
      return runSoakLoad(seats, task.plan, window, {
        edit: async (seat, assignment, text) => {
          await seat.client.engine.docs.change<"submission">(submissionUrl(assignment, seat.index), (draft) => (draft.body = text));
        },
        grade: async (seat, pick, score) => {
          const url = grades[pick % Math.max(1, grades.length)];
          if (url === undefined) return false;
          await seat.client.engine.docs.change<"grade">(url, (draft) => {
            draft.score = score;
            draft.grade = String(score);
          });
          return true;
        },
        reconnect: async (seat) => {
          await seat.client.close();
          seat.client = await startSeat(keyOf.get(seat)!, task.relayUrl);
        },
      });
    });
    return {
      ready: ready as unknown as Record<string, unknown>,
      stop: async (): Promise<SoakClientsReport> => {
        const counts = go ? await load : { edits: 0, grades: 0, reconnects: 0, failures: 0 };
        const settleStart = performance.now();
        const settled = await whenInSync(seats, settleStart, settleStart + task.deadlineMs);
        const reported = await Promise.all(seats.map(async (seat, i) => ({ index: seat.index, role: seat.role, inSync: settled[i] !== undefined, heads: await headsOf(seat.client) })));
        await Promise.all(seats.map((seat) => seat.client.close()));
        return { ...counts, seats: reported };
      },
    };
  });
}

reportCrashes();
const task = readTask<SoakOursTask>();
if (task.task === "relay") relay(task);
else clients(task);
