import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { fmt, log, machineLines, markdownTable, range, runChild, slice, startService, type ChildOutcome, type Row, type RunInfo, type Service } from "./bench-kit.js";
import { wallNow } from "./child-kit.js";
import { idsFileOf, sleep } from "./memory-kit.js";
import type { MemoryOursTask, MemorySeed } from "./memory-ours-child.js";
import type { MemoryStockTask } from "./memory-stock-child.js";
import { divergence, rssSlopePerMinute, sampleProcess, teacherIdsFile, watchProcess, type ProcessSample, type SoakClientsReport, type SoakPlan, type SoakReady, type SoakServerReport } from "./soak-kit.js";
import type { OursSoakSeat, SoakOursTask } from "./soak-ours-child.js";
import type { SoakStockTask, StockSoakSeat } from "./soak-stock-child.js";

/**
 * The soak section of `npm run bench` (alone: `BENCH_ONLY=soak`): 200 students' clients and a
 * teacher's stay connected to one relay for 15 minutes, editing, grading and reconnecting the
 * whole time. The relay's RSS must not creep (slope under 1 MB/min over the 10 minutes after a
 * 5-minute warm-up), its open files must come back to where they were, and every client must
 * end with the relay's heads.
 * Beside it, the same load from stock automerge-repo clients against a stock server.
 */

const SIZE = {
  // Five minutes fill the relay's bounded caches (documents, SQLite's pages, V8's heap); the ten after are measured.
  full: { students: 200, processes: 4, soakMs: 900_000, warmupMs: 300_000 },
  quick: { students: 20, processes: 2, soakMs: 60_000, warmupMs: 20_000 },
};
/**
 * A student edits its own submission about every 30 s and restarts its app about every 4
 * minutes; the teacher changes a grade about every second: at 200 students, some 7 edits
 * and a reconnection a second, each edit reaching the teacher.
 */
const PLAN: SoakPlan = { assignments: 5, editEveryMs: 30_000, reconnectEveryMs: 240_000, gradeEveryMs: 1_000, seed: 7 };
/** After the window, everyone stays connected and still this long before the servers' files are counted again. */
const QUIET_MS = 30_000;
const SAMPLE_EVERY_MS = 5_000;
const STOCK_FIND_CONCURRENCY = 100;
const TARGET_SLOPE_MB_PER_MIN = 1;

function limits(soakMs: number) {
  const coldS = 300;
  const settleS = 120;
  const lifeS = coldS + (soakMs + QUIET_MS) / 1000 + settleS + 120;
  return { coldS, settleS, seed: 600, stockSeed: 300, server: lifeS + 60, part: lifeS };
}

/** One side's soak, as the parent saw it and as the children reported it. */
interface SoakRun {
  ready: SoakReady[];
  /** The server's RSS and open files over the whole run, one sample every SAMPLE_EVERY_MS. */
  samples: ProcessSample[];
  /** The server with every client connected and in sync, before the window and after it (and the quiet). */
  before?: ProcessSample;
  after?: ProcessSample;
  /** The processes of clients' RSS, summed, at the same two moments. */
  clientsMb: { before: number; after: number };
  window?: { startAt: number; endAt: number };
  reports: SoakClientsReport[];
  server?: SoakServerReport;
  failure?: string;
}

/** A run with nothing measured yet (or never started, for `failure`). */
function emptyRun(failure?: string): SoakRun {
  return { ready: [], samples: [], clientsMb: { before: 0, after: 0 }, reports: [], failure };
}

/** Starts the server and the processes of clients, opens the window once all are ready, and collects everything. */
async function runSoak(script: string, serverTask: object, partTask: (url: string, part: number, goFile: string) => object, processes: number, soakMs: number, goFile: string): Promise<SoakRun> {
  const limit = limits(soakMs);
  const run = emptyRun();
  const server: Service<SoakServerReport> = await startService<SoakServerReport>(script, serverTask, limit.server);
  const url = server.ready?.["url"];
  if (typeof url !== "string" || server.pid === undefined) {
    await server.stop();
    return { ...run, failure: `the server did not start: ${server.failure ?? "no url"}` };
  }
  const watch = watchProcess(server.pid, SAMPLE_EVERY_MS);
  const parts = await Promise.all(range(processes).map((part) => startService<SoakClientsReport>(script, partTask(url, part, goFile), limit.part)));
  run.ready = parts.flatMap((part) => (part.ready ? [part.ready as unknown as SoakReady] : []));
  const clientsMb = () => parts.reduce((sum, part) => sum + (part.pid !== undefined ? (sampleProcess(part.pid)?.rssMb ?? 0) : 0), 0);
  const started = parts.find((part) => part.failure);
  if (started === undefined) {
    run.before = sampleProcess(server.pid);
    run.clientsMb.before = clientsMb();
    run.window = { startAt: wallNow() + 1_000, endAt: wallNow() + 1_000 + soakMs };
    writeFileSync(goFile, JSON.stringify(run.window));
    await sleep(1_000 + soakMs + QUIET_MS);
    run.after = sampleProcess(server.pid);
    run.clientsMb.after = clientsMb();
  }
  watch.stop();
  run.samples = watch.samples;
  // The clients first: each waits until it is in sync again and reports its heads, then the server reports its own.
  const outcomes = await Promise.all(parts.map((part) => part.stop()));
  const stopped = await server.stop();
  const reportOf = <R>(outcome: ChildOutcome<R>, what: string) => {
    if (outcome.result && !("ready" in (outcome.result as object))) return outcome.result;
    run.failure ??= `${what} ${outcome.failure ?? "exited without its report"}`;
    return undefined;
  };
  run.reports = outcomes.flatMap((outcome) => reportOf(outcome, "a process of clients") ?? []);
  run.server = reportOf(stopped, "the server");
  if (started) run.failure = `a process of clients did not start: ${started.failure}`;
  return run;
}

export interface SoakMeasurement {
  rows: Row[];
  students: number;
  documents?: number;
  soakMs: number;
  warmupMs: number;
}

/** Runs the whole section; `path` names a file or directory under the run's work directory. */
export async function measureSoak(quick: boolean, path: (name: string) => string): Promise<SoakMeasurement> {
  const size = quick ? SIZE.quick : SIZE.full;
  const limit = limits(size.soakMs);
  const idsDir = path("soak-ids");
  mkdirSync(idsDir, { recursive: true });
  const studentDirs = range(size.students).map((i) => path(`soak-student-${i}`));
  const teacherDir = path("soak-teacher");

  log(`soak: seed the relay with the demo course (${size.students} students, ${PLAN.assignments} assignments) and export it for the stock server (untimed)`);
  const keys = [...studentDirs.map((dataDir, index) => ({ index, dataDir, role: "student" as const })), { index: 0, dataDir: teacherDir, role: "teacher" as const }];
  const seeded = await runChild<MemorySeed>(
    "memory-ours-child.ts",
    { task: "seed", relayDir: path("soak-relay"), students: size.students, assignments: PLAN.assignments, exportFile: path("soak-export.txt"), seats: keys } satisfies MemoryOursTask,
    limit.seed,
  );
  const seed = seeded.result;
  if (!seed) return { rows: [failedRow(`the relay's course was not built: ${seeded.failure}`)], students: size.students, soakMs: size.soakMs, warmupMs: size.warmupMs };
  const stockSeeded = await runChild<{ documents: number }>(
    "memory-stock-child.ts",
    { task: "seed", dir: path("soak-stock-server"), exportFile: path("soak-export.txt"), from: 0, to: seed.documents, preGrowMb: 0 } satisfies MemoryStockTask,
    limit.stockSeed,
  );

  // The teacher rides in the first process; the students are spread over all of them.
  const seats: OursSoakSeat[] = keys.map((key, i) => ({ ...key, token: seed.tokens[i]! }));
  const partSeats = <S extends { role: string }>(all: S[], part: number): S[] => [...(part === 0 ? all.filter((s) => s.role === "teacher") : []), ...slice(all.filter((s) => s.role === "student"), part, size.processes)];
  const deadlineMs = limit.coldS * 1000;

  log(`soak: ours: ${size.students} students' nodes and a teacher's (${size.processes} processes) against the relay holding ${fmt(seed.documents)} documents, ${size.soakMs / 60_000} minutes`);
  const ours = await runSoak(
    "soak-ours-child.ts",
    { task: "relay", relayDir: path("soak-relay") } satisfies SoakOursTask,
    (url, part, goFile) => ({ task: "clients", relayUrl: url, seats: partSeats(seats, part), idsDir, goFile, plan: PLAN, deadlineMs }) satisfies SoakOursTask,
    size.processes,
    size.soakMs,
    path("soak-go-ours"),
  );
  for (const dir of [...studentDirs, teacherDir, path("soak-relay"), path("soak-export.txt")]) rmSync(dir, { recursive: true, force: true });

  let stock: SoakRun;
  if (!stockSeeded.result) stock = emptyRun(`the stock server's store was not built: ${stockSeeded.failure}`);
  else {
    log(`soak: stock: the same load from ${size.students} students' client Repos and a teacher's against a stock server holding the same documents`);
    const stockSeats: StockSoakSeat[] = keys.map((key) => ({ index: key.index, role: key.role, dir: path(`soak-stock-${key.role}-${key.index}`), idsFile: key.role === "teacher" ? teacherIdsFile(idsDir) : idsFileOf(idsDir, key.index) }));
    stock = await runSoak(
      "soak-stock-child.ts",
      { task: "server", dir: path("soak-stock-server") } satisfies SoakStockTask,
      (url, part, goFile) => ({ task: "clients", serverUrl: url, seats: partSeats(stockSeats, part), goFile, plan: PLAN, concurrency: STOCK_FIND_CONCURRENCY, deadlineMs }) satisfies SoakStockTask,
      size.processes,
      size.soakMs,
      path("soak-go-stock"),
    );
    for (const seat of stockSeats) rmSync(seat.dir, { recursive: true, force: true });
  }
  rmSync(path("soak-stock-server"), { recursive: true, force: true });
  rmSync(idsDir, { recursive: true, force: true });
  return { rows: soakRows(ours, stock, size.warmupMs), students: size.students, documents: seed.documents, soakMs: size.soakMs, warmupMs: size.warmupMs };
}

function failedRow(failure: string): Row {
  return { figure: "Soak", ours: failure, stock: "-", ratio: "-", target: "-", met: "no", notes: [] };
}

function soakRows(ours: SoakRun, stock: SoakRun, warmupMs: number): Row[] {
  const slope = (run: SoakRun) => (run.window ? rssSlopePerMinute(run.samples, run.window.startAt + warmupMs, run.window.endAt) : undefined);
  const slopes = { ours: slope(ours), stock: slope(stock) };
  const slopeText = (value: number | undefined, run: SoakRun) => (value !== undefined ? fmt(value, 2) : (run.failure ?? "-"));
  const fds = (run: SoakRun) => (run.before && run.after ? `${run.before.fds} → ${run.after.fds}` : "-");
  const converged = (run: SoakRun) => (run.server ? divergence(run.server, run.reports) : undefined);
  const c = { ours: converged(ours), stock: converged(stock) };
  const convergedText = (d: ReturnType<typeof divergence> | undefined, run: SoakRun) =>
    d ? `${fmt(d.documents - d.differing)} of ${fmt(d.documents)}${d.seatsOut > 0 ? ` (${d.seatsOut} clients out)` : ""}` : (run.failure ?? "-");
  const load = (run: SoakRun) => {
    const sum = (pick: (r: SoakClientsReport) => number) => run.reports.reduce((total, r) => total + pick(r), 0);
    return { edits: sum((r) => r.edits), grades: sum((r) => r.grades), reconnects: sum((r) => r.reconnects), failures: sum((r) => r.failures), first: run.reports.find((r) => r.firstFailure)?.firstFailure };
  };
  const rss = (run: SoakRun, at: "before" | "after") => run[at]?.rssMb;
  const peak = (run: SoakRun) => Math.max(0, ...run.samples.map((s) => s.rssMb));
  // The server's RSS at the start of each minute of the window, and at its end: a leak climbs, a warm-up levels off.
  const byMinute = (run: SoakRun) => {
    if (!run.window || run.samples.length === 0) return "?";
    const { startAt, endAt } = run.window;
    const at = (time: number) => run.samples.reduce((best, s) => (Math.abs(s.at - time) < Math.abs(best.at - time) ? s : best)).rssMb;
    const marks = [...range(Math.floor((endAt - startAt) / 60_000)).map((m) => startAt + m * 60_000), endAt];
    return marks.map((time) => fmt(at(time))).join(", ");
  };
  const coldS = (run: SoakRun) => Math.max(0, ...run.ready.flatMap((r) => r.seats.map((s) => s.ms))) / 1000;
  const notes = (side: "ours" | "stock", run: SoakRun) => {
    const l = load(run);
    const logged = run.reports.reduce((total, r) => total + (r.logged ?? 0), 0) + (run.server?.logged ?? 0);
    const uncaught = run.reports.reduce((total, r) => total + (r.uncaught ?? 0), 0) + (run.server?.uncaught ?? 0);
    const firstUncaught = run.server?.firstUncaught ?? run.reports.find((r) => r.firstUncaught)?.firstUncaught;
    return [
      `${side}: cold sync of every client before the window: ${fmt(coldS(run), 1)} s; ${run.ready.flatMap((r) => r.seats).filter((s) => !s.done).length} clients not done by the deadline`,
      `${side}: the load: ${fmt(l.edits)} edits, ${fmt(l.grades)} grades, ${fmt(l.reconnects)} reconnections; ${fmt(l.failures)} failed${l.first ? ` (the first: ${l.first.slice(0, 200)})` : ""}`,
      `${side}: server RSS (MB) at each minute of the window: ${byMinute(run)}`,
      `${side}: server RSS ${rss(run, "before") !== undefined ? fmt(rss(run, "before")!) : "?"} MB before the window, ${rss(run, "after") !== undefined ? fmt(rss(run, "after")!) : "?"} MB after it, peak ${fmt(peak(run))} MB; the clients' processes ${fmt(run.clientsMb.before)} MB → ${fmt(run.clientsMb.after)} MB`,
      ...(logged > 0 ? [`${side}: ${fmt(logged)} lines logged`] : []),
      ...(uncaught > 0 ? [`${side}: ${fmt(uncaught)} errors thrown where nothing could catch them (counted, not fatal here; an app would have crashed), the first: ${firstUncaught?.slice(0, 200)}`] : []),
      ...(c[side]?.first ? [`${side}: first difference: ${c[side]!.first}`] : []),
      ...(run.failure ? [`${side}: ${run.failure}`] : []),
    ];
  };
  const fdsMet = (run: SoakRun) => run.before !== undefined && run.after !== undefined && run.after.fds <= run.before.fds;
  return [
    {
      figure: "Server RSS slope after warm-up (MB/min)",
      ours: slopeText(slopes.ours, ours),
      stock: slopeText(slopes.stock, stock),
      ratio: "-",
      target: `ours < ${TARGET_SLOPE_MB_PER_MIN}`,
      met: slopes.ours !== undefined && slopes.ours < TARGET_SLOPE_MB_PER_MIN ? "yes" : "no",
      notes: [...notes("ours", ours), ...notes("stock", stock)],
    },
    { figure: "Server open files, before → after", ours: fds(ours), stock: fds(stock), ratio: "-", target: "ours: no more after", met: fdsMet(ours) ? "yes" : "no", notes: [] },
    {
      figure: "Documents at the server's heads at the end",
      ours: convergedText(c.ours, ours),
      stock: convergedText(c.stock, stock),
      ratio: "-",
      target: "ours: all",
      met: c.ours !== undefined && c.ours.differing === 0 && c.ours.seatsOut === 0 && c.ours.documents > 0 ? "yes" : "no",
      notes: [],
    },
  ];
}

export const SOAK_MARKERS = {
  start: "<!-- soak: written by npm run bench; BENCH_ONLY=soak rewrites only this section -->",
  end: "<!-- soak end -->",
};

export function renderSoakSection(measurement: SoakMeasurement, run: RunInfo): string {
  const minutes = measurement.soakMs / 60_000;
  return `${SOAK_MARKERS.start}
## Soak

${measurement.students} students' clients and a teacher's stay connected to one relay for ${fmt(minutes)} minutes of work: each
student edits its own submission about every ${PLAN.editEveryMs / 1000} s and restarts its app about every ${PLAN.reconnectEveryMs / 60_000}
minutes, the teacher changes a grade about every ${PLAN.gradeEveryMs / 1000} s. The relay holds the demo course
(${measurement.students} students, ${PLAN.assignments} assignments: ${measurement.documents !== undefined ? fmt(measurement.documents) : "?"} documents). The clients run in processes of about
${fmt(Math.ceil(measurement.students / 4))}, all on loopback. Once every client is in sync the window opens; after it, everyone stays
connected and still ${QUIET_MS / 1000} s, and then each client reports the heads of every document it holds.

- **RSS slope**: the relay's resident memory, read from \`/proc\` every ${SAMPLE_EVERY_MS / 1000} s by the parent, fitted by least
  squares from the end of a ${fmt(measurement.warmupMs / 60_000, 1)}-minute warm-up to the end of the window (${fmt((measurement.soakMs - measurement.warmupMs) / 60_000, 1)} minutes). The
  warm-up fills what is bounded but fills slowly: the documents in use (a document idle for a minute is
  freed), SQLite's page caches (16 MB for the store, 32 MB for the projection) and V8's heap.
- **Open files**: the relay's file descriptors in \`/proc\`, with every client connected and in sync, before the window
  and after the quiet: every reconnection opens and closes a socket, so a leak shows as a count that grew.
- **Converged**: every document of every client has the relay's heads, and every client's link says in sync.
- **Stock**: a server \`Repo\` (\`WebSocketServerAdapter\`, \`NodeFSStorageAdapter\`, \`sharePolicy\` false) holding the
  same documents, and one client \`Repo\` per student and one for the teacher, each told the ids our node of the same
  person held (the teacher: the grades), making the same load; a restart is \`repo.shutdown()\` and a new \`Repo\` on
  the same storage that finds its documents again. Stock has no "in sync": a client counts as converged when every
  document it was told of is loaded with the server's heads.

${machineLines().join("\n")}
- Date: ${run.startedAt.toISOString()}
- Code measured: ${run.code}
- Load average when the run started: ${fmt(run.loadAtStart, 2)}

${markdownTable(measurement.rows, "Stock automerge-repo", "Ratio")}${SOAK_MARKERS.end}
`;
}
