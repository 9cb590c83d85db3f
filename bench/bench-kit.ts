import { spawn, type ChildProcess } from "node:child_process";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";

/**
 * The parent's side of the benchmark, shared by `bench/run.ts` and its sections: running
 * children in fresh processes with time limits, and the table every section prints.
 */

export interface ChildOutcome<R> {
  /** The child's JSON report, when it finished. */
  result?: R;
  /** Why there is no result: a time-out, an error the child reported, or a crash. */
  failure?: string;
  wallMs: number;
}

export interface Row {
  figure: string;
  ours: string;
  stock: string;
  /** How many times better ours is (higher throughput, or less time or memory). */
  ratio: string;
  target: string;
  met: "yes" | "no" | "n/a";
  notes: string[];
}

export interface RunInfo {
  startedAt: Date;
  loadAtStart: number;
  totalS: number;
  code: string;
}

export function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

export const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
export const perSecond = (docs: number, ms: number) => (docs * 1000) / ms;

export function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** The `i`th of `parts` nearly equal slices of `items`. */
export function slice<T>(items: readonly T[], i: number, parts: number): T[] {
  const size = Math.ceil(items.length / parts);
  return items.slice(i * size, (i + 1) * size);
}

export const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** Where the children run from (a snapshot of the sources, see run.ts); set once at the start of a run. */
let treeDir = process.cwd();

export function setTreeDir(dir: string): void {
  treeDir = dir;
}

/** Children still running, so an interrupted run can stop them (and only them) before it cleans up. */
const running = new Set<ChildProcess>();

export function killRunningChildren(): void {
  for (const child of running) child.kill("SIGKILL");
}

function spawnChild(script: string, task: object, stdin: "ignore" | "pipe"): ChildProcess & { stdout: NodeJS.ReadableStream; stderr: NodeJS.ReadableStream } {
  const child = spawn(process.execPath, ["--import", "tsx", join(treeDir, "bench", script), JSON.stringify(task)], {
    cwd: treeDir,
    stdio: [stdin, "pipe", "pipe"],
  });
  running.add(child);
  child.on("close", () => running.delete(child));
  return child as ChildProcess & { stdout: NodeJS.ReadableStream; stderr: NodeJS.ReadableStream };
}

/** The outcome a child's last stdout line gives: its report, the error it reported, or a crash with the end of its stderr. */
function outcomeOf<R>(stdout: string, stderr: string, code: number | null, signal: NodeJS.Signals | null, wallMs: number): ChildOutcome<R> {
  const line = stdout.trim().split("\n").pop() ?? "";
  try {
    const parsed = JSON.parse(line) as R & { error?: string };
    if (parsed.error) return { failure: `failed: ${parsed.error.split("\n")[0]}`, wallMs };
    return { result: parsed, wallMs };
  } catch {
    const detail = stderr.trim().split("\n").slice(-3).join(" | ");
    return { failure: `crashed (${signal ?? `exit ${code}`}): ${detail}`, wallMs };
  }
}

/** Runs one child task in a fresh `node --import tsx` process and collects its one-line JSON report. */
export function runChild<R>(script: string, task: object, limitS: number): Promise<ChildOutcome<R>> {
  const start = performance.now();
  return new Promise((resolveOutcome) => {
    const child = spawnChild(script, task, "ignore");
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, limitS * 1000);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const wallMs = Math.round(performance.now() - start);
      if (timedOut) return resolveOutcome({ failure: `did not finish in ${limitS} s`, wallMs });
      resolveOutcome(outcomeOf<R>(stdout, stderr, code, signal, wallMs));
    });
  });
}

/** A long-lived child (a server): what it said when ready, and how to stop it for its report. */
export interface Service<R> {
  /** The child's `ready` object, or undefined when it did not start (see `failure`). */
  ready?: Record<string, unknown>;
  failure?: string;
  /** The child's process id, so a parent can watch its memory and open files from /proc. */
  pid?: number;
  /** Ends the child's stdin, which asks it to stop, and collects its report. */
  stop(): Promise<ChildOutcome<R>>;
}

/**
 * Starts a child written with `runService` (child-kit.ts) and waits for its ready line. The
 * whole life of the child, from start to report, is limited to `limitS`.
 */
export function startService<R>(script: string, task: object, limitS: number): Promise<Service<R>> {
  const start = performance.now();
  const child = spawnChild(script, task, "pipe");
  let stdout = "";
  let stderr = "";
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, limitS * 1000);
  const closed = new Promise<ChildOutcome<R>>((resolveOutcome) => {
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const wallMs = Math.round(performance.now() - start);
      if (timedOut) return resolveOutcome({ failure: `did not finish in ${limitS} s`, wallMs });
      resolveOutcome(outcomeOf<R>(stdout, stderr, code, signal, wallMs));
    });
  });
  const stop = () => {
    child.stdin?.end();
    return closed;
  };
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolveService) => {
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      const newline = stdout.indexOf("\n");
      if (newline === -1) return;
      const first = stdout.slice(0, newline);
      try {
        const parsed = JSON.parse(first) as { ready?: Record<string, unknown>; error?: string };
        resolveService(parsed.ready ? { ready: parsed.ready, pid: child.pid, stop } : { failure: `failed: ${(parsed.error ?? first).split("\n")[0]}`, stop });
      } catch {
        resolveService({ failure: `said something else than ready: ${first.slice(0, 200)}`, stop });
      }
    });
    void closed.then((outcome) => resolveService({ failure: outcome.failure ?? "exited before it was ready", stop }));
  });
}

export function printTable(rows: Row[], reference: "stock" | "reference"): void {
  const header = ["figure", "ours", reference, "ratio", "target", "met"];
  const cells = rows.map((r) => [r.figure, r.ours, r.stock, r.ratio, r.target, r.met]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((v, i) => v.padEnd(widths[i]!)).join("  ");
  console.log();
  console.log(line(header));
  console.log(line(widths.map((w) => "-".repeat(w))));
  for (const c of cells) console.log(line(c));
  console.log();
  for (const r of rows) for (const n of r.notes) console.log(`  ${r.figure.split(" (")[0]}: ${n}`);
}

/** A section's table and notes in Markdown. */
export function markdownTable(rows: Row[], referenceHeader: string, ratioHeader: string): string {
  const table = [
    `| Figure | Ours | ${referenceHeader} | ${ratioHeader} | Target | Met |`,
    "| --- | --- | --- | --- | --- | --- |",
    ...rows.map((r) => `| ${r.figure} | ${r.ours} | ${r.stock} | ${r.ratio} | ${r.target} | ${r.met} |`),
  ];
  const notes = rows.flatMap((r) => r.notes.map((n) => `- ${r.figure.split(" (")[0]}: ${n}`));
  return `${table.join("\n")}\n${notes.length > 0 ? `\n${notes.join("\n")}\n` : ""}`;
}

export function machineLines(): string[] {
  const cpu = cpus();
  return [
    `- CPU: ${cpu[0]?.model ?? "unknown"}, ${cpu.length} cores`,
    `- RAM: ${fmt(totalmem() / 2 ** 30, 1)} GiB`,
    `- Node ${process.version} on ${process.platform} ${process.arch}`,
  ];
}

/**
 * Puts a section between its markers into an existing report: in place of its old self, else
 * before `before` (a heading), else at the end. Sections measured apart replace only themselves.
 */
export function spliceSection(document: string, markers: { start: string; end: string }, section: string, before: string): string {
  const start = document.indexOf(markers.start);
  const end = document.indexOf(markers.end);
  if (start !== -1 && end > start) return document.slice(0, start) + section + document.slice(end + markers.end.length + 1);
  const at = document.indexOf(before);
  if (at !== -1) return `${document.slice(0, at)}${section}\n${document.slice(at)}`;
  return `${document.trimEnd()}\n\n${section}`;
}
