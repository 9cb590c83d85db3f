import { readdirSync, statSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
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

/** Reports, then exits once the report is written: a pipe takes a long line in parts, and exiting sooner cuts it. */
export function reportAndExit(result: object, code: number): void {
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(code));
}

/** Runs a child's main, reports an error as a result rather than a crash, and exits without waiting for stray timers. */
export function runChild(main: () => Promise<object>): void {
  main().then(
    (result) => reportAndExit(result, 0),
    (error: unknown) => reportAndExit({ error: error instanceof Error ? `${error.message}\n${error.stack ?? ""}` : String(error) }, 1),
  );
}

/**
 * Runs a long-lived child (a server that another child dials): prints `{"ready": ...}` once
 * started, then stops when its stdin ends (the parent closes it) and prints its report.
 * A failure to start is reported as `{"error": ...}` instead of the ready line.
 */
export function runService(start: () => Promise<{ ready: object; stop: () => Promise<object> }>): void {
  const fail = (error: unknown) => reportAndExit({ error: error instanceof Error ? `${error.message}\n${error.stack ?? ""}` : String(error) }, 1);
  start().then(({ ready, stop }) => {
    report({ ready });
    process.stdin.once("end", () => {
      stop().then((result) => reportAndExit(result, 0), fail);
    });
    process.stdin.resume();
  }, fail);
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

/** Wall-clock time in milliseconds since the epoch, to the microsecond: comparable between processes on one machine. */
export function wallNow(): number {
  return performance.timeOrigin + performance.now();
}

/** A sample of a process's CPU counts as busy above this share of one core (an idle node process uses about 1%). */
export const BUSY_SHARE = 0.25;

/** How a process has used its CPU: samples over its life, and when it was last busy. */
export interface Activity {
  /** `[wall ms, cumulative CPU ms]` pairs, one every sampling interval. */
  samples(): Array<[number, number]>;
  /** Wall ms at the end of the last sample above `BUSY_SHARE`, or null if none was. */
  lastBusyAt(): number | null;
}

/**
 * Samples the process's CPU time every `everyMs`. Both ends of a replication figure run one:
 * the wire alone cannot tell when an exchange is over (a stock client works for seconds
 * before its first message; a stock server answers nothing when nothing changed).
 */
export function startActivity(everyMs = 50): Activity {
  const samples: Array<[number, number]> = [];
  let lastBusyAt: number | null = null;
  const sample = () => {
    const { user, system } = process.cpuUsage();
    const now: [number, number] = [Math.round(wallNow()), Math.round((user + system) / 100) / 10];
    const before = samples[samples.length - 1];
    if (before && (now[1] - before[1]) / Math.max(1, now[0] - before[0]) >= BUSY_SHARE) lastBusyAt = now[0];
    samples.push(now);
  };
  sample();
  const timer = setInterval(sample, everyMs);
  timer.unref();
  return {
    samples: () => {
      sample();
      return samples;
    },
    lastBusyAt: () => lastBusyAt,
  };
}

/** Answers `GET /` with `{"lastBusyAt": <wall ms or null>}` on a free loopback port, so a client can wait until this server is idle; returns its URL. */
export async function serveActivity(activity: Activity): Promise<string> {
  const server = createServer((_request, response) => {
    response.writeHead(200, { "content-type": "application/json" });
    response.end(JSON.stringify({ lastBusyAt: activity.lastBusyAt() }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  server.unref();
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

/** CPU time (user and system) this process has used, in ms. */
export function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
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

/**
 * Documents in a stock NodeFS directory: it keeps each one in a directory `<first two
 * characters of the id>/<the rest>/` (its own storage id is a file in the same layout).
 */
export function nodeFsDocuments(dir: string): number {
  let count = 0;
  for (const prefix of readdirSync(dir, { withFileTypes: true })) {
    if (!prefix.isDirectory() || prefix.name.length !== 2) continue;
    count += readdirSync(join(dir, prefix.name), { withFileTypes: true }).filter((entry) => entry.isDirectory()).length;
  }
  return count;
}
