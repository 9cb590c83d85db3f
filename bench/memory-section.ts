import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { fmt, log, machineLines, markdownTable, range, runChild, slice, startService, type ChildOutcome, type Row, type RunInfo, type Service } from "./bench-kit.js";
import type { DeviceReport, MemoryBreakdown, MemoryFigures, SeatOutcome, SeatsReady, ServerMemoryReport } from "./memory-kit.js";
import { idsFileOf, sleep } from "./memory-kit.js";
import type { MemoryOursTask, MemorySeed } from "./memory-ours-child.js";
import type { Seat } from "./seat-kit.js";
import type { MemoryStockTask } from "./memory-stock-child.js";
import type { StockSeat } from "./stock-kit.js";

/**
 * The memory section of `npm run bench` (alone: `BENCH_ONLY=memory`): two product goals.
 * 1. A relay holding about 50,000 documents stays under 400 MB RSS while 30 students' nodes
 *    cold-sync what they may read from it and stay connected.
 * 2. A student device's RSS does not grow with the course beyond its working set: one student's
 *    node cold-syncs from a relay holding about 10,000 documents, and from one holding about 50,000.
 * Each beside stock automerge-repo (a server `Repo`, and client `Repo`s finding the same ids).
 * Every process is a fresh child with a time limit; one seeded store serves both figures.
 */

/**
 * The demo course at two sizes with the same assignments: 270 students and 100 assignments make
 * about 51,000 documents, 53 students about 10,200. A student's own work (a submission per
 * assignment, a grade per submitted one) is the same in both; the quick run is about 5,200 and 1,100.
 */
const COURSE = {
  full: { large: { students: 270, assignments: 100 }, small: { students: 53, assignments: 100 } },
  quick: { large: { students: 90, assignments: 30 }, small: { students: 18, assignments: 30 } },
};
/** Students connected to the relay at once (demo students 0 to 29), and the processes they run in (the machine has two cores). */
const PEERS = 30;
const PROCESSES = 2;
/** The demo student whose device is measured alone. */
const DEVICE_STUDENT = 0;
/** How long everyone stays connected once all are in sync, before the relay reports. */
const HOLD_MS = { full: 10_000, quick: 3_000 };
/** Concurrent `repo.find` calls of each stock client (as in the other sections). */
const STOCK_FIND_CONCURRENCY = 100;
/** The untimed build of the stock server's store grows Automerge's wasm memory first (the HAZARDS workaround), in processes of this many documents. */
const STOCK_SEED_PREGROW_MB = 768;
const STOCK_SEED_PART = 10_000;
const TARGET_RELAY_MB = 400;
const TARGET_GROWTH = 1.25;

/** Time limits per child, in seconds; the students' and clients' own deadlines come first. */
function limits(quick: boolean) {
  const classS = quick ? 120 : 300;
  const stockClassS = quick ? 120 : 360;
  const deviceS = quick ? 90 : 180;
  const holdS = (quick ? HOLD_MS.quick : HOLD_MS.full) / 1000;
  return {
    classS,
    stockClassS,
    deviceS,
    oursSeed: quick ? 180 : 900,
    stockSeedPart: 240,
    oursClass: { server: classS + holdS + 120, part: classS + holdS + 90 },
    stockClass: { server: stockClassS + holdS + 180, part: stockClassS + holdS + 150 },
    device: { server: deviceS + holdS + 120, device: deviceS + holdS + 60 },
  };
}

/** A run of the 30: the server's report (taken while every student was connected), and each process of students. */
interface ClassRun {
  server?: ServerMemoryReport;
  serverReadyMb?: number;
  parts: Array<{ ready?: SeatsReady; report?: MemoryFigures; failure?: string }>;
  failure?: string;
}

/** One device alone: its report and its server's. */
interface DeviceRun {
  device?: DeviceReport;
  server?: ServerMemoryReport;
  failure?: string;
}

/**
 * A child's report, if it is one. A long-lived child that died after its ready line leaves that
 * line last, which would pass for its report: such an outcome counts as a failure.
 */
function figuresOf<R extends MemoryFigures>(outcome: ChildOutcome<R>): { result?: R; failure?: string } {
  const result = outcome.result;
  if (result && typeof result.peakRssMb === "number" && result.atEnd !== undefined && result.atPeak !== undefined) return { result };
  return { failure: outcome.failure ?? "exited without its report" };
}

/**
 * Starts the server, then the students' processes together; once every process is ready (its
 * students done) everyone stays connected `holdMs`, the server reports, and the students stop.
 */
async function runClass(script: string, serverTask: object, partTask: (url: string, part: number) => object, limit: { server: number; part: number }, holdMs: number): Promise<ClassRun> {
  const server: Service<ServerMemoryReport> = await startService<ServerMemoryReport>(script, serverTask, limit.server);
  const url = server.ready?.["url"];
  if (typeof url !== "string") {
    await server.stop();
    return { parts: [], failure: `the server did not start: ${server.failure ?? "no url"}` };
  }
  const parts = await Promise.all(range(PROCESSES).map((part) => startService<MemoryFigures>(script, partTask(url, part), limit.part)));
  const partFailure = parts.find((part) => part.failure)?.failure;
  if (partFailure === undefined) await sleep(holdMs);
  // All asked to stop at once: each takes its figures as it is asked, while every connection is up
  // (a stock client whose server has gone can die of the reset before it reports).
  const [serverOutcome, ...partOutcomes] = await Promise.all([server.stop(), ...parts.map((part) => part.stop())]);
  const stopped = figuresOf(serverOutcome!);
  const reports = partOutcomes.map(figuresOf);
  const reportFailure = reports.find((r) => r.failure)?.failure;
  return {
    server: stopped.result,
    serverReadyMb: typeof server.ready?.["rssMb"] === "number" ? server.ready["rssMb"] : undefined,
    parts: parts.map((part, i) => ({ ready: part.ready as SeatsReady | undefined, report: reports[i]!.result, failure: part.failure ?? reports[i]!.failure })),
    failure: stopped.failure ? `the server ${stopped.failure}` : partFailure ? `a process of students ${partFailure}` : reportFailure ? `a process of students ${reportFailure}` : undefined,
  };
}

/** Starts the server, runs one device against it, stops the server. */
async function runDevice(script: string, serverTask: object, deviceTask: (url: string) => object, limit: { server: number; device: number }): Promise<DeviceRun> {
  const server = await startService<ServerMemoryReport>(script, serverTask, limit.server);
  const url = server.ready?.["url"];
  if (typeof url !== "string") {
    await server.stop();
    return { failure: `the server did not start: ${server.failure ?? "no url"}` };
  }
  const device = figuresOf(await runChild<DeviceReport>(script, deviceTask(url), limit.device));
  const stopped = figuresOf(await server.stop());
  return { device: device.result, server: stopped.result, failure: device.failure ? `the device ${device.failure}` : stopped.failure ? `the server ${stopped.failure}` : undefined };
}

export interface MemoryMeasurement {
  rows: Row[];
  /** The two courses, as the section's text describes them. */
  courses: { large: { students: number; assignments: number; documents?: number }; small: { students: number; assignments: number; documents?: number } };
  holdMs: number;
}

/** Runs the whole section; `path` names a file or directory under the run's work directory. */
export async function measureMemory(quick: boolean, path: (name: string) => string): Promise<MemoryMeasurement> {
  const course = quick ? COURSE.quick : COURSE.full;
  const holdMs = quick ? HOLD_MS.quick : HOLD_MS.full;
  const limit = limits(quick);
  const ours = "memory-ours-child.ts";
  const stock = "memory-stock-child.ts";
  const idsDir = path("memory-ids");
  mkdirSync(idsDir, { recursive: true });
  const remove = (...names: string[]) => {
    for (const name of names) rmSync(path(name), { recursive: true, force: true });
  };
  const studentDirs = range(PEERS).map((i) => `memory-student-${i}`);
  const stockClientDirs = range(PEERS).map((i) => `memory-stock-client-${i}`);

  // ---- seed both courses: one store serves both figures -------------------------------------
  log(`memory: seed the relay with the demo course (${course.large.students} students, ${course.large.assignments} assignments) and export it for the stock server (untimed)`);
  const seatDirs = range(PEERS).map((index) => ({ index, dataDir: path(studentDirs[index]!) }));
  const largeSeeded = await runChild<MemorySeed>(
    ours,
    { task: "seed", relayDir: path("memory-relay"), ...course.large, exportFile: path("memory-export.txt"), seats: [...seatDirs, { index: DEVICE_STUDENT, dataDir: path("memory-device-large") }] } satisfies MemoryOursTask,
    limit.oursSeed,
  );
  log(`memory: seed a smaller relay (${course.small.students} students, ${course.small.assignments} assignments) for the device figure (untimed)`);
  const smallSeeded = await runChild<MemorySeed>(
    ours,
    { task: "seed", relayDir: path("memory-relay-small"), ...course.small, exportFile: path("memory-export-small.txt"), seats: [{ index: DEVICE_STUDENT, dataDir: path("memory-device-small") }] } satisfies MemoryOursTask,
    limit.oursSeed,
  );
  const large = largeSeeded.result;
  const small = smallSeeded.result;

  // ---- 1. ours: the relay with 30 students ---------------------------------------------------
  let oursClass: ClassRun = { parts: [], failure: `the relay's course was not built: ${largeSeeded.failure}` };
  if (large) {
    log(`memory: ours: ${PEERS} students' nodes (${PROCESSES} processes) cold-sync from the relay holding ${fmt(large.documents)} documents, then stay connected ${holdMs / 1000} s`);
    const seats: Seat[] = seatDirs.map((seat, i) => ({ ...seat, token: large.tokens[i]! }));
    oursClass = await runClass(
      ours,
      { task: "relay", relayDir: path("memory-relay") } satisfies MemoryOursTask,
      (url, part) => ({ task: "students", relayUrl: url, seats: slice(seats, part, PROCESSES), idsDir, deadlineMs: limit.classS * 1000 }) satisfies MemoryOursTask,
      limit.oursClass,
      holdMs,
    );
  }
  remove(...studentDirs);

  // ---- 2. ours: one student's device, small course and large --------------------------------
  const oursDevice = async (seeded: MemorySeed | undefined, failure: string | undefined, relay: string, dir: string, idsName: string): Promise<DeviceRun> => {
    if (!seeded) return { failure: `the relay's course was not built: ${failure}` };
    log(`memory: ours: student ${DEVICE_STUDENT}'s device alone cold-syncs from a relay holding ${fmt(seeded.documents)} documents`);
    const run = await runDevice(
      ours,
      { task: "relay", relayDir: path(relay) } satisfies MemoryOursTask,
      (url) => ({ task: "device", relayUrl: url, seat: { index: DEVICE_STUDENT, dataDir: path(dir), token: seeded.tokens[seeded.tokens.length - 1]! }, idsFile: `${idsDir}/${idsName}`, deadlineMs: limit.deviceS * 1000, holdMs }) satisfies MemoryOursTask,
      limit.device,
    );
    remove(dir);
    return run;
  };
  const oursSmall = await oursDevice(small, smallSeeded.failure, "memory-relay-small", "memory-device-small", "device-small.txt");
  const oursLarge = await oursDevice(large, largeSeeded.failure, "memory-relay", "memory-device-large", "device-large.txt");
  remove("memory-relay", "memory-relay-small");

  // ---- stock: the servers' stores, imported from our export -----------------------------------
  const stockSeed = async (seeded: MemorySeed | undefined, dir: string, exportName: string): Promise<{ ms: number; failure?: string }> => {
    if (!seeded) return { ms: 0, failure: "our course was not built" };
    let ms = 0;
    for (let from = 0; from < seeded.documents; from += STOCK_SEED_PART) {
      const to = Math.min(seeded.documents, from + STOCK_SEED_PART);
      const part = await runChild<{ documents: number; ms: number }>(stock, { task: "seed", dir: path(dir), exportFile: path(exportName), from, to, preGrowMb: STOCK_SEED_PREGROW_MB } satisfies MemoryStockTask, limit.stockSeedPart);
      ms += part.wallMs;
      if (!part.result) return { ms, failure: `importing documents ${from} to ${to}: ${part.failure}` };
    }
    return { ms };
  };
  log(`memory: stock: import our relay's ${large ? fmt(large.documents) : "?"} documents into the stock server's store (untimed, in processes of ${fmt(STOCK_SEED_PART)})`);
  const stockLargeSeed = await stockSeed(large, "memory-stock-server", "memory-export.txt");
  const stockSmallSeed = await stockSeed(small, "memory-stock-server-small", "memory-export-small.txt");
  remove("memory-export.txt", "memory-export-small.txt");

  // ---- 1. stock: the server with 30 clients --------------------------------------------------
  let stockClass: ClassRun = { parts: [], failure: `the stock server's store was not built: ${stockLargeSeed.failure}` };
  const oursSeats = oursClass.parts.flatMap((part) => part.ready?.seats ?? []);
  if (stockLargeSeed.failure === undefined) {
    if (oursSeats.length < PEERS) stockClass = { parts: [], failure: "not run: our students' document lists are missing" };
    else {
      log(`memory: stock: ${PEERS} client Repos (${PROCESSES} processes) each find what our node of the same student held, from a stock server holding the same ${fmt(large!.documents)} documents (expect minutes)`);
      const seats: StockSeat[] = range(PEERS).map((index) => ({ index, dir: path(stockClientDirs[index]!), idsFile: idsFileOf(idsDir, index) }));
      stockClass = await runClass(
        stock,
        { task: "server", dir: path("memory-stock-server") } satisfies MemoryStockTask,
        (url, part) => ({ task: "clients", serverUrl: url, seats: slice(seats, part, PROCESSES), concurrency: STOCK_FIND_CONCURRENCY, deadlineMs: limit.stockClassS * 1000 }) satisfies MemoryStockTask,
        limit.stockClass,
        holdMs,
      );
    }
  }
  remove(...stockClientDirs);

  // ---- 2. stock: one client alone, small course and large -------------------------------------
  const stockDevice = async (seed: { failure?: string }, ran: DeviceRun, server: string, dir: string, idsName: string): Promise<DeviceRun> => {
    if (seed.failure !== undefined) return { failure: `the stock server's store was not built: ${seed.failure}` };
    if (!ran.device) return { failure: "not run: our student's document list is missing" };
    log(`memory: stock: student ${DEVICE_STUDENT}'s client alone finds the ${fmt(ran.device.documents)} documents our node held`);
    const run = await runDevice(
      stock,
      { task: "server", dir: path(server) } satisfies MemoryStockTask,
      (url) => ({ task: "device", serverUrl: url, seat: { index: DEVICE_STUDENT, dir: path(dir), idsFile: `${idsDir}/${idsName}` }, concurrency: STOCK_FIND_CONCURRENCY, deadlineMs: limit.deviceS * 1000, holdMs }) satisfies MemoryStockTask,
      limit.device,
    );
    remove(dir);
    return run;
  };
  const stockSmall = await stockDevice(stockSmallSeed, oursSmall, "memory-stock-server-small", "memory-stock-device-small", "device-small.txt");
  const stockLarge = await stockDevice(stockLargeSeed, oursLarge, "memory-stock-server", "memory-stock-device-large", "device-large.txt");
  remove("memory-stock-server", "memory-stock-server-small", "memory-ids");

  const measured: Measured = { large, small, largeFailure: largeSeeded.failure, oursClass, stockClass, oursSmall, oursLarge, stockSmall, stockLarge, stockSeedMs: stockLargeSeed.ms, holdMs };
  // Everything measured, beside the run's work directory (which goes when the run ends): the report can be rendered again from it.
  writeFileSync(path(`../memory-measured${quick ? "-quick" : ""}.json`), `${JSON.stringify(measured, null, 2)}\n`);
  return measurementOf(measured, quick);
}

/** The rows and the course sizes the report shows, from what a run measured. */
export function measurementOf(measured: Measured, quick: boolean): MemoryMeasurement {
  const course = quick ? COURSE.quick : COURSE.full;
  return { rows: memoryRows(measured), courses: { large: { ...course.large, documents: measured.large?.documents }, small: { ...course.small, documents: measured.small?.documents } }, holdMs: measured.holdMs };
}

// ---- the rows ----------------------------------------------------------------------------------

const seconds = (ms: number, digits = 1) => `${fmt(ms / 1000, digits)} s`;
const times = (ratio: number) => `${fmt(ratio, ratio >= 10 ? 0 : ratio >= 1 ? 1 : 2)}x`;
const range2 = (values: number[], unit: (n: number) => string) => {
  if (values.length === 0) return "?";
  const min = Math.min(...values);
  const max = Math.max(...values);
  return min === max ? unit(min) : `${unit(min)} to ${unit(max)}`;
};

/** Where the memory was: V8's heap, memory outside it (Buffers, wasm), and the rest (native allocations, code, and memory freed but not yet returned to the system). */
function breakdownText(b: MemoryBreakdown): string {
  const native = Math.max(0, b.rss - b.heapTotal - b.external);
  return `RSS ${fmt(b.rss)} MB = V8 heap ${fmt(b.heapTotal)} MB (${fmt(b.heapUsed)} in use) + external ${fmt(b.external)} MB (array buffers ${fmt(b.arrayBuffers)}) + the rest ${fmt(native)} MB (native allocations, code, and freed memory still resident)`;
}

/** A line stock logged, without its stack trace and the message it quotes. */
function loggedText(line: string | undefined): string {
  if (line === undefined) return "?";
  const text = line.split(" at ")[0]!.replace(/\{ err: /, "").trim();
  return `"${text}"`;
}

/** Stock finds that failed as unavailable, and how many of those documents arrived once the client had redialed. */
function failureText(failures: number, recovered: number, first: string | undefined): string {
  return `${fmt(failures)} finds failed (the first: ${first ?? "?"}), and ${fmt(recovered)} of those documents arrived later, the client asking again by itself`;
}

function byKindText(byKind: Record<string, number>): string {
  return Object.entries(byKind)
    .sort((a, b) => b[1] - a[1])
    .map(([kind, count]) => `${fmt(count)} ${kind}`)
    .join(", ");
}

/** Everything a run measured (written to `bench/.work/memory-measured.json`). */
export interface Measured {
  large: MemorySeed | undefined;
  small: MemorySeed | undefined;
  largeFailure: string | undefined;
  oursClass: ClassRun;
  stockClass: ClassRun;
  oursSmall: DeviceRun;
  oursLarge: DeviceRun;
  stockSmall: DeviceRun;
  stockLarge: DeviceRun;
  stockSeedMs: number;
  holdMs: number;
}

/** The seats of a class run, and whether every one of the 30 was done. */
function seatsOf(run: ClassRun): { seats: SeatOutcome[]; allDone: boolean } {
  const seats = run.parts.flatMap((part) => part.ready?.seats ?? []);
  return { seats, allDone: seats.length === PEERS && seats.every((seat) => seat.done) };
}

function classNotes(side: "ours" | "stock", run: ClassRun): string[] {
  const notes: string[] = [];
  const { seats } = seatsOf(run);
  const who = side === "ours" ? "relay" : "server";
  if (seats.length > 0) {
    const done = seats.filter((seat) => seat.done);
    const readyMs = Math.max(...run.parts.map((part) => part.ready?.readyMs ?? 0));
    if (side === "ours") {
      notes.push(
        `ours: ${PEERS} students' nodes (demo students 0 to ${PEERS - 1}, ${PEERS / PROCESSES} to a process, each with its own data directory and a token the relay signed for its key) dialed the relay at once; ${done.length} of ${seats.length} were in sync (node.status()) within the deadline, the last after ${seconds(readyMs)} (each: ${range2(seats.map((s) => s.ms), (ms) => seconds(ms))}); each student's store then held ${range2(seats.map((s) => s.documents), (n) => fmt(n))} documents`,
      );
    } else {
      const failures = seats.reduce((sum, seat) => sum + (seat.failures ?? 0), 0);
      const recovered = seats.reduce((sum, seat) => sum + (seat.recovered ?? 0), 0);
      const drops = seats.reduce((sum, seat) => sum + (seat.drops ?? 0), 0);
      const firstFailure = seats.find((seat) => seat.firstFailure)?.firstFailure;
      notes.push(
        `stock: ${PEERS} client Repos (${PEERS / PROCESSES} to a process, each with its own NodeFS directory) were each told the ids our node of the same student held (${range2(seats.map((s) => s.expected ?? 0), (n) => fmt(n))}) and found them ${STOCK_FIND_CONCURRENCY} at a time, all clients at once: ${done.length} of ${seats.length} found every one${done.length < seats.length ? " before the deadline" : ""}, the last after ${seconds(readyMs)} (each: ${range2(seats.map((s) => s.ms), (ms) => seconds(ms))}); ${fmt(seats.reduce((sum, s) => sum + s.documents, 0))} of ${fmt(seats.reduce((sum, s) => sum + (s.expected ?? 0), 0))} documents found${failures > 0 ? `; ${failureText(failures, recovered, firstFailure)}` : ""}${drops > 0 ? `; clients' connections to the server dropped ${fmt(drops)} time${drops === 1 ? "" : "s"} in all, and each time the client redialed by itself` : "; no client's connection dropped"}`,
      );
    }
  }
  if (run.server) {
    const s = run.server;
    notes.push(
      `${side}: the ${who}'s RSS once ready (${side === "ours" ? "store open" : "listening"}, no client) ${fmt(s.readyRssMb)} MB; peak ${fmt(s.peakRssMb)} MB; at the sample nearest the peak (${seconds(s.atPeakMs)} into its life): ${breakdownText(s.atPeak)}${s.maxHeapTotal !== undefined ? `; the V8 heap at its largest (samples every 250 ms): ${fmt(s.maxHeapTotal)} MB allocated, ${fmt(s.maxHeapUsed)} MB in use` : ""}`,
    );
  }
  if (side === "stock") {
    const logged = [...run.parts.map((part) => ({ count: part.ready?.logged ?? 0, first: part.ready?.firstLogged })), { count: run.server?.logged ?? 0, first: run.server?.firstLogged }];
    const total = logged.reduce((sum, l) => sum + l.count, 0);
    if (total > 0) notes.push(`stock: the Repos logged ${fmt(total)} error${total === 1 ? "" : "s"} (the server ${fmt(run.server?.logged ?? 0)}); the first: ${loggedText(logged.find((l) => l.first)?.first)}`);
  }
  const partPeaks = run.parts.map((part) => (part.report ? `${fmt(part.report.peakRssMb)} MB` : (part.failure ?? "?")));
  if (partPeaks.length > 0) notes.push(`${side}: peak RSS of the ${PROCESSES} processes of students: ${partPeaks.join(", ")} (${PEERS / PROCESSES} ${side === "ours" ? "nodes" : "Repos"} each; for information)`);
  if (run.failure) notes.push(`${side}: ${run.failure}`);
  return notes;
}

function deviceNotes(side: "ours" | "stock", run: DeviceRun, documents: number | undefined): string[] {
  const d = run.device;
  if (!d) return run.failure ? [`${side}: ${run.failure}`] : [];
  const course = documents !== undefined ? `course of ${fmt(documents)} documents` : "course";
  const what =
    side === "ours"
      ? `ours, ${course}: the node ${d.done ? "was in sync and projected" : "was not in sync"} after ${seconds(d.ms)}, its store holding ${fmt(d.documents)} documents (${byKindText(d.byKind ?? {})})`
      : `stock, ${course}: the client found ${fmt(d.documents)} of ${fmt(d.expected ?? 0)} documents${d.done ? "" : " (did not finish)"} in ${seconds(d.ms)}${d.failures ? `; ${failureText(d.failures, d.recovered ?? 0, d.firstFailure)}` : ""}${d.drops ? `; its connection dropped ${fmt(d.drops)} time${d.drops === 1 ? "" : "s"}` : ""}${d.logged ? `; it logged ${fmt(d.logged)} error${d.logged === 1 ? "" : "s"} (the first: ${loggedText(d.firstLogged)})` : ""}`;
  return [`${what}; RSS before it started ${fmt(d.readyRssMb)} MB, peak ${fmt(d.peakRssMb)} MB (${seconds(d.atPeakMs)} in), at the end ${fmt(d.atEnd.rss)} MB; at the end: ${breakdownText(d.atEnd)}`];
}

function memoryRows(m: Measured): Row[] {
  const rows: Row[] = [];
  const largeDocs = m.large ? fmt(m.large.documents) : "?";
  const smallDocs = m.small ? fmt(m.small.documents) : "?";

  // ---- 1. the relay with 30 students ----------------------------------------------------------
  const oursSeats = seatsOf(m.oursClass);
  const stockSeats = seatsOf(m.stockClass);
  const oursPeak = m.oursClass.server?.peakRssMb;
  const stockPeak = m.stockClass.server?.peakRssMb;
  const oursEnd = m.oursClass.server?.atEnd.rss;
  const stockEnd = m.stockClass.server?.atEnd.rss;
  const stockPartial = (value: number) => `${fmt(value)}${stockSeats.allDone ? "" : " (did not finish)"}`;
  const ratio = (ours: number | undefined, stock: number | undefined) => (ours !== undefined && stock !== undefined ? `${times(stock / ours)}${stockSeats.allDone ? "" : " (at least)"}` : "-");
  const oursCell = (value: number | undefined) => (value !== undefined ? `${fmt(value)}${oursSeats.allDone ? "" : " (not all in sync)"}` : (m.oursClass.failure ?? "-"));
  const stockCell = (value: number | undefined) => (value !== undefined ? stockPartial(value) : (m.stockClass.failure ?? "-"));
  const courseNotes: string[] = [];
  if (m.large) {
    courseNotes.push(
      `the course: the demo course scaled to its students and assignments, ${largeDocs} documents (${byKindText(m.large.byKind)}); our relay's store ${fmt(m.large.diskBytes / 1e6)} MB on disk, seeded in ${seconds(m.large.seedMs)} and exported in ${seconds(m.large.exportMs)} (untimed); stock's server store imported from that export in ${seconds(m.stockSeedMs)} (untimed, with the wasm pre-grow workaround)`,
    );
  } else if (m.largeFailure) courseNotes.push(`the course was not built: ${m.largeFailure}`);
  rows.push({
    figure: `Relay peak RSS, ${largeDocs} documents, ${PEERS} students syncing (MB)`,
    ours: oursCell(oursPeak),
    stock: stockCell(stockPeak),
    ratio: ratio(oursPeak, stockPeak),
    target: `ours < ${TARGET_RELAY_MB} MB`,
    met: oursPeak !== undefined && oursSeats.allDone && oursPeak < TARGET_RELAY_MB ? "yes" : "no",
    notes: [...courseNotes, ...classNotes("ours", m.oursClass), ...classNotes("stock", m.stockClass)],
  });
  const endNotes: string[] = [];
  const afterGc = (s: ServerMemoryReport) => {
    if (!s.afterGc) return "";
    const kept = s.afterGc.rss >= 0.95 * s.atEnd.rss;
    return `; then a full garbage collection (after the figures were taken) left ${fmt(s.afterGc.heapUsed)} MB of the V8 heap in use (of ${fmt(s.afterGc.heapTotal)} MB) and RSS at ${fmt(s.afterGc.rss)} MB${kept ? ": what it freed was not returned to the system" : ""}`;
  };
  if (m.oursClass.server) endNotes.push(`ours: after all ${PEERS} were in sync and stayed connected ${seconds(m.holdMs, 0)} more, with ${m.oursClass.server.peers ?? "?"} peers connected: ${breakdownText(m.oursClass.server.atEnd)}${afterGc(m.oursClass.server)}`);
  if (m.stockClass.server) endNotes.push(`stock: the same moment: ${breakdownText(m.stockClass.server.atEnd)}${afterGc(m.stockClass.server)}`);
  rows.push({
    figure: `Relay RSS at the end, ${PEERS} students connected (MB)`,
    ours: oursCell(oursEnd),
    stock: stockCell(stockEnd),
    ratio: ratio(oursEnd, stockEnd),
    target: `ours < ${TARGET_RELAY_MB} MB`,
    met: oursEnd !== undefined && oursSeats.allDone && oursEnd < TARGET_RELAY_MB ? "yes" : "no",
    notes: endNotes,
  });

  // ---- 2. one student's device, small course and large ---------------------------------------------
  const devicePeak = (run: DeviceRun) => (run.device?.done ? run.device.peakRssMb : undefined);
  const deviceCell = (run: DeviceRun) => (run.device ? `${fmt(run.device.peakRssMb)}${run.device.done ? "" : " (did not finish)"}` : (run.failure ?? "-"));
  const deviceRatio = (ours: DeviceRun, stock: DeviceRun) => (ours.device && stock.device ? `${times(stock.device.peakRssMb / ours.device.peakRssMb)}${stock.device.done ? "" : " (at least)"}` : "-");
  rows.push({
    figure: `Student device peak RSS, course of ${smallDocs} documents (MB)`,
    ours: deviceCell(m.oursSmall),
    stock: deviceCell(m.stockSmall),
    ratio: deviceRatio(m.oursSmall, m.stockSmall),
    target: "(information)",
    met: "n/a",
    notes: [...deviceNotes("ours", m.oursSmall, m.small?.documents), ...deviceNotes("stock", m.stockSmall, m.small?.documents)],
  });
  rows.push({
    figure: `Student device peak RSS, course of ${largeDocs} documents (MB)`,
    ours: deviceCell(m.oursLarge),
    stock: deviceCell(m.stockLarge),
    ratio: deviceRatio(m.oursLarge, m.stockLarge),
    target: "(information)",
    met: "n/a",
    notes: [...deviceNotes("ours", m.oursLarge, m.large?.documents), ...deviceNotes("stock", m.stockLarge, m.large?.documents)],
  });
  const growth = (smallRun: DeviceRun, largeRun: DeviceRun) => {
    const a = devicePeak(smallRun);
    const b = devicePeak(largeRun);
    return a !== undefined && b !== undefined ? b / a : undefined;
  };
  const oursGrowth = growth(m.oursSmall, m.oursLarge);
  const stockGrowth = growth(m.stockSmall, m.stockLarge);
  const growthNotes: string[] = [];
  const s = m.oursSmall.device;
  const l = m.oursLarge.device;
  if (m.small && m.large && s && l) {
    const roster = (run: DeviceReport) => (run.byKind?.["user"] ?? 0) + (run.byKind?.["enrollment"] ?? 0);
    const own = (run: DeviceReport) => (run.byKind?.["submission"] ?? 0) + (run.byKind?.["grade"] ?? 0);
    const courseGrowth = m.large.documents - m.small.documents;
    const othersShare = courseGrowth > 0 ? (courseGrowth - (l.documents - s.documents)) / courseGrowth : 0;
    growthNotes.push(
      `the course grows ${times(m.large.documents / m.small.documents)} (${smallDocs} to ${largeDocs} documents: more students, the same ${m.small.byKind["assignment"] ?? "?"} assignments), the student's readable set only ${times(l.documents / s.documents)} (${fmt(s.documents)} to ${fmt(l.documents)}): its own submissions and grades (${fmt(own(s))} and ${fmt(own(l))}: one per assignment, a grade per submitted one) and what the course publishes (assignments, modules, pages, topics and posts) are the same in both; only the roster grows, a user and an enrollment per classmate (${fmt(roster(s))} to ${fmt(roster(l))} documents). The rest, ${fmt(othersShare * 100)}% of the course's growth (the other students' submissions, grades and catalog partitions), never reaches the device`,
    );
    growthNotes.push(`ours: peak RSS above the process's RSS before the node started: ${fmt(s.peakRssMb - s.readyRssMb)} MB and ${fmt(l.peakRssMb - l.readyRssMb)} MB`);
  }
  const ss = m.stockSmall.device;
  const sl = m.stockLarge.device;
  if (ss && sl) growthNotes.push(`stock: the client is told the same ids as our node held, so its working set grows the same way; peak RSS above its RSS before the Repo was made: ${fmt(ss.peakRssMb - ss.readyRssMb)} MB and ${fmt(sl.peakRssMb - sl.readyRssMb)} MB`);
  rows.push({
    figure: `Student device RSS growth, ${smallDocs} to ${largeDocs} documents`,
    ours: oursGrowth !== undefined ? `${fmt(oursGrowth, 2)}x` : (m.oursLarge.failure ?? m.oursSmall.failure ?? "did not finish"),
    stock: stockGrowth !== undefined ? `${fmt(stockGrowth, 2)}x` : (m.stockLarge.failure ?? m.stockSmall.failure ?? "did not finish"),
    ratio: "-",
    target: `ours < ${fmt(TARGET_GROWTH, 2)}x`,
    met: oursGrowth !== undefined && oursGrowth < TARGET_GROWTH ? "yes" : "no",
    notes: growthNotes,
  });
  return rows;
}

// ---- the report ------------------------------------------------------------------------------

export const MEMORY_MARKERS = {
  start: "<!-- memory: written by npm run bench; BENCH_ONLY=memory rewrites only this section -->",
  end: "<!-- memory end -->",
};

/** The memory section, with the machine and code it was measured on: it can be measured apart from the rest. */
export function renderMemorySection(measurement: MemoryMeasurement, run: RunInfo): string {
  const { large, small } = measurement.courses;
  const docs = (n: number | undefined) => (n !== undefined ? fmt(n) : "?");
  return `${MEMORY_MARKERS.start}
## Memory

Two goals: a relay holding a large course stays under ${TARGET_RELAY_MB} MB RSS while ${PEERS} students sync from it and
stay connected; and a student's device does not grow with the size of the course beyond what the
student may read. Both courses are the demo course (\`ordo demo\`) with the same ${large.assignments} assignments:
${large.students} students make ${docs(large.documents)} documents, ${small.students} students ${docs(small.documents)}. Every process is a fresh child
on loopback; peak RSS is the larger of \`process.memoryUsage.rss()\` sampled every 20 ms and the
kernel's \`maxRSS\`, and the notes break the RSS down (\`process.memoryUsage()\`, sampled every 250 ms).

- **Relay with ${PEERS} students**: ours, \`ordo relay\` as \`SyncNode\` (mode relay, its own authority) on the
  large course; ${PEERS} students' nodes (demo students 0 to ${PEERS - 1}), ${PEERS / PROCESSES} to a process in ${PROCESSES} processes, each with
  its own data directory and a student's token the relay signed for its key, dial it at once and
  cold-sync what they may read (the published course, the roster, their own submissions and grades);
  once every one is in sync (\`node.status()\`) all stay connected ${fmt(measurement.holdMs / 1000)} s more, and the relay reports its
  peak and its RSS then. Stock: a server \`Repo\` (\`WebSocketServerAdapter\`, \`NodeFSStorageAdapter\`,
  \`sharePolicy\` false, as the stock sync server runs) holding the same documents under the same ids,
  and ${PEERS} client \`Repo\`s in ${PROCESSES} processes, each with its own \`NodeFSStorageAdapter\`, each told the ids our node of
  the same student held after its sync (a stock client cannot ask what it may read) and finding them
  ${STOCK_FIND_CONCURRENCY} at a time, all clients at once, then \`repo.flush()\`; the same hold, then the server reports.
  A stock run that reaches its deadline reports what it had (marked "did not finish").
- **Student device**: one student's node (demo student ${DEVICE_STUDENT}) alone in a fresh process cold-syncs from
  a relay holding the small course, and another from the relay holding the large one, until in sync
  and projected, then stays open ${fmt(measurement.holdMs / 1000)} s; the figure is its peak RSS. Stock: a client \`Repo\` alone
  finds the ids our node held, from a stock server holding that course. Growth = peak RSS on the
  large course / on the small.
- **Stock as shipped** for every figure. The HAZARDS wasm pre-grow workaround is used only to build
  the stock servers' stores (untimed, in processes of ${fmt(STOCK_SEED_PART)} documents).

${machineLines().join("\n")}
- Date: ${run.startedAt.toISOString()}
- Code measured: ${run.code}
- Load average when the run started: ${fmt(run.loadAtStart, 2)} (on a shared machine; memory figures vary little with load, times more)

${markdownTable(measurement.rows, "Stock automerge-repo", "Ratio (ours better by)")}${MEMORY_MARKERS.end}
`;
}
