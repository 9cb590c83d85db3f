import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

/**
 * What every benchmark child shares. A child gets its task as one JSON argument and prints
 * exactly one JSON line on stdout; anything else it says goes to stderr. Measuring in fresh
 * processes keeps one side's module caches, wasm memory and GC state out of the other's figures.
 */
export function readTask<T>(): T {
  const raw = process.argv[2];
  if (!raw) throw new Error("usage: node --import tsx bench/<child>.ts '<task as JSON>'");
  return JSON.parse(raw) as T;
}

export function report(result: object): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/** Runs a child's main, reports an error as a result rather than a crash, and exits without waiting for stray timers. */
export function runChild(main: () => Promise<object>): void {
  main().then(
    (result) => {
      report(result);
      process.exit(0);
    },
    (error: unknown) => {
      report({ error: error instanceof Error ? `${error.message}\n${error.stack ?? ""}` : String(error) });
      process.exit(1);
    },
  );
}

/**
 * Peak resident memory. Sampled every 20 ms, and checked against the kernel's high-water
 * mark (`maxRSS`), which also sees peaks between samples.
 */
export function startRssSampler(intervalMs = 20): { peakMb(): number } {
  let peak = process.memoryUsage.rss();
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, intervalMs);
  timer.unref();
  return {
    peakMb: () => {
      peak = Math.max(peak, process.memoryUsage.rss());
      // maxRSS is in KiB on Linux and macOS.
      const kernelPeak = process.resourceUsage().maxRSS * 1024;
      return Math.max(peak, kernelPeak) / (1024 * 1024);
    },
  };
}

/** Resident memory right now, in MB. */
export function rssMb(): number {
  return Math.round(process.memoryUsage.rss() / (1024 * 1024));
}

/** Milliseconds since `start`, rounded to a tenth. */
export function since(start: number): number {
  return Math.round((performance.now() - start) * 10) / 10;
}

/** Bytes under a directory (the store's size on disk). */
export function diskBytes(path: string): number {
  const stat = statSync(path, { throwIfNoEntry: false });
  if (!stat) return 0;
  if (!stat.isDirectory()) return stat.size;
  let total = 0;
  for (const entry of readdirSync(path)) total += diskBytes(join(path, entry));
  return total;
}

/** Files of zero bytes under a directory: chunks a writer truncated and never filled. */
export function emptyFiles(path: string): number {
  const stat = statSync(path, { throwIfNoEntry: false });
  if (!stat) return 0;
  if (!stat.isDirectory()) return stat.size === 0 ? 1 : 0;
  let total = 0;
  for (const entry of readdirSync(path)) total += emptyFiles(join(path, entry));
  return total;
}

/** `count` pseudo-random indices below `total`, the same on every run, so both sides pick the same documents. */
export function sampleIndices(total: number, count: number, seed = 1): number[] {
  const out: number[] = [];
  let state = seed >>> 0;
  for (let i = 0; i < count; i++) {
    // xorshift32: the same picks on every run and machine.
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    out.push(state % total);
  }
  return out;
}
