import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { ImmutableString } from "@automerge/automerge";
import { cpuMs } from "./child-kit.js";

/**
 * What the fan-out section's children share with each other and with its parent
 * (`bench/fanout-section.ts`): the values the teacher writes, the small HTTP control each
 * child serves so the parent can pace the changes, and the shape of their reports.
 */

/** The title the teacher gives the changed document at revision `n` (0 is the warm-up change). */
export function revisionTitle(base: string, n: number): string {
  return `${base} (revision ${n})`;
}

/** A root string as both sides store it: our schema keeps titles as `ImmutableString`, stock reads them back as such. */
export function plainString(value: unknown): string | undefined {
  if (value instanceof ImmutableString) return value.val;
  return typeof value === "string" ? value : undefined;
}

/** When each receiver first showed each title: one map per receiver, title → wall ms (`wallNow`). */
export type Arrivals = Array<Record<string, number>>;

/**
 * Records when each receiver first shows a title, and says when all of them do: the parent
 * waits for that (`/wait`) before it makes the next change. It waits on an open request
 * rather than polling, so pacing costs the measured processes nothing while a change travels.
 */
export class ArrivalLog {
  readonly #seen: Array<Map<string, number>>;
  readonly #waiters = new Set<{ title: string; resolve: () => void }>();

  constructor(receivers: number) {
    this.#seen = Array.from({ length: receivers }, () => new Map());
  }

  /** Receiver `index` shows `title` at wall time `at`; only the first time counts. */
  note(index: number, title: string, at: number): void {
    const seen = this.#seen[index]!;
    if (seen.has(title)) return;
    seen.set(title, at);
    if (this.count(title) < this.#seen.length) return;
    for (const waiter of this.#waiters) if (waiter.title === title) waiter.resolve();
  }

  /** Resolves with how many receivers show `title`: once all do, or after `timeoutMs` with fewer. */
  async whenAll(title: string, timeoutMs: number): Promise<number> {
    if (this.count(title) < this.#seen.length) {
      let waiter: { title: string; resolve: () => void } | undefined;
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        waiter = { title, resolve };
        this.#waiters.add(waiter);
        timer = setTimeout(resolve, timeoutMs);
      });
      this.#waiters.delete(waiter!);
      clearTimeout(timer);
    }
    return this.count(title);
  }

  has(index: number, title: string): boolean {
    return this.#seen[index]!.has(title);
  }

  count(title: string): number {
    return this.#seen.filter((seen) => seen.has(title)).length;
  }

  arrivals(): Arrivals {
    return this.#seen.map((seen) => Object.fromEntries(seen));
  }
}

/** One control route: its query string's parameters in, a JSON answer out. */
export type ControlRoutes = Record<string, (params: URLSearchParams) => Promise<object> | object>;

/**
 * Serves `GET /<route>?…` on a free loopback port and returns its base URL. The parent
 * drives the children through it: small requests, far fewer than the sync traffic measured.
 */
export async function serveControl(routes: ControlRoutes): Promise<string> {
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://127.0.0.1");
    const route = routes[url.pathname.slice(1)];
    const answer = (status: number, body: object) => {
      response.writeHead(status, { "content-type": "application/json" });
      response.end(JSON.stringify(body));
    };
    if (!route) return answer(404, { error: `no route ${url.pathname}` });
    Promise.resolve()
      .then(() => route(url.searchParams))
      .then(
        (body) => answer(200, body),
        (error: unknown) => answer(500, { error: error instanceof Error ? error.message : String(error) }),
      );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  server.unref();
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

/** The teacher's answer to `/change`: when the change call started, as a wall time; ours also says when it was committed. */
export interface ChangeAnswer {
  at: number;
  committedAt?: number;
  /** The process's CPU time when the change call started: from one change to the next is what a change cost it. */
  cpuMs: number;
}

/** The receivers' answer to `/wait?title=&timeoutMs=`: how many of them show the title (all, unless it timed out). */
export interface WaitAnswer {
  count: number;
  /** The process's CPU time then: from one change to the next is what a change cost it. */
  cpuMs: number;
}

/** The receivers' control: `/wait` answers once every receiver shows the title, or at the timeout. */
export function waitRoute(log: ArrivalLog): ControlRoutes {
  return {
    wait: async (params): Promise<WaitAnswer> => {
      const count = await log.whenAll(params.get("title") ?? "", Number(params.get("timeoutMs") ?? 0));
      return { count, cpuMs: cpuMs() };
    },
  };
}

/** A process's control route that says how much CPU it has used (`/cpu`), for a process that is neither teacher nor student: stock's server. */
export function cpuRoute(): ControlRoutes {
  return { cpu: (): { cpuMs: number } => ({ cpuMs: cpuMs() }) };
}

/**
 * Peak RSS is sampled this seldom in the fan-out children: each sample costs the event loop
 * time that would land in the latencies measured, and the kernel's high-water mark sees the peaks anyway.
 */
export const RSS_SAMPLE_MS = 250;

/** What a process reports about its memory when it stops. */
export interface MemoryReport {
  rssMb: number;
  peakRssMb: number;
}

/** A receivers' process's report: when each of its receivers showed each title. */
export interface ReceiversReport extends MemoryReport {
  arrivals: Arrivals;
  /** From starting the receivers until all were in sync and showed the first title. */
  readyMs: number;
  /** Ours: documents each student's store held when ready (the course as a student may read it). */
  documents?: number[];
  /** Ours: per student, the wall times its store committed a change of the document that came from the teacher. */
  stored?: number[][];
}

/** The value at quantile `q` (0 to 1) of sorted `values`, by nearest rank. */
export function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
