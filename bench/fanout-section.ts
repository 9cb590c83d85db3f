import { rmSync } from "node:fs";
import { join } from "node:path";
import { fmt, log, machineLines, markdownTable, median, runChild, startService, type ChildOutcome, type Row, type RunInfo, type Service } from "./bench-kit.js";
import { quantile, revisionTitle, sleep, type ChangeAnswer, type MemoryReport, type ReceiversReport, type WaitAnswer } from "./fanout-kit.js";
import type { FanoutOursTask, FanoutSeed, StudentSeat } from "./fanout-ours-child.js";
import type { FanoutStockTask } from "./fanout-stock-child.js";

/**
 * The fan-out section of `npm run bench` (alone: `BENCH_ONLY=fanout`): one teacher change
 * reaching every student of a class on a LAN. Ours: the teacher's node and the students'
 * nodes, each student's change counted once its SQL projection shows it. Stock: a server
 * relaying between a teacher's client and the students' clients, each counted once its
 * handle emits the change. Every process is a fresh child; this file paces the changes.
 */

/** The class: the demo course's students and a few assignments (about 330 documents). */
const STUDENTS = 30;
const ASSIGNMENTS = 4;
/** Changes measured, one at a time; one more before them warms both sides up and is shown apart. */
const CHANGES = { full: 20, quick: 5 };
/** The students run in this many processes (the machine has two cores), the same on both sides. */
const STUDENT_PROCESSES = 2;
/**
 * The pause after a change reached every student, before the next: changes never overlap,
 * and stock's sync throttle (100 ms between two syncs of a document) is never what delays one.
 */
const PAUSE_MS = 500;
/** A change that has not reached every student by then counts the rest as missing; the run goes on. */
const ARRIVAL_DEADLINE_MS = 10_000;
/** Until every student is in sync with the teacher. */
const READY_DEADLINE_MS = 120_000;
/**
 * After everyone is ready and before the warm-up change: the class at rest, as minutes into a
 * lesson. Longer than the 10 s an idle describe worker (which loaded the course as it arrived)
 * lives, so none is still winding down while a change is measured.
 */
const SETTLE_MS = 12_000;
const TARGET_P99_MS = 100;

function limits(changes: number) {
  // A service lives through the others' start and every change.
  const service = Math.ceil((2 * READY_DEADLINE_MS + SETTLE_MS + (changes + 1) * (ARRIVAL_DEADLINE_MS + PAUSE_MS)) / 1000) + 60;
  return { seed: 180, service };
}

/** One change as the parent made it: when the teacher's change call started, and whether every student showed it in time. */
interface ChangeMade {
  title: string;
  at: number;
  /** Ours: when the teacher's store had committed it. */
  committedAt?: number;
  reachedAll: boolean;
  /** The teacher's CPU time when the change call started. */
  teacherCpuMs: number;
  /** The students' processes' CPU time, summed, once each had all its students show the change. */
  studentsCpuMs: number;
  /** Stock: the server's CPU time then. */
  serverCpuMs?: number;
}

/** One side's run: the changes made, and the reports of its processes. */
interface SideRun {
  changes: ChangeMade[];
  receivers: ReceiversReport[];
  /** Ours: the teacher's node (also the server). Stock: the teacher's client. */
  teacher?: MemoryReport;
  /** Stock only: the server. */
  server?: MemoryReport;
  failure?: string;
}

async function getJson<T>(base: string, route: string, params: Record<string, string>): Promise<T> {
  const response = await fetch(`${base}${route}?${new URLSearchParams(params).toString()}`);
  const body = (await response.json()) as T & { error?: string };
  if (!response.ok) throw new Error(`${route}: ${body.error ?? response.status}`);
  return body;
}

/** The titles of the warm-up change (revision 0) and the measured ones. */
function titles(base: string, changes: number): string[] {
  return Array.from({ length: changes + 1 }, (_, n) => revisionTitle(base, n));
}

/** Makes each change on the teacher, waits until every student shows it (or the deadline), pauses, and goes on. */
async function pace(teacherControl: string, studentControls: string[], all: string[], serverControl?: string): Promise<ChangeMade[]> {
  await sleep(SETTLE_MS);
  const made: ChangeMade[] = [];
  for (const title of all) {
    const { at, committedAt, cpuMs: teacherCpuMs } = await getJson<ChangeAnswer>(teacherControl, "change", { title });
    const counts = await Promise.all(studentControls.map((control) => getJson<WaitAnswer>(control, "wait", { title, timeoutMs: String(ARRIVAL_DEADLINE_MS) })));
    const reachedAll = counts.reduce((sum, { count }) => sum + count, 0) >= STUDENTS;
    const studentsCpuMs = counts.reduce((sum, { cpuMs }) => sum + cpuMs, 0);
    const serverCpuMs = serverControl ? (await getJson<{ cpuMs: number }>(serverControl, "cpu", {})).cpuMs : undefined;
    made.push({ title, at, committedAt, reachedAll, teacherCpuMs, studentsCpuMs, serverCpuMs });
    await sleep(PAUSE_MS);
  }
  return made;
}

/** The `i`th of `parts` nearly equal slices of `items`. */
function slice<T>(items: readonly T[], i: number, parts: number): T[] {
  const size = Math.ceil(items.length / parts);
  return items.slice(i * size, (i + 1) * size);
}

/** Starts the students' processes, paces the changes, and stops every service: the reports, or the first failure. */
async function runStudents(
  teacherControl: string,
  startStudents: (part: number) => Promise<Service<ReceiversReport>>,
  all: string[],
  others: Array<{ name: string; service: Service<MemoryReport> }>,
  serverControl?: string,
): Promise<Omit<SideRun, "teacher" | "server"> & { stopped: Map<string, ChildOutcome<MemoryReport>> }> {
  const parts = await Promise.all(Array.from({ length: STUDENT_PROCESSES }, (_, part) => startStudents(part)));
  const controls = parts.map((part) => part.ready?.["controlUrl"]);
  let changes: ChangeMade[] = [];
  let failure = parts.find((part) => part.failure)?.failure;
  if (failure === undefined) {
    try {
      changes = await pace(teacherControl, controls as string[], all, serverControl);
    } catch (error) {
      failure = `pacing the changes failed: ${error instanceof Error ? error.message : String(error)}`;
    }
  } else failure = `the students did not start: ${failure}`;
  const reports = await Promise.all(parts.map((part) => part.stop()));
  const stopped = new Map<string, ChildOutcome<MemoryReport>>();
  for (const { name, service } of [...others].reverse()) stopped.set(name, await service.stop());
  failure ??= reports.find((report) => report.failure)?.failure;
  return { changes, receivers: reports.flatMap((report) => (report.result ? [report.result] : [])), failure, stopped };
}

async function measureOurs(seed: FanoutSeed, changes: number, path: (name: string) => string): Promise<SideRun> {
  const limit = limits(changes);
  const teacher = await startService<MemoryReport>("fanout-ours-child.ts", { task: "teacher", teacherDir: path("fanout-teacher"), target: seed.target } satisfies FanoutOursTask, limit.service);
  const { url, controlUrl } = teacher.ready ?? {};
  if (typeof url !== "string" || typeof controlUrl !== "string") {
    await teacher.stop();
    return { changes: [], receivers: [], failure: `the teacher's node did not start: ${teacher.failure ?? "no url"}` };
  }
  const startStudents = (part: number) =>
    startService<ReceiversReport>(
      "fanout-ours-child.ts",
      { task: "students", teacherUrl: url, students: slice<StudentSeat>(seed.seats, part, STUDENT_PROCESSES), target: seed.target, firstTitle: seed.title, readyDeadlineMs: READY_DEADLINE_MS } satisfies FanoutOursTask,
      limit.service,
    );
  const run = await runStudents(controlUrl, startStudents, titles(seed.title, changes), [{ name: "teacher", service: teacher }]);
  const stopped = run.stopped.get("teacher");
  return { ...run, teacher: stopped?.result, failure: run.failure ?? (stopped?.failure ? `the teacher's node ${stopped.failure}` : undefined) };
}

async function measureStock(seed: FanoutSeed, changes: number, path: (name: string) => string): Promise<SideRun> {
  const limit = limits(changes);
  const seeded = await runChild<{ documents: number }>("fanout-stock-child.ts", { task: "seed", dir: path("fanout-stock-server"), exportFile: path("fanout-export.txt") } satisfies FanoutStockTask, limit.seed);
  if (!seeded.result) return { changes: [], receivers: [], failure: `the stock server's store was not built: ${seeded.failure}` };
  const server = await startService<MemoryReport>("fanout-stock-child.ts", { task: "server", dir: path("fanout-stock-server") } satisfies FanoutStockTask, limit.service);
  const serverUrl = server.ready?.["url"];
  const serverControl = server.ready?.["controlUrl"];
  if (typeof serverUrl !== "string" || typeof serverControl !== "string") {
    await server.stop();
    return { changes: [], receivers: [], failure: `the stock server did not start: ${server.failure ?? "no url"}` };
  }
  const teacher = await startService<MemoryReport>("fanout-stock-child.ts", { task: "teacher", dir: path("fanout-stock-teacher"), serverUrl, target: seed.target } satisfies FanoutStockTask, limit.service);
  const controlUrl = teacher.ready?.["controlUrl"];
  if (typeof controlUrl !== "string") {
    await teacher.stop();
    await server.stop();
    return { changes: [], receivers: [], failure: `the stock teacher's client did not start: ${teacher.failure ?? "no control url"}` };
  }
  const dirs = Array.from({ length: STUDENTS }, (_, i) => join(path("fanout-stock-students"), `student-${i}`));
  const startStudents = (part: number) =>
    startService<ReceiversReport>(
      "fanout-stock-child.ts",
      { task: "students", dirs: slice(dirs, part, STUDENT_PROCESSES), serverUrl, target: seed.target, firstTitle: seed.title, readyDeadlineMs: READY_DEADLINE_MS } satisfies FanoutStockTask,
      limit.service,
    );
  const run = await runStudents(
    controlUrl,
    startStudents,
    titles(seed.title, changes),
    [
      { name: "server", service: server },
      { name: "teacher", service: teacher },
    ],
    serverControl,
  );
  const stoppedTeacher = run.stopped.get("teacher");
  const stoppedServer = run.stopped.get("server");
  const failure = run.failure ?? (stoppedTeacher?.failure ? `the teacher's client ${stoppedTeacher.failure}` : stoppedServer?.failure ? `the server ${stoppedServer.failure}` : undefined);
  return { ...run, teacher: stoppedTeacher?.result, server: stoppedServer?.result, failure };
}

/** Latencies of one side: from the teacher's change call to each student showing it. */
interface Latencies {
  /** Measured changes, every student: sorted, ms. */
  sorted: number[];
  /** Arrivals that never came within the deadline. */
  missing: number;
  /** The warm-up change's, sorted. */
  warmUp: number[];
  /** Ours: from the change call until the teacher's store committed it, per measured change, sorted. */
  committed: number[];
  /** Ours: from the change call until each student's store committed it (before projecting), sorted. */
  stored: number[];
}

function latencies(run: SideRun): Latencies {
  const of = (change: ChangeMade) => {
    const values: number[] = [];
    let missing = 0;
    for (const report of run.receivers) {
      for (const arrivals of report.arrivals) {
        const shownAt = arrivals[change.title];
        if (shownAt === undefined) missing++;
        else values.push(shownAt - change.at);
      }
    }
    // A students' process that reported nothing leaves its students missing too.
    missing += STUDENTS - run.receivers.reduce((sum, report) => sum + report.arrivals.length, 0);
    return { values, missing };
  };
  const [warmUpChange, ...measured] = run.changes;
  const all = measured.map(of);
  const byNumber = (a: number, b: number) => a - b;
  // The first commit of the document after the change call is that change's: changes never overlap.
  const stored = measured.flatMap((change) =>
    run.receivers.flatMap((report) => (report.stored ?? []).flatMap((times) => times.filter((t) => t >= change.at).slice(0, 1).map((t) => t - change.at))),
  );
  return {
    sorted: all.flatMap((x) => x.values).sort(byNumber),
    missing: all.reduce((sum, x) => sum + x.missing, 0),
    warmUp: warmUpChange ? of(warmUpChange).values.sort(byNumber) : [],
    committed: measured.flatMap((change) => (change.committedAt === undefined ? [] : [change.committedAt - change.at])).sort(byNumber),
    stored: stored.sort(byNumber),
  };
}

/** What one change cost each process in CPU (median over the measured changes), ms. */
interface ChangeCpu {
  students: number;
  teacher: number | undefined;
  server: number | undefined;
}

/**
 * From one change's moment to the next's, each process's CPU grows by what that change cost it
 * (the pauses in between are idle): students' processes and stock's server read when every
 * student showed the change, the teacher when its change call started.
 */
function changeCpu(run: SideRun): ChangeCpu | undefined {
  const c = run.changes;
  if (c.length < 3) return undefined;
  const steps = (pick: (change: ChangeMade) => number | undefined, from: number, to: number) => {
    const values: number[] = [];
    for (let i = from; i < to; i++) {
      const before = pick(c[i - 1]!);
      const after = pick(c[i]!);
      if (before !== undefined && after !== undefined) values.push(after - before);
    }
    return values.length > 0 ? median(values) : undefined;
  };
  // Change i (1 onwards; 0 warms up) is paid for between the readings of i - 1 and i by the
  // students and the server, and between the change calls of i and i + 1 by the teacher.
  return { students: steps((x) => x.studentsCpuMs, 1, c.length) ?? 0, teacher: steps((x) => x.teacherCpuMs, 2, c.length), server: steps((x) => x.serverCpuMs, 1, c.length) };
}

export interface FanoutMeasurement {
  rows: Row[];
  /** The class, as the section's text describes it. */
  setup: { students: number; assignments: number; documents: number; changes: number } | null;
}

/** Runs the whole section; `path` names a file or directory under the run's work directory. */
export async function measureFanout(quick: boolean, path: (name: string) => string): Promise<FanoutMeasurement> {
  const changes = quick ? CHANGES.quick : CHANGES.full;
  const remove = (...names: string[]) => {
    for (const name of names) rmSync(path(name), { recursive: true, force: true });
  };
  log(`fan-out: seed the teacher's node with the demo course (${STUDENTS} students, ${ASSIGNMENTS} assignments) and issue the students' tokens`);
  const seeded = await runChild<FanoutSeed>(
    "fanout-ours-child.ts",
    { task: "seed", teacherDir: path("fanout-teacher"), studentsDir: path("fanout-students"), students: STUDENTS, assignments: ASSIGNMENTS, exportFile: path("fanout-export.txt") } satisfies FanoutOursTask,
    limits(changes).seed,
  );
  const seed = seeded.result;
  if (!seed) {
    remove("fanout-teacher", "fanout-students", "fanout-export.txt");
    return { rows: [{ figure: FIGURE, ours: `the course was not built: ${seeded.failure}`, stock: "-", ratio: "-", target: TARGET, met: "no", notes: [] }], setup: null };
  }
  log(`fan-out: ours: the teacher's node and ${STUDENTS} students' nodes (in ${STUDENT_PROCESSES} processes); ${changes} changes, one at a time, after one to warm up`);
  const ours = await measureOurs(seed, changes, path);
  remove("fanout-teacher", "fanout-students");
  log(`fan-out: stock: a server, the teacher's client and ${STUDENTS} students' clients (in ${STUDENT_PROCESSES} processes); the same changes`);
  const stock = await measureStock(seed, changes, path);
  remove("fanout-export.txt", "fanout-stock-server", "fanout-stock-teacher", "fanout-stock-students");
  return { rows: [fanoutRow(ours, stock, changes)], setup: { students: STUDENTS, assignments: ASSIGNMENTS, documents: seed.documents, changes } };
}

const FIGURE = `Fan-out: one teacher change to ${STUDENTS} LAN peers, p99 (ms)`;
const TARGET = `ours p99 < ${TARGET_P99_MS} ms`;

/** "How many times better ours is", readable both ways: 25x, 1.4x, 0.12x. */
const times = (ratio: number) => `${fmt(ratio, ratio >= 10 ? 0 : ratio >= 1 ? 1 : 2)}x`;
const ms = (value: number) => fmt(value, 1);

function fanoutRow(ours: SideRun, stock: SideRun, changes: number): Row {
  const o = latencies(ours);
  const s = latencies(stock);
  const expected = changes * STUDENTS;
  const complete = (side: SideRun, l: Latencies) => side.failure === undefined && l.sorted.length === expected;
  const p99 = (l: Latencies) => (l.sorted.length > 0 ? quantile(l.sorted, 0.99) : undefined);
  const cell = (side: SideRun, l: Latencies) => {
    const value = p99(l);
    if (value === undefined) return side.failure ?? "-";
    return `${ms(value)}${complete(side, l) ? "" : ` (${fmt(l.sorted.length)} of ${fmt(expected)} arrived)`}`;
  };
  const spread = (label: string, side: SideRun, l: Latencies, what: string) => {
    if (l.sorted.length === 0) return [];
    const q = (x: number) => ms(quantile(l.sorted, x));
    const warm = l.warmUp.length > 0 ? `; the warm-up change before them (not counted): p50 ${ms(quantile(l.warmUp, 0.5))}, max ${ms(l.warmUp[l.warmUp.length - 1]!)} ms` : "";
    const late = side.changes.filter((change) => !change.reachedAll).length;
    return [
      `${label}: p50 ${q(0.5)}, p90 ${q(0.9)}, p99 ${q(0.99)}, max ${ms(l.sorted[l.sorted.length - 1]!)} ms over ${fmt(l.sorted.length)} samples (${changes} changes × ${STUDENTS} students)${l.missing > 0 ? `; ${fmt(l.missing)} arrivals missing after ${ARRIVAL_DEADLINE_MS / 1000} s` : ""}${late > 0 ? ` (${late} changes did not reach everyone)` : ""}; ${what}${warm}`,
    ];
  };
  const ready = (side: SideRun) => side.receivers.map((report) => `${fmt(report.readyMs / 1000, 1)} s`).join(" and ");
  const rss = (report: MemoryReport | undefined) => (report ? `${fmt(report.peakRssMb)} MB (${fmt(report.rssMb)} MB at the end)` : "?");
  const studentsRss = (side: SideRun) => side.receivers.map((report) => rss(report)).join(" and ");
  const held = ours.receivers.flatMap((report) => report.documents ?? []);
  const notes = [
    ...spread("ours", ours, o, "until the student's SQL projection (the assignments table) shows the new title"),
    ...spread("stock", stock, s, "until the student's handle emits `change` with the new title (stock has no SQL projection: this is as far as stock goes)"),
  ];
  const cpuNote = (label: string, side: SideRun, teacherName: string) => {
    const cpu = changeCpu(side);
    if (!cpu) return [];
    const teacher = cpu.teacher !== undefined ? `, the teacher's ${teacherName} ${ms(cpu.teacher)} ms` : "";
    const server = cpu.server !== undefined ? `, the server ${ms(cpu.server)} ms` : "";
    return [`${label}: CPU per change (median): the students' processes ${ms(cpu.students)} ms in all, ${ms(cpu.students / STUDENTS)} ms per student${teacher}${server}; ${STUDENTS / STUDENT_PROCESSES} students share a process, so a student waits for the others' turns`];
  };
  notes.push(...cpuNote("ours", ours, "node"), ...cpuNote("stock", stock, "client"));
  if (o.stored.length > 0 && o.committed.length > 0) {
    const q = (values: number[], x: number) => ms(quantile(values, x));
    notes.push(
      `ours, where the time goes: the teacher's store committed the change after p50 ${q(o.committed, 0.5)} ms (max ${q(o.committed, 1)}); the students' stores committed it after p50 ${q(o.stored, 0.5)}, p99 ${q(o.stored, 0.99)} ms; the rest, until the SQL projection showed it, is projecting and reading the table`,
    );
  }
  if (ours.receivers.length > 0) {
    notes.push(
      `ours: the students were in sync with the teacher (every node's status in sync, the assignment projected) ${ready(ours)} after their processes started their nodes${held.length > 0 ? `; each student's store held ${fmt(Math.min(...held))} to ${fmt(Math.max(...held))} documents (what a student may read of the course)` : ""}`,
    );
  }
  notes.push(`ours: peak RSS: teacher's node ${rss(ours.teacher)}, students' processes (${STUDENTS / STUDENT_PROCESSES} nodes each) ${studentsRss(ours)}`);
  if (stock.receivers.length > 0) notes.push(`stock: the students' clients had found the assignment ${ready(stock)} after their processes started; a stock client holds only the documents it is told of`);
  notes.push(`stock: peak RSS: server ${rss(stock.server)}, teacher's client ${rss(stock.teacher)}, students' processes (${STUDENTS / STUDENT_PROCESSES} clients each) ${studentsRss(stock)}`);
  if (ours.failure) notes.push(`ours: ${ours.failure}`);
  if (stock.failure) notes.push(`stock: ${stock.failure}`);
  const op = p99(o);
  const sp = p99(s);
  return {
    figure: FIGURE,
    ours: cell(ours, o),
    stock: cell(stock, s),
    ratio: op !== undefined && sp !== undefined ? times(sp / op) : "-",
    target: TARGET,
    met: op !== undefined && complete(ours, o) && op < TARGET_P99_MS ? "yes" : "no",
    notes,
  };
}

export const FANOUT_MARKERS = {
  start: "<!-- fanout: written by npm run bench; BENCH_ONLY=fanout rewrites only this section -->",
  end: "<!-- fanout end -->",
};

/** The fan-out section, with the machine and code it was measured on: it can be measured apart from the rest. */
export function renderFanoutSection(measurement: FanoutMeasurement, run: RunInfo): string {
  const c = measurement.setup;
  const course = c
    ? `The class is the demo course (\`ordo demo\`) with ${c.students} students and ${c.assignments} assignments (${fmt(c.documents)} documents);
the teacher changes the title of its first assignment, which every student may read, ${c.changes} times.`
    : "The course could not be built in this run.";
  return `${FANOUT_MARKERS.start}
## Fan-out on a classroom LAN

One change by the teacher reaching every student of a class. ${course}
Every process is a fresh child on loopback; the students run ${STUDENTS / STUDENT_PROCESSES} to a process in ${STUDENT_PROCESSES} processes
(the same on both sides), so they share the machine's cores as a classroom's laptops would not.

- **Ours**: the teacher's \`SyncNode\` is the course authority (no token), listening as on a LAN (no
  relay, discovery and connectors off); each student's node has its own data directory and a token
  the teacher's authority signed for that student, bound to the node's key, and dials the teacher's
  node directly. A student counts a change once its SQL projection shows it: on each \`doc-changed\`
  of the assignment the node waits for \`engine.whenProjected()\` and reads the \`assignments\` table.
- **Stock**: automerge-repo 2.5.6 as shipped: a server \`Repo\` (\`WebSocketServerAdapter\`,
  \`NodeFSStorageAdapter\`, \`sharePolicy\` false as the stock sync server runs) holding the same
  documents under the same ids; the teacher and each student a client \`Repo\`
  (\`WebSocketClientAdapter\`, a \`NodeFSStorageAdapter\` of its own) that found the assignment. Stock
  has no authorization, so the server relays every change (one more hop than ours). A student
  counts a change once its handle emits \`change\` with the new title: stock has no SQL projection.
- **Pacing**: every student in sync (ours: each node's status in sync with the teacher and the
  assignment projected; stock: every client found it), ${SETTLE_MS / 1000} s at rest, then one change to warm up (shown apart),
  then the measured changes one at a time: the next is made once every student showed the last (or
  after ${ARRIVAL_DEADLINE_MS / 1000} s) and ${PAUSE_MS} ms more. The parent learns that from the students' processes over
  loopback HTTP (a request each, answered once all of its students show the change): it paces, it measures nothing.
- **Latency**: from the teacher's change call (in its process) to the moment each student shows the
  new title (in its process), both as \`performance.timeOrigin + performance.now()\`: one machine,
  one clock. p99 by nearest rank over every change and student.

${machineLines().join("\n")}
- Date: ${run.startedAt.toISOString()}
- Code measured: ${run.code}
- Load average when the run started: ${fmt(run.loadAtStart, 2)} (on a shared machine; a busy one makes the times noisier)

${markdownTable(measurement.rows, "Stock automerge-repo", "Ratio (ours better by)")}${FANOUT_MARKERS.end}
`;
}
