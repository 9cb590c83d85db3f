import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { DEMO_SYSTEM } from "../src/demo/demo-course.js";
import { externalDocUrl, type DocUrl } from "../src/crdt/ids.js";
import { createRandom } from "../src/util/random.js";
import { wallNow } from "./child-kit.js";
import { sleep } from "./memory-kit.js";

/**
 * What the soak section's children share with each other and with their parent
 * (`bench/soak-section.ts`): the plan every client process follows, the shape of their
 * reports, and the parent's view of a process in /proc.
 */

/** What each process of clients does once the parent says go. */
export interface SoakPlan {
  /** The demo course's assignments: a student edits its own submission of one of them. */
  assignments: number;
  /** Mean time between two edits of one student. */
  editEveryMs: number;
  /** Mean time between two reconnections of one student (its node or client closed and opened again). */
  reconnectEveryMs: number;
  /** Mean time between two grades the teacher changes. */
  gradeEveryMs: number;
  /** Seeds the choices, so both sides make the same kind of load. */
  seed: number;
}

/** The parent writes this to the go file once every client is in sync: edits and reconnections run from `startAt` to `endAt` (wall ms). */
export interface SoakWindow {
  startAt: number;
  endAt: number;
}

/** How often each process looks at the go file, and at its seats' timers. */
const TICK_MS = 100;

export async function waitForGo(file: string): Promise<SoakWindow> {
  while (!existsSync(file)) await sleep(TICK_MS);
  return JSON.parse(readFileSync(file, "utf8")) as SoakWindow;
}

/** One seat of the soak, whichever side runs it. */
export interface SoakSeat<Client> {
  index: number;
  role: "student" | "teacher";
  client: Client;
  /** While a reconnection is under way the seat neither edits nor reconnects again. */
  busy: boolean;
}

export interface SoakCounts {
  edits: number;
  grades: number;
  reconnects: number;
  failures: number;
  firstFailure?: string;
}

/**
 * Runs the load of the window on `seats`: each student edits its own submission and
 * reconnects now and then, the teacher changes grades. Every action is drawn per tick from
 * its mean interval; a failed action is counted, never thrown. Returns when the window ends
 * and every action has finished.
 */
export async function runSoakLoad<Client>(
  seats: Array<SoakSeat<Client>>,
  plan: SoakPlan,
  window: SoakWindow,
  act: { edit(seat: SoakSeat<Client>, assignment: number, text: string): Promise<void>; grade(seat: SoakSeat<Client>, pick: number, score: number): Promise<boolean>; reconnect(seat: SoakSeat<Client>): Promise<void> },
): Promise<SoakCounts> {
  const random = createRandom(plan.seed + (seats[0]?.index ?? 0));
  const counts: SoakCounts = { edits: 0, grades: 0, reconnects: 0, failures: 0 };
  const inFlight = new Set<Promise<void>>();
  const run = (seat: SoakSeat<Client>, action: () => Promise<void>, exclusive = false) => {
    if (exclusive) seat.busy = true;
    const done: Promise<void> = action()
      .catch((error: unknown) => {
        counts.failures++;
        counts.firstFailure ??= error instanceof Error ? error.message : String(error);
      })
      .finally(() => {
        if (exclusive) seat.busy = false;
        inFlight.delete(done);
      });
    inFlight.add(done);
  };
  const chance = (everyMs: number) => random() < TICK_MS / everyMs;
  while (wallNow() < window.startAt) await sleep(TICK_MS);
  while (wallNow() < window.endAt) {
    for (const seat of seats) {
      if (seat.busy) continue;
      if (seat.role === "teacher") {
        if (chance(plan.gradeEveryMs)) {
          const pick = Math.floor(random() * 1e9);
          const score = Math.round(random() * 20) / 2;
          run(seat, async () => {
            if (await act.grade(seat, pick, score)) counts.grades++;
          });
        }
        continue;
      }
      if (chance(plan.reconnectEveryMs)) {
        run(
          seat,
          async () => {
            await act.reconnect(seat);
            counts.reconnects++;
          },
          true,
        );
      } else if (chance(plan.editEveryMs)) {
        const assignment = Math.floor(random() * plan.assignments);
        const text = `Revision ${counts.edits + 1}: ${random().toString(36).slice(2)} ${random().toString(36).slice(2)}`;
        run(seat, async () => {
          await act.edit(seat, assignment, text);
          counts.edits++;
        });
      }
    }
    await sleep(TICK_MS);
  }
  while (inFlight.size > 0) await Promise.all([...inFlight]);
  return counts;
}

/** The demo course's submission of student `student` to assignment `assignment` (seed 1), as the demo generator names it. */
export function submissionUrl(assignment: number, student: number): DocUrl {
  return externalDocUrl("submission", { system: DEMO_SYSTEM, id: `1/assignment/${assignment}/student/${student}` });
}

/** The file our teacher's node writes the ids of its grades to: the documents the stock teacher changes. */
export function teacherIdsFile(idsDir: string): string {
  return join(idsDir, "teacher-grades.txt");
}

/** A process of clients when every one of its seats was in sync (ours) or had found its documents (stock). */
export interface SoakReady {
  seats: Array<{ index: number; role: "student" | "teacher"; done: boolean; ms: number; documents: number }>;
  readyMs: number;
}

/** A process of clients at the end: what it did, and each seat's heads of every document it holds. */
export interface SoakClientsReport extends SoakCounts {
  seats: Array<{ index: number; role: "student" | "teacher"; inSync: boolean; heads: Record<string, string> }>;
  /** Stock: lines its Repos logged, and the first. */
  logged?: number;
  firstLogged?: string;
  /** Stock: errors thrown where nothing could catch them, and the first. */
  uncaught?: number;
  firstUncaught?: string;
}

/** The relay or stock server at the end: its heads of every document it holds. */
export interface SoakServerReport {
  heads: Record<string, string>;
  logged?: number;
  firstLogged?: string;
  uncaught?: number;
  firstUncaught?: string;
}

/** A process as its parent sees it in /proc, at wall time `at`. */
export interface ProcessSample {
  at: number;
  rssMb: number;
  fds: number;
}

/** Resident memory and open file descriptors of process `pid`, or undefined once it is gone. */
export function sampleProcess(pid: number): ProcessSample | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
    return { at: wallNow(), rssMb: rssKb / 1024, fds: readdirSync(`/proc/${pid}/fd`).length };
  } catch {
    return undefined;
  }
}

/** Samples `pid` every `everyMs` until stopped. */
export function watchProcess(pid: number, everyMs: number): { samples: ProcessSample[]; stop(): void } {
  const samples: ProcessSample[] = [];
  const take = () => {
    const sample = sampleProcess(pid);
    if (sample) samples.push(sample);
  };
  take();
  const timer = setInterval(take, everyMs);
  return { samples, stop: () => clearInterval(timer) };
}

/** The least-squares slope of RSS over the samples from `from` to `to` (wall ms), in MB per minute. */
export function rssSlopePerMinute(samples: readonly ProcessSample[], from: number, to: number): number | undefined {
  const points = samples.filter((s) => s.at >= from && s.at <= to).map((s) => [(s.at - from) / 60_000, s.rssMb] as const);
  if (points.length < 3) return undefined;
  const meanX = points.reduce((sum, [x]) => sum + x, 0) / points.length;
  const meanY = points.reduce((sum, [, y]) => sum + y, 0) / points.length;
  const covariance = points.reduce((sum, [x, y]) => sum + (x - meanX) * (y - meanY), 0);
  const variance = points.reduce((sum, [x]) => sum + (x - meanX) ** 2, 0);
  return variance === 0 ? undefined : covariance / variance;
}

/** Documents whose heads on a client differ from the server's (or that the server lacks), over every seat of every process. */
export function divergence(server: SoakServerReport, reports: readonly SoakClientsReport[]): { documents: number; differing: number; seatsOut: number; first?: string } {
  let documents = 0;
  let differing = 0;
  let seatsOut = 0;
  let first: string | undefined;
  for (const report of reports) {
    for (const seat of report.seats) {
      let out = !seat.inSync;
      for (const [id, heads] of Object.entries(seat.heads)) {
        documents++;
        if (server.heads[id] === heads) continue;
        differing++;
        out = true;
        first ??= `${seat.role} ${seat.index}: ${id} at ${heads.slice(0, 12) || "(none)"}, the server at ${server.heads[id]?.slice(0, 12) ?? "(none)"}`;
      }
      if (out) seatsOut++;
    }
  }
  return { documents, differing, seatsOut, first };
}
