import { readFileSync } from "node:fs";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { report, startRssSampler } from "./child-kit.js";

/**
 * What the memory section's children share with each other and with its parent
 * (`bench/memory-section.ts`): the shape of their reports, the memory sampler that also says
 * where the memory was at the peak, and the id lists that tell a stock client what to find.
 */

/** `process.memoryUsage()` in MB: where a process's resident memory goes. */
export interface MemoryBreakdown {
  rss: number;
  /** V8's heap: allocated, and in use. */
  heapTotal: number;
  heapUsed: number;
  /** Memory of JavaScript objects held outside V8's heap (Buffers, wasm memory), `arrayBuffers` included. */
  external: number;
  arrayBuffers: number;
}

export function memoryBreakdown(): MemoryBreakdown {
  const usage = process.memoryUsage();
  const mb = (bytes: number) => Math.round(bytes / (1024 * 1024));
  return { rss: mb(usage.rss), heapTotal: mb(usage.heapTotal), heapUsed: mb(usage.heapUsed), external: mb(usage.external), arrayBuffers: mb(usage.arrayBuffers) };
}

/** A process's memory over its life, as it reports it. */
export interface MemoryFigures {
  /** RSS once the process was up and ready (modules loaded, store open or server listening), before any peer. */
  readyRssMb: number;
  /** The peak: `startRssSampler` (every 20 ms, and the kernel's high-water mark). */
  peakRssMb: number;
  /** The breakdown sampled closest to the peak (every 250 ms, the sample with the highest RSS). */
  atPeak: MemoryBreakdown;
  /** When that sample was taken, in ms since the process started sampling. */
  atPeakMs: number;
  /** The V8 heap at its largest over the same samples: allocated, and in use. */
  maxHeapTotal: number;
  maxHeapUsed: number;
  /** At the end, just before the process stops. */
  atEnd: MemoryBreakdown;
}

/**
 * Peak RSS, and the `process.memoryUsage()` breakdown of the sample nearest the peak. The
 * breakdown is taken less often than the RSS: it walks V8's heap spaces.
 */
export function startMemorySampler(breakdownEveryMs = 250): { markReady(): void; figures(): MemoryFigures } {
  const rss = startRssSampler();
  const start = performance.now();
  let atPeak = memoryBreakdown();
  let atPeakMs = 0;
  let readyRssMb = atPeak.rss;
  let maxHeapTotal = atPeak.heapTotal;
  let maxHeapUsed = atPeak.heapUsed;
  const sample = () => {
    const now = memoryBreakdown();
    maxHeapTotal = Math.max(maxHeapTotal, now.heapTotal);
    maxHeapUsed = Math.max(maxHeapUsed, now.heapUsed);
    if (now.rss < atPeak.rss) return;
    atPeak = now;
    atPeakMs = Math.round(performance.now() - start);
  };
  const timer = setInterval(sample, breakdownEveryMs);
  timer.unref();
  return {
    markReady: () => {
      readyRssMb = memoryBreakdown().rss;
    },
    figures: () => {
      sample();
      return { readyRssMb, peakRssMb: Math.round(rss.peakMb()), atPeak, atPeakMs, maxHeapTotal, maxHeapUsed, atEnd: memoryBreakdown() };
    },
  };
}

/**
 * A full garbage collection, then the breakdown: how much of the heap was live and how much
 * garbage V8 had not collected yet. Children run without `--expose-gc`; the flag is set here.
 */
export function breakdownAfterGc(): MemoryBreakdown {
  setFlagsFromString("--expose-gc");
  (runInNewContext("gc") as () => void)();
  return memoryBreakdown();
}

/** A relay or stock server's report when it stops (still with every client connected). */
export interface ServerMemoryReport extends MemoryFigures {
  /** Ours: peers connected when it stopped. */
  peers?: number;
  /** Ours: documents in its store. */
  documents?: number;
  /** After the figures were taken: a full garbage collection, then the breakdown. */
  afterGc?: MemoryBreakdown;
  /** Stock: lines it logged (errors stock reports only so), and the first. */
  logged?: number;
  firstLogged?: string;
}

/** One student of the 30 as its process saw it once all its students were in sync (or the deadline passed). */
export interface SeatOutcome {
  /** The demo student's index (`demoUser("student", index)`). */
  index: number;
  /** Ours: in sync with the relay. Stock: every find resolved. */
  done: boolean;
  /** From starting until done (or until the deadline). */
  ms: number;
  /** Ours: documents in the student's store. Stock: documents found. */
  documents: number;
  /** Stock: how many it was told to find. */
  expected?: number;
  /** Stock: finds that failed, how many of those documents arrived later anyway, and the first failure's error. */
  failures?: number;
  recovered?: number;
  firstFailure?: string;
  /** Stock: times the client's connection to the server dropped. */
  drops?: number;
}

/** The `ready` line of a process of students: once each of its students is done, or the deadline passed. */
export interface SeatsReady {
  seats: SeatOutcome[];
  /** From starting the process's students until the last was done. */
  readyMs: number;
  rssMb: number;
  /** Stock: lines its Repos logged (errors stock reports only so), and the first. */
  logged?: number;
  firstLogged?: string;
}

/** One student device alone in its process (figure 2): its cold sync and its memory. */
export interface DeviceReport extends MemoryFigures, Omit<SeatOutcome, "index">, Pick<SeatsReady, "logged" | "firstLogged"> {
  /** Ours: documents by kind. */
  byKind?: Record<string, number>;
  /** Ours: rows of the SQL projection. */
  projected?: number;
}

/** The file a student's document ids go to. */
export function idsFileOf(idsDir: string, index: number): string {
  return join(idsDir, `student-${index}.txt`);
}

/** Document ids, one a line, as our student's store held them after its cold sync. */
export function readIds(file: string): string[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((line) => line.length > 0);
}

/**
 * An error nobody catches (in a long-lived child, after its ready line) is reported as the
 * child's last line, so the parent shows it instead of taking the ready line for the report.
 */
export function reportCrashes(): void {
  const crash = (error: unknown) => {
    report({ error: `uncaught: ${error instanceof Error ? `${error.message}\n${error.stack ?? ""}` : String(error)}` });
    process.exit(1);
  };
  process.on("uncaughtException", crash);
  process.on("unhandledRejection", crash);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
