import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { fmt, killRunningChildren, log, machineLines, median, perSecond, printTable, runChild as runAnyChild, setTreeDir, spliceSection, type ChildOutcome, type Row, type RunInfo } from "./bench-kit.js";
import type { CanvasPullReport, CanvasPullTask, PullFigures, RequestCounts } from "./canvas-pull-child.js";
import type { OursTask } from "./ours-child.js";
import type { StockTask } from "./stock-child.js";
import { FANOUT_MARKERS, measureFanout, renderFanoutSection, type FanoutMeasurement } from "./fanout-section.js";
import { MEMORY_MARKERS, measureMemory, renderMemorySection, type MemoryMeasurement } from "./memory-section.js";
import { measureSoak, renderSoakSection, SOAK_MARKERS, type SoakMeasurement } from "./soak-section.js";
import { measureSync, renderSyncSection, SYNC_MARKERS, type SyncMeasurement } from "./sync-section.js";

/**
 * `npm run bench`: our engine against stock automerge-repo (Repo + NodeFSStorageAdapter, no
 * network) on the same documents. Every measurement runs in a fresh child process with a
 * time limit; this file only orchestrates, prints the table and writes BENCHMARKS.md.
 * A fifth section pulls a generated Canvas course from the fake Canvas (bench/canvas-pull-child.ts)
 * and sets the requests made against the fewest the Canvas API allows; the last one replicates
 * a course over WebSocket, ours and stock client and server (bench/sync-section.ts).
 *
 * BENCH_QUICK=1 runs a small version (1,000 and 3,000 documents) to check the harness; it
 * writes its report under bench/.work instead of BENCHMARKS.md.
 *
 * BENCH_ONLY=canvas-pull runs only the Canvas pull section (under a minute instead of about 13
 * for the engine sections) and replaces only that section of the report, keeping the other
 * figures already there. BENCH_ONLY=sync does the same for the replication section (about 10
 * minutes, most of it stock): a fresh node joining a relay that holds a course, reconnecting,
 * and uploading, against stock automerge-repo client and server. BENCH_ONLY=fanout does the same
 * for the fan-out section (bench/fanout-section.ts, under two minutes): one teacher change reaching
 * 30 students' nodes on a LAN, against a stock server relaying to 30 stock clients.
 * BENCH_ONLY=memory does the same for the memory section (bench/memory-section.ts, about 15
 * minutes): a relay's RSS with 50,000 documents and 30 students syncing, and a student device's
 * RSS on a course of 10,000 documents and of 50,000, against a stock server and stock clients.
 * BENCH_ONLY=soak does the same for the soak section (bench/soak-section.ts, about 45 minutes): 200
 * students' clients editing and reconnecting against one relay for 15 minutes (10 measured after
 * a 5-minute warm-up), its RSS slope, its open files and every client's convergence, against
 * stock clients and a stock server.
 */

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(BENCH_DIR, "..");
const QUICK = process.env.BENCH_QUICK === "1";
const SECTIONS = ["canvas-pull", "sync", "fanout", "memory", "soak"] as const;
const ONLY = process.env.BENCH_ONLY as (typeof SECTIONS)[number] | undefined;
if (ONLY !== undefined && !SECTIONS.includes(ONLY)) throw new Error(`BENCH_ONLY must be one of: ${SECTIONS.join(", ")}`);

/** The sizes the targets are stated for. */
const DOCS = QUICK ? 1_000 : 10_000;
const RSS_DOCS = QUICK ? 3_000 : 50_000;
/** Documents per batch on both sides: our store commits each batch in one transaction. */
const BATCH = 200;
/** Random documents our RSS child finds through the store. */
const RSS_FINDS = 1_000;
/** Concurrent `repo.find` calls while stock loads a whole store. */
const STOCK_FIND_CONCURRENCY = 100;
/** How long stock may spend finding the 50,000 documents before it reports what it managed. */
const STOCK_RSS_DEADLINE_S = QUICK ? 30 : 120;
/**
 * The HAZARDS pre-grow workaround is used for the untimed build of the 50,000-document stock
 * store (in parts of 10,000; without it that setup alone takes over 10 minutes) and for one
 * informational row. Every stock figure with a target runs stock as shipped.
 */
const STOCK_BUILD_PREGROW_MB = 768;
const STOCK_BUILD_PART = 10_000;
const OPEN_RUNS = 3;
/**
 * The course of the issue: 50 students and 30 assignments (1,500 submissions), 20 topics of 30
 * posts, grown onto the fake's BIO101 fixture course. It pulls in seconds, so the quick run uses it too.
 */
const CANVAS_SCALE = { students: 50, assignments: 30, topics: 20, entriesPerTopic: 30 };
/** Fresh processes for the Canvas pull: its times vary by half on a shared machine, so the median run is shown. */
const CANVAS_RUNS = 3;

/** Time limits per child, in seconds: a phase that runs out reports "did not finish" instead of hanging the run. */
const LIMIT = {
  oursCreate: 240,
  stockCreate: 330,
  oursRebuild: 120,
  stockProject: 150,
  oursOpen: 60,
  stockOpen: 150,
  oursBuildRss: 420,
  stockBuildPart: 150,
  oursRss: 120,
  // The child stops itself at its deadline; the margin covers reporting and exit.
  stockRss: STOCK_RSS_DEADLINE_S + 45,
  canvasPull: 180,
};

/**
 * Where the children run from: a copy of the engine's sources taken when the run starts, so
 * that edits to src/ during a run of many minutes cannot mix two versions into one table.
 * By default the last commit (`git archive HEAD`); BENCH_SOURCE=worktree copies the working
 * tree instead, to measure uncommitted changes. The bench's own files come from bench/.
 */
function snapshotSources(into: string): string {
  mkdirSync(join(into, "bench"), { recursive: true });
  for (const file of readdirSync(BENCH_DIR)) if (file.endsWith(".ts")) cpSync(join(BENCH_DIR, file), join(into, "bench", file));
  symlinkSync(join(ROOT, "node_modules"), join(into, "node_modules"), "dir");
  // The fake Canvas seeds its course from the fixture files.
  const parts = ["src", "migrations", "tests/fixtures/lms/canvas", "package.json", "tsconfig.json"];
  if (process.env.BENCH_SOURCE !== "worktree") {
    try {
      const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();
      const archive = execFileSync("git", ["archive", "--format=tar", "HEAD", ...parts], { cwd: ROOT, maxBuffer: 256 * 1024 * 1024 });
      execFileSync("tar", ["-x", "-C", into], { input: archive });
      const dirty = execFileSync("git", ["status", "--porcelain", "--", "src", "migrations"], { cwd: ROOT, encoding: "utf8" }).trim();
      return `commit ${commit}${dirty ? " (uncommitted changes in src/ at the time were not measured)" : ""}`;
    } catch {
      // No git: fall through to the working tree.
    }
  }
  for (const part of parts) cpSync(join(ROOT, part), join(into, part), { recursive: true });
  return "the working tree (uncommitted changes included)";
}

/** The engine section's children, with the tasks each takes. */
function runChild<R>(script: "ours-child.ts" | "stock-child.ts" | "canvas-pull-child.ts", task: OursTask | StockTask | CanvasPullTask, limitS: number): Promise<ChildOutcome<R>> {
  return runAnyChild<R>(script, task, limitS);
}

async function main(): Promise<void> {
  const work = join(BENCH_DIR, ".work", `run-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const cleanUp = () => rmSync(work, { recursive: true, force: true });
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      killRunningChildren();
      cleanUp();
      process.exit(130);
    });
  }
  const startedAt = new Date();
  const treeDir = join(work, "tree");
  const code = snapshotSources(treeDir);
  setTreeDir(treeDir);
  const loadAtStart = loadavg()[0]!;
  const runStart = performance.now();
  const rows: Row[] = [];
  const p = (name: string) => join(work, name);

  const canvasRows: Row[] = [];
  let sync: SyncMeasurement | undefined;
  let fanout: FanoutMeasurement | undefined;
  let memory: MemoryMeasurement | undefined;
  let soak: SoakMeasurement | undefined;
  try {
    if (ONLY === undefined) {
      // ---- 1. create and store -------------------------------------------------------------
      log(`1/6 create ${fmt(DOCS)} documents: ours`);
      const oursCreate = await runChild<{ docs: number; createMs: number; projectedMs: number; diskBytes: number }>(
        "ours-child.ts",
        { task: "create", dataDir: p("ours-10k"), count: DOCS, batch: BATCH, urlsFile: p("ours-10k.json") },
        LIMIT.oursCreate,
      );
      log(`1/6 create ${fmt(DOCS)} documents: stock (as shipped; expect minutes)`);
      const stockCreate = await runChild<{ docs: number; ms: number; diskBytes: number; emptyAfterFlush: number; emptyFiles: number; rssMb: number }>(
        "stock-child.ts",
        { task: "create", dir: p("stock-10k"), urlsFile: p("stock-10k.json"), count: DOCS, from: 0, to: DOCS, batch: BATCH, preGrowMb: 0 },
        LIMIT.stockCreate,
      );
      log(`1/6 create ${fmt(DOCS)} documents: stock with the HAZARDS wasm pre-grow workaround (for information)`);
      const stockCreateGrown = await runChild<{ docs: number; ms: number; rssMb: number }>(
        "stock-child.ts",
        { task: "create", dir: p("stock-10k-grown"), urlsFile: p("stock-10k-grown.json"), count: DOCS, from: 0, to: DOCS, batch: BATCH, preGrowMb: STOCK_BUILD_PREGROW_MB },
        LIMIT.stockCreate,
      );
      rmSync(p("stock-10k-grown"), { recursive: true, force: true });
      {
        const ours = oursCreate.result ? perSecond(DOCS, oursCreate.result.createMs) : undefined;
        const stock = stockCreate.result ? perSecond(DOCS, stockCreate.result.ms) : undefined;
        const notes: string[] = [];
        if (oursCreate.result) notes.push(`ours: ${fmt(oursCreate.result.createMs / 1000, 1)} s until durable (fsynced), ${fmt(oursCreate.result.projectedMs / 1000, 1)} s until also projected`);
        if (stockCreate.result) {
          const s = stockCreate.result;
          notes.push(`stock: ${fmt(s.ms / 1000, 1)} s until repo.flush(); RSS at the end ${fmt(s.rssMb)} MB`);
          notes.push(
            s.emptyAfterFlush === 0
              ? "stock: no snapshot file was empty right after repo.flush() resolved in this run (the flush race described below did not strike)"
              : `stock: right after repo.flush() resolved, ${s.emptyAfterFlush} snapshot file${s.emptyAfterFlush === 1 ? " was" : "s were"} empty (a throttled save of the same document was still rewriting ${s.emptyAfterFlush === 1 ? "it" : "them"}; exiting then loses those documents); ${s.emptyFiles} left after waiting 2 s`,
          );
        }
        rows.push({
          figure: `Create and store ${fmt(DOCS)} documents (docs/s)`,
          ours: ours !== undefined ? fmt(ours) : (oursCreate.failure ?? "-"),
          stock: stock !== undefined ? fmt(stock) : (stockCreate.failure ?? "-"),
          ratio: ours !== undefined && stock !== undefined ? `${fmt(ours / stock, 1)}x` : "-",
          target: "ours ≥ 3x stock",
          met: ours !== undefined && stock !== undefined ? (ours >= 3 * stock ? "yes" : "no") : ours === undefined ? "no" : "n/a",
          notes,
        });
        {
          const grown = stockCreateGrown.result ? perSecond(DOCS, stockCreateGrown.result.ms) : undefined;
          rows.push({
            figure: `Create and store ${fmt(DOCS)} documents, stock with wasm pre-grow (docs/s)`,
            ours: ours !== undefined ? fmt(ours) : "-",
            stock: grown !== undefined ? fmt(grown) : (stockCreateGrown.failure ?? "-"),
            ratio: ours !== undefined && grown !== undefined ? `${fmt(ours / grown, 1)}x` : "-",
            target: "(information)",
            met: "n/a",
            notes: stockCreateGrown.result
              ? [`stock with the workaround: ${fmt(stockCreateGrown.result.ms / 1000, 1)} s until repo.flush(); RSS at the end ${fmt(stockCreateGrown.result.rssMb)} MB (Automerge's wasm memory grown by ${STOCK_BUILD_PREGROW_MB} MB up front)`]
              : [],
          });
        }
        if (oursCreate.result && stockCreate.result) {
          rows.push({
            figure: `Disk for ${fmt(DOCS)} documents (MB)`,
            ours: fmt(oursCreate.result.diskBytes / 1e6, 1),
            stock: fmt(stockCreate.result.diskBytes / 1e6, 1),
            // Ours is the larger one (a projection and a full-text index ride along): say so rather than print a fraction.
            ratio: oursCreate.result.diskBytes > stockCreate.result.diskBytes ? `ours ${fmt(oursCreate.result.diskBytes / stockCreate.result.diskBytes, 1)}x larger` : `${fmt(stockCreate.result.diskBytes / oursCreate.result.diskBytes, 1)}x`,
            target: "(information)",
            met: "n/a",
            notes: ["ours: store.sqlite + projection.sqlite (tables and full-text index) with their WAL files; stock: the NodeFS directory"],
          });
        }
      }

      // ---- 2. project ----------------------------------------------------------------------
      log(`2/6 project ${fmt(DOCS)} documents: ours (engine.rebuild in a fresh process)`);
      const oursRebuild = oursCreate.result
        ? await runChild<{ ms: number; projected: number; ignored: number; missing: number; rssMb: number }>("ours-child.ts", { task: "rebuild", dataDir: p("ours-10k") }, LIMIT.oursRebuild)
        : { failure: "not run: the store was not built", wallMs: 0 };
      log(`2/6 project ${fmt(DOCS)} documents: stock (find + kysely insert per row)`);
      const stockProject = stockCreate.result
        ? await runChild<{ ms: number; projected: number; total: number; finished: boolean; rssMb: number }>(
            "stock-child.ts",
            { task: "project", dir: p("stock-10k"), urlsFile: p("stock-10k.json"), projectionPath: p("stock-projection.sqlite"), deadlineMs: (LIMIT.stockProject - 30) * 1000, batch: 500 },
            LIMIT.stockProject,
          )
        : { failure: "not run: the store was not built", wallMs: 0 };
      {
        const ours = oursRebuild.result ? perSecond(oursRebuild.result.projected, oursRebuild.result.ms) : undefined;
        const stock = stockProject.result ? perSecond(stockProject.result.projected, stockProject.result.ms) : undefined;
        const notes: string[] = [];
        if (oursRebuild.result) notes.push(`ours: ${fmt(oursRebuild.result.projected)} documents in ${fmt(oursRebuild.result.ms / 1000, 2)} s (plus ${oursRebuild.result.ignored} catalog documents listed and skipped)`);
        if (stockProject.result) {
          const s = stockProject.result;
          notes.push(`stock: ${fmt(s.projected)} of ${fmt(s.total)} documents in ${fmt(s.ms / 1000, 1)} s${s.finished ? "" : " (did not finish: stopped at its deadline; rate over what it did)"}; RSS at the end ${fmt(s.rssMb)} MB`);
        }
        rows.push({
          figure: `Project ${fmt(DOCS)} documents into SQL (docs/s)`,
          ours: ours !== undefined ? fmt(ours) : (oursRebuild.failure ?? "-"),
          stock: stock !== undefined ? `${fmt(stock)}${stockProject.result?.finished ? "" : " (partial)"}` : (stockProject.failure ?? "-"),
          ratio: ours !== undefined && stock !== undefined ? `${fmt(ours / stock, 1)}x` : "-",
          target: "ours ≥ 5,000 docs/s",
          met: ours !== undefined && ours >= 5_000 ? "yes" : "no",
          notes,
        });
      }

      // ---- 3. open until ready to query ----------------------------------------------------
      log(`3/6 open a ${fmt(DOCS)}-document store until a query answers: ours (${OPEN_RUNS} fresh processes)`);
      const oursOpens: Array<ChildOutcome<{ ms: number; rows: number; processMs: number }>> = [];
      if (oursCreate.result) {
        for (let i = 0; i < OPEN_RUNS; i++) oursOpens.push(await runChild("ours-child.ts", { task: "open", dataDir: p("ours-10k") }, LIMIT.oursOpen));
      }
      log(`3/6 open a ${fmt(DOCS)}-document store until a query answers: stock (find every document)`);
      const stockOpen = stockCreate.result
        ? await runChild<{ ms: number; rows: number; found: number; total: number; finished: boolean; processMs: number }>(
            "stock-child.ts",
            { task: "open", dir: p("stock-10k"), urlsFile: p("stock-10k.json"), deadlineMs: (LIMIT.stockOpen - 30) * 1000, concurrency: STOCK_FIND_CONCURRENCY },
            LIMIT.stockOpen,
          )
        : { failure: "not run: the store was not built", wallMs: 0 };
      {
        const results = oursOpens.flatMap((o) => (o.result ? [o.result] : []));
        const ours = results.length > 0 ? median(results.map((r) => r.ms)) : undefined;
        const stock = stockOpen.result?.finished ? stockOpen.result.ms : undefined;
        const notes: string[] = [];
        if (results.length > 0) {
          notes.push(`ours: ${results.map((r) => `${fmt(r.ms)} ms`).join(", ")} (median shown); ${results[0]!.rows} assignments returned; with Node and module start-up, the process was ready after ${fmt(median(results.map((r) => r.processMs)))} ms`);
        }
        const failedOpen = oursOpens.find((o) => o.failure);
        if (failedOpen) notes.push(`ours: a run ${failedOpen.failure}`);
        if (stockOpen.result) {
          const s = stockOpen.result;
          notes.push(`stock: found ${fmt(s.found)} of ${fmt(s.total)} documents${s.finished ? "" : " before its deadline (did not finish)"} in ${fmt(s.ms / 1000, 1)} s; ${s.rows} assignments returned`);
        }
        rows.push({
          figure: `Open a ${fmt(DOCS)}-document store until a query answers (ms)`,
          ours: ours !== undefined ? fmt(ours) : (failedOpen?.failure ?? "not run: the store was not built"),
          stock: stock !== undefined ? fmt(stock) : stockOpen.result ? `did not finish in ${fmt(stockOpen.result.ms / 1000)} s` : (stockOpen.failure ?? "-"),
          ratio: ours !== undefined && stock !== undefined ? `${fmt(stock / ours, 0)}x` : "-",
          target: "ours < 1 s",
          met: ours !== undefined && ours < 1_000 ? "yes" : "no",
          notes,
        });
      }
      // The 10,000-document stores are done with: free the disk before building larger ones.
      for (const name of ["ours-10k", "stock-10k", "stock-projection.sqlite", "stock-projection.sqlite-wal", "stock-projection.sqlite-shm"]) rmSync(p(name), { recursive: true, force: true });

      // ---- 4. RSS with 50,000 documents on disk ----------------------------------------------
      log(`4/6 build ${fmt(RSS_DOCS)}-document stores (untimed; ours and stock in parallel)`);
      const buildOurs = runChild<{ docs: number; createMs: number }>(
        "ours-child.ts",
        { task: "create", dataDir: p("ours-50k"), count: RSS_DOCS, batch: BATCH, urlsFile: p("ours-50k.json") },
        LIMIT.oursBuildRss,
      );
      const buildStock = (async (): Promise<ChildOutcome<{ ms: number }>> => {
        let total = 0;
        for (let from = 0; from < RSS_DOCS; from += STOCK_BUILD_PART) {
          const to = Math.min(RSS_DOCS, from + STOCK_BUILD_PART);
          const part = await runChild<{ ms: number }>(
            "stock-child.ts",
            { task: "create", dir: p("stock-50k"), urlsFile: p("stock-50k.json"), count: RSS_DOCS, from, to, batch: BATCH, preGrowMb: STOCK_BUILD_PREGROW_MB },
            LIMIT.stockBuildPart,
          );
          total += part.wallMs;
          if (!part.result) return { failure: `building documents ${from} to ${to}: ${part.failure}`, wallMs: total };
        }
        return { result: { ms: total }, wallMs: total };
      })();
      const [builtOurs, builtStock] = await Promise.all([buildOurs, buildStock]);
      log(`4/6 built: ours ${builtOurs.result ? `${fmt(builtOurs.wallMs / 1000)} s` : builtOurs.failure}; stock ${builtStock.result ? `${fmt(builtStock.wallMs / 1000)} s` : builtStock.failure}`);
      log(`4/6 peak RSS: ours (open, gradebook query, ${fmt(RSS_FINDS)} finds)`);
      const oursRss = builtOurs.result
        ? await runChild<{ peakRssMb: number; stages: Record<string, number>; openMs: number; queryMs: number; findMs: number; found: number; students: number; diskBytes: number }>(
            "ours-child.ts",
            { task: "rss", dataDir: p("ours-50k"), urlsFile: p("ours-50k.json"), finds: RSS_FINDS },
            LIMIT.oursRss,
          )
        : { failure: `not run: ${builtOurs.failure}`, wallMs: 0 };
      log(`4/6 peak RSS: stock (find every document, at most ${STOCK_RSS_DEADLINE_S} s)`);
      const stockRss = builtStock.result
        ? await runChild<{ peakRssMb: number; stages: Record<string, number>; findMs: number; queryMs: number; found: number; total: number; finished: boolean; students: number }>(
            "stock-child.ts",
            { task: "rss", dir: p("stock-50k"), urlsFile: p("stock-50k.json"), deadlineMs: STOCK_RSS_DEADLINE_S * 1000, concurrency: STOCK_FIND_CONCURRENCY },
            LIMIT.stockRss,
          )
        : { failure: `not run: ${builtStock.failure}`, wallMs: 0 };
      {
        const ours = oursRss.result?.peakRssMb;
        const stock = stockRss.result?.peakRssMb;
        const notes: string[] = [];
        if (oursRss.result) {
          const r = oursRss.result;
          notes.push(`ours: RSS after each step (MB): ${stageText(r.stages)}; "baseline" is Node (about 40 MB), the tsx loader (about 38 MB) and the loaded modules, before the engine opens`);
          notes.push(`ours: open ${fmt(r.openMs)} ms, gradebook over all submissions and grades (${r.students} students) ${fmt(r.queryMs)} ms, ${fmt(r.found)} random documents found through the store in ${fmt(r.findMs)} ms; ${fmt(r.diskBytes / 1e6)} MB on disk`);
        }
        if (stockRss.result) {
          const s = stockRss.result;
          notes.push(`stock: RSS after each step (MB): ${stageText(s.stages)}`);
          notes.push(`stock: ${s.finished ? "found" : "did not finish: found only"} ${fmt(s.found)} of ${fmt(s.total)} documents in ${fmt(s.findMs / 1000, 1)} s, then the same gradebook in memory (${s.students} students) in ${fmt(s.queryMs)} ms`);
        }
        rows.push({
          figure: `Peak RSS, ${fmt(RSS_DOCS)} documents on disk (MB)`,
          ours: ours !== undefined ? fmt(ours) : (oursRss.failure ?? "-"),
          stock: stock !== undefined ? `${fmt(stock)}${stockRss.result?.finished ? "" : ` (${fmt(stockRss.result!.found)} docs loaded, did not finish)`}` : (stockRss.failure ?? "-"),
          ratio: ours !== undefined && stock !== undefined ? `${fmt(stock / ours, 1)}x${stockRss.result?.finished ? "" : " (at least)"}` : "-",
          target: "ours < 250 MB",
          met: ours !== undefined && ours < 250 ? "yes" : "no",
          notes,
        });
      }
    }

    // ---- 5. pull a Canvas course -----------------------------------------------------------
    if (ONLY === undefined || ONLY === "canvas-pull") {
      log(`5/6 pull a Canvas course (${CANVAS_SCALE.students} students, ${CANVAS_SCALE.assignments} assignments, ${CANVAS_SCALE.topics} topics of ${CANVAS_SCALE.entriesPerTopic} posts) from the fake Canvas, then pull it again (${CANVAS_RUNS} fresh processes)`);
      const canvasPulls: Array<ChildOutcome<CanvasPullReport>> = [];
      for (let i = 0; i < CANVAS_RUNS; i++) {
        canvasPulls.push(await runChild<CanvasPullReport>("canvas-pull-child.ts", { task: "pull", dataDir: p(`canvas-pull-${i}`), scale: CANVAS_SCALE }, LIMIT.canvasPull));
        rmSync(p(`canvas-pull-${i}`), { recursive: true, force: true });
      }
      canvasRows.push(...canvasPullRows(canvasPulls));
    }

    // ---- 6. replication: cold sync, warm reconnect, upload -----------------------------------
    if (ONLY === undefined || ONLY === "sync") sync = await measureSync(QUICK, p);

    // ---- fan-out: one teacher change to a class on a LAN -----------------------------------
    if (ONLY === undefined || ONLY === "fanout") fanout = await measureFanout(QUICK, p);

    // ---- memory: a relay with 30 students, a student device on a small and a large course ----
    if (ONLY === undefined || ONLY === "memory") memory = await measureMemory(QUICK, p);

    // ---- soak: 200 clients working against one relay for 10 minutes -------------------------
    if (ONLY === undefined || ONLY === "soak") soak = await measureSoak(QUICK, p);
  } finally {
    cleanUp();
  }

  const totalS = (performance.now() - runStart) / 1000;
  if (rows.length > 0) printTable(rows, "stock");
  if (canvasRows.length > 0) printTable(canvasRows, "reference");
  if (sync) printTable(sync.rows, "stock");
  if (fanout) printTable(fanout.rows, "stock");
  if (memory) printTable(memory.rows, "stock");
  if (soak) printTable(soak.rows, "stock");
  log(`whole run: ${fmt(totalS)} s`);
  const run = { startedAt, loadAtStart, totalS, code };
  const canvasSection = renderCanvasSection(canvasRows, run);
  const syncSection = sync ? renderSyncSection(sync, run) : "";
  const fanoutSection = fanout ? renderFanoutSection(fanout, run) : "";
  const memorySection = memory ? renderMemorySection(memory, run) : "";
  const soakSection = soak ? renderSoakSection(soak, run) : "";
  const out = QUICK ? join(BENCH_DIR, ".work", "BENCHMARKS.quick.md") : join(ROOT, "BENCHMARKS.md");
  // Run alone, a section replaces its old self and leaves the other figures as they were.
  const existing = () => (existsSync(out) ? readFileSync(out, "utf8") : "# Benchmarks\n");
  const alone = {
    "canvas-pull": [CANVAS_MARKERS, canvasSection],
    sync: [SYNC_MARKERS, syncSection],
    fanout: [FANOUT_MARKERS, fanoutSection],
    memory: [MEMORY_MARKERS, memorySection],
    soak: [SOAK_MARKERS, soakSection],
  } as const;
  const markdown = ONLY !== undefined ? spliceSection(existing(), alone[ONLY][0], alone[ONLY][1], "## Methodology") : renderMarkdown(rows, run, [canvasSection, syncSection, fanoutSection, memorySection, soakSection]);
  writeFileSync(out, markdown);
  log(`wrote ${out}`);
}

/** The rows of the Canvas pull section: time, documents per second and requests of a first pull, and the same for a pull of the unchanged course. */
function canvasPullRows(outcomes: Array<ChildOutcome<CanvasPullReport>>): Row[] {
  const results = outcomes.flatMap((o) => (o.result ? [o.result] : []));
  const failedRun = outcomes.find((o) => o.failure);
  if (results.length === 0) {
    return [{ figure: "Pull a Canvas course (s)", ours: failedRun?.failure ?? "-", stock: "-", ratio: "-", target: "(information)", met: "n/a", notes: [] }];
  }
  // The run with the median first pull stands for all; every run's times are in the notes.
  const r = [...results].sort((a, b) => a.first.ms - b.first.ms)[Math.floor(results.length / 2)]!;
  const { first, second, course } = r;
  const times = (pick: (x: CanvasPullReport) => PullFigures, digits: number) => results.map((x) => `${fmt(pick(x).ms / 1000, digits)} s`).join(", ");
  // The course and the connector are deterministic: runs that made other requests, or changed documents on the second pull, are worth knowing of.
  const differing = results.filter((x) => x.first.requests !== first.requests || x.second.requests !== second.requests || x.second.created + x.second.updated + x.second.deleted !== second.created + second.updated + second.deleted);
  const changed = (f: PullFigures) => f.created + f.updated + f.deleted;
  const requestRow = (figure: string, f: PullFigures, notes: string[]): Row => ({
    figure,
    ours: fmt(f.requests),
    stock: `${fmt(f.minimum)} (API minimum)`,
    ratio: `${fmt(f.requests / f.minimum, 2)}x`,
    target: "(information)",
    met: "n/a",
    notes: [...notes, ...excessNotes(f)],
  });
  const failures = (f: PullFigures) => (f.failed > 0 ? [`ours: ${fmt(f.failed)} objects failed, the first: ${f.firstFailure ?? "?"}`] : []);
  const retried = (f: PullFigures) => (f.notOk > 0 ? [`ours: ${fmt(f.notOk)} of them answered with an error or a throttle, and retried`] : []);
  const n = (count: number, noun: string) => `${fmt(count)} ${noun}${count === 1 ? "" : "s"}`;
  return [
    {
      figure: "Pull a Canvas course, first time (s)",
      ours: fmt(first.ms / 1000, 1),
      stock: "-",
      ratio: "-",
      target: "(information)",
      met: "n/a",
      notes: [
        `the course (generated on top of the fixture course BIO101): ${n(course.users, "user")}, ${n(course.enrollments, "enrollment")}, ${n(course.assignments, "assignment")}, ${n(course.submissions, "submission row")}, ${n(course.topics, "topic")} and ${n(course.announcements, "announcement")} with ${n(course.entries, "post")}, ${n(course.pages, "page")}, ${n(course.modules, "module")}`,
        `ours: ${n(first.created, "document")} created; ${fmt(first.pullMs / 1000, 2)} s in the connector, of which ${fmt(first.canvasMs / 1000, 2)} s waiting for Canvas; then ${fmt((first.ms - first.pullMs) / 1000, 2)} s until the projection held them all`,
        `ours: first pulls of ${results.length} runs in fresh processes: ${times((x) => x.first, 1)} (the median run is shown in every row)`,
        ...(failedRun ? [`ours: a run ${failedRun.failure}`] : []),
        ...(differing.length > 0 ? [`ours: ${differing.length} run(s) made other request counts or changed documents on the second pull than the run shown`] : []),
        ...failures(first),
      ],
    },
    {
      figure: "Documents per second, first pull (docs/s)",
      ours: fmt(perSecond(r.projected, first.ms)),
      stock: "-",
      ratio: "-",
      target: "(information)",
      met: "n/a",
      notes: [`ours: ${fmt(r.projected)} documents in the projection after the first pull`],
    },
    requestRow("Requests, first pull", first, retried(first)),
    {
      figure: "Pull the unchanged course again (s)",
      ours: fmt(second.ms / 1000, 2),
      stock: "-",
      ratio: "-",
      target: "(information)",
      met: "n/a",
      notes: [
        `ours: ${fmt(second.unchanged)} objects compared and found unchanged; ${fmt(second.pullMs / 1000, 2)} s in the connector, of which ${fmt(second.canvasMs / 1000, 2)} s waiting for Canvas`,
        `ours: second pulls of the ${results.length} runs: ${times((x) => x.second, 2)}`,
        ...failures(second),
      ],
    },
    {
      figure: "Documents changed by the second pull",
      ours: fmt(changed(second)),
      stock: "-",
      ratio: "-",
      target: "0",
      met: changed(second) === 0 && second.failed === 0 ? "yes" : "no",
      notes: changed(second) === 0 ? [] : [`ours: ${second.created} created, ${second.updated} updated, ${second.deleted} deleted`],
    },
    requestRow("Requests, second pull", second, retried(second)),
  ];
}

/** Where a pull's requests differ from the minimum, endpoint by endpoint. */
function excessNotes(f: PullFigures): string[] {
  const routes = new Set([...Object.keys(f.byRoute), ...Object.keys(f.minimumByRoute)]);
  const count = (counts: RequestCounts, route: string) => counts[route] ?? 0;
  return [...routes]
    .filter((route) => count(f.byRoute, route) !== count(f.minimumByRoute, route))
    .map((route) => `ours: ${route}: ${fmt(count(f.byRoute, route))} made, ${fmt(count(f.minimumByRoute, route))} needed`);
}

function stageText(stages: Record<string, number>): string {
  return Object.entries(stages)
    .map(([stage, mb]) => `${stage} ${fmt(mb)}`)
    .join(", ");
}

const CANVAS_MARKERS = {
  start: "<!-- canvas-pull: written by npm run bench; BENCH_ONLY=canvas-pull rewrites only this section -->",
  end: "<!-- canvas-pull end -->",
};

/** The Canvas pull section, with the machine and code it was measured on: it can be measured apart from the rest. */
function renderCanvasSection(rows: Row[], run: RunInfo): string {
  const table = [
    "| Figure | Ours | Reference (API minimum) | Ratio (ours / reference) | Target | Met |",
    "| --- | --- | --- | --- | --- | --- |",
    ...rows.map((r) => `| ${r.figure} | ${r.ours} | ${r.stock} | ${r.ratio} | ${r.target} | ${r.met} |`),
  ];
  const notes = rows.flatMap((r) => r.notes.map((n) => `- ${r.figure.split(" (")[0]}: ${n}`));
  const s = CANVAS_SCALE;
  return `${CANVAS_MARKERS.start}
## Canvas pull

Pulling a Canvas course of ${s.students} students and ${s.assignments} assignments (${fmt(s.students * s.assignments)} submissions), ${s.topics} topics
of ${s.entriesPerTopic} posts each from the fake Canvas (\`src/testing/fake-canvas\`: real HTTP on loopback) into a fresh
engine with the Canvas connector (\`pullCanvasCourse\`, one request at a time, \`per_page=100\`), until the
projection holds every document (\`engine.whenProjected()\`); then pulling the unchanged course again.
This runs in ${CANVAS_RUNS} fresh processes; the rows show the run whose first pull took the median time.
Canvas has no "changed since" for most objects, so every pull scans every listing and writes only
what differs: the second pull is the cost of that scan and diff, and it should change no document.
Documents per second = documents in the projection after the first pull / the first pull's time.
No stock alternative exists (automerge-repo has no Canvas connector), so the reference figure is the
fewest requests the Canvas API allows for this course, computed from what the fake holds
(\`minimumRequests\` in \`bench/canvas-pull-child.ts\`): one request for the course; ⌈n/100⌉ pages, at
least one, for each listing (users, enrollments of every state, assignments, the course's
submissions in one listing, topics, announcements, pages, modules with their items); one \`/view\`
per topic or announcement that has posts (it holds the whole thread); one GET per page body (the page
list leaves bodies out; a later pull needs a body again only when the list shows a new
\`updated_at\`); and the item pages of any module whose items Canvas leaves out. The fake's throttle
runs on the real clock, as Canvas's does; a throttled or failed request that was retried counts
among the requests made.

${machineLines().join("\n")}
- Date: ${run.startedAt.toISOString()}
- Code measured: ${run.code}
- Load average when the run started: ${fmt(run.loadAtStart, 2)} (on a shared machine; a busy one makes the times noisier, never the request counts)

${table.join("\n")}
${notes.length > 0 ? `\n${notes.join("\n")}\n` : ""}${CANVAS_MARKERS.end}
`;
}

function renderMarkdown(rows: Row[], run: RunInfo, sections: string[]): string {
  const table = [
    "| Figure | Ours | Stock automerge-repo | Ratio (ours better by) | Target | Met |",
    "| --- | --- | --- | --- | --- | --- |",
    ...rows.map((r) => `| ${r.figure} | ${r.ours} | ${r.stock} | ${r.ratio} | ${r.target} | ${r.met} |`),
  ];
  const notes = rows.flatMap((r) => r.notes.map((n) => `- ${r.figure.split(" (")[0]}: ${n}`));
  return `# Benchmarks

Ordo Sync's engine against stock \`@automerge/automerge-repo\` 2.5.6 (\`Repo\` with
\`NodeFSStorageAdapter\`, no network) on the same documents. Produced by \`npm run bench\`
(\`bench/run.ts\`); the numbers below are from the run of ${run.startedAt.toISOString().slice(0, 10)}.

## Machine

${machineLines().join("\n")}
- Date: ${run.startedAt.toISOString()}
- Code measured: ${run.code}
- Load average when the run started: ${fmt(run.loadAtStart, 2)} (the machine was shared; figures on a busy machine are noisier)
- Whole run: ${fmt(run.totalS)} s

## Figures

${table.join("\n")}

${notes.join("\n")}

${sections.join("\n")}
## Methodology

- **Same documents.** \`bench/lms-corpus.ts\` generates whole classes deterministically: a course,
  2 teachers and 30 students with enrollments, 40 assignments, 8 discussion topics with 20
  threaded posts each, 6 pages and 20 modules, one submission per student and assignment (85%
  submitted, 300–1,200 characters) and a grade per submitted one (a comment on low scores):
  about 2,500 documents per class, 475 bytes of field values per document on average. Both sides
  get the same values in the same order. Stock gets the very document our store writes at
  creation (built by the same schema code, \`initialRoot\`, so identifiers and dates are
  \`ImmutableString\` and long texts are Automerge text on both sides); only a course's own
  URL, which stock cannot know before creating it, is null on the stock side.
- **Fresh processes.** Every measurement runs in its own \`node --import tsx\` child, so module
  caches, Automerge's wasm memory and the GC state of one measurement never help or hurt
  another. Each child has a time limit; a stock child that would need longer stops at its
  deadline and reports what it managed (marked "did not finish").
- **One version of the code.** The run copies the engine's sources once at its start (the last
  commit, by default) and every child runs that copy, so edits made to src/ while the run goes on
  cannot mix two versions into one table.
- **1. Create and store.** Ours: \`engine.docs.create\` in batches of ${BATCH} (\`Promise.all\`, which the
  store commits as one transaction) until \`engine.docs.durable()\` (committed and fsynced); the
  engine projects the new documents meanwhile, as it always does. Stock: \`repo.create\` of the
  same values in batches of ${BATCH} (yielding between batches) until \`repo.flush()\`, which does not
  fsync. Rate = documents / elapsed time.
- **2. Project.** Ours: \`engine.rebuild()\` in a fresh process on the store built in 1 (it drops
  every projected row and projects every document again from what the store holds on disk). Stock: in a
  fresh process, for each URL \`await repo.find(url)\`, read the document with the same reader
  and row mapping as ours (\`readEntity\`, \`projectSnapshot\`), and insert each row with one kysely
  query (plain \`SqliteDialect\` over better-sqlite3, WAL, synchronous=NORMAL) into the same
  schema (our migrations), 500 documents per transaction. Stock keeps no \`doc_heads\` bookkeeping.
- **3. Open until ready to query.** Ours: in a fresh process, from \`Engine.open\` on the data
  directory of 1 until \`queries.assignmentsDue\` for one course returns (median of ${OPEN_RUNS} processes;
  Node's own start-up and module loading are excluded from the figure, shown in the notes).
  Stock: in a fresh process, from constructing the \`Repo\` until all ${fmt(DOCS)} documents are found
  (their URLs read from a file, ${STOCK_FIND_CONCURRENCY} finds at a time) and the same query is answered in memory:
  stock has no index, so it must load every document before it can answer.
- **4. Peak RSS with ${fmt(RSS_DOCS)} documents on disk.** Ours: a fresh process opens the store, runs a
  gradebook (submissions per student left-joined with grades) over every course in SQL, and
  loads ${fmt(RSS_FINDS)} random documents with \`engine.docs.find\`. Stock: a fresh process opens the
  \`Repo\` and finds every document (${STOCK_FIND_CONCURRENCY} at a time, at most ${STOCK_RSS_DEADLINE_S} s), then computes the same
  gradebook in memory. Peak RSS is the larger of \`process.memoryUsage.rss()\` sampled every
  20 ms and the kernel's \`maxRSS\`.
- **Wasm pre-grow.** The HAZARDS workaround (growing Automerge's wasm memory once up front) is
  applied to stock only while building the ${fmt(RSS_DOCS)}-document stock store for figure 4, in
  processes of ${fmt(STOCK_BUILD_PART)} documents (that build is not timed), and in one extra, informational
  run of figure 1 (the row "stock with wasm pre-grow"), to show how much of stock's create time
  that one hazard costs. Every other stock figure, and every target, uses stock as shipped.
  Ours never uses it (its bounded document cache frees documents instead).
- **Stock's \`repo.flush()\` race.** In 2.5.6, \`flush()\` can resolve while a throttled save of the
  same document is still rewriting its snapshot file (\`writeFile\` truncates first); a process
  that exits right after \`flush()\` leaves empty files, and those documents load as \`{}\`. The
  stock create child therefore waits 2 s (untimed) before exiting; the notes give the count of
  empty files seen right after \`flush()\`.
`;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
