import { createRandom } from "../src/util/random.js";
import type { Activity } from "./child-kit.js";
import type { WireWindow } from "./wire-meter.js";

/**
 * What the replication section's children share with each other and with `bench/run.ts`:
 * the shape of their reports, the pages a teacher writes offline for the upload figure, and
 * how "the exchange is over" is decided on the wire.
 */

/**
 * An exchange counts as over once no WebSocket message has crossed, and neither end has been
 * busy, for this long. Long enough that no pause inside an exchange is taken for its end.
 */
export const QUIET_MS = 2_000;

/** After an exchange is over, the joining side waits this long more before its next step, so both ends' CPU samples cover its end. */
export const SETTLE_MS = 1_000;

/** How long one reconnection or upload may take before the child reports it unfinished. */
export const PHASE_DEADLINE_MS = 240_000;

/** The cold sync of a fresh node or client. */
export interface ColdFigures {
  /** Every expected document arrived before the deadline. */
  finished: boolean;
  /** From starting the node (or constructing the stock `Repo`) until every document is in: ours in the SQL projection, stock found and flushed to its storage. */
  ms: number;
  /** Stock: until every `find` resolved, before `repo.flush()`. Ours: until the store held every document. */
  arrivedMs: number;
  /** From starting until the TCP connection to the server was accepted. */
  connectMs: number | null;
  /** Documents in at the end (projected rows for ours, found documents for stock). */
  docs: number;
  expected: number;
  wire: WireWindow;
  /** CPU time of the joining process from the start until done. */
  cpuMs: number;
  rssMb: number;
  /** Stock: finds that ended unavailable or failed, and the first one's error. */
  failures?: number;
  firstFailure?: string;
  /** When the cold sync started and when the joining side moved on after it (`performance.now()`). */
  startAt: number;
  windowEndAt: number;
}

/** A reconnection with nothing changed, or an upload: measured from the new connection. */
export interface ReconnectFigures {
  finished: boolean;
  /** From the new connection to the exchange's last message. */
  ms: number;
  /** Ours only: from the new connection until `node.status()` says in sync with the relay. */
  inSyncMs: number | null;
  wire: WireWindow;
  /** CPU time of the joining process from the cut (or from going online) until the exchange fell quiet. */
  cpuMs: number;
  /** When the joining side moved on (`SETTLE_MS` after the exchange fell quiet): the server's CPU is read up to here. */
  windowEndAt: number;
}

/** A reconnection after the joining side changed some documents while offline. */
export interface ChangedFigures extends ReconnectFigures {
  docs: number;
}

export interface UploadFigures extends ReconnectFigures {
  docs: number;
  /** Creating the documents while offline (untimed in the figure). */
  createMs: number;
}

export interface JoinReport {
  cold: ColdFigures;
  /** One per reconnection, in order. */
  warm: ReconnectFigures[];
  /** The reconnection after regrading `CHANGED_SHARE` of the course offline. */
  changed: ChangedFigures | null;
  upload: UploadFigures | null;
  peakRssMb: number;
  /** `performance.timeOrigin` of the joining process: its `performance.now()` times plus this are wall-clock times, comparable with the server's. */
  timeOrigin: number;
  /** The joining process's CPU samples (see `startActivity`). */
  cpu: Array<[number, number]>;
}

/** A server child's report when it stops. */
export interface ServerReport {
  /** Documents it holds at the end (after the upload). */
  documents: number;
  rssMb: number;
  peakRssMb: number;
  /** `[wall ms, cumulative CPU ms]` samples over the server's life (see `startActivity`). */
  cpu: Array<[number, number]>;
}

/** The share of the course the teacher changes offline for the "1% changed" figure: grades, regraded. */
export const CHANGED_SHARE = 0.01;

/** The score the `index`th regraded grade gets: deterministic, so both sides write the same. */
export function regradedScore(index: number): number {
  return 50 + (index % 50);
}

/** The fields of the `count` pages a teacher writes while offline: deterministic, so both sides write the same. */
export function offlinePages(count: number): Array<{ slug: string; title: string; body: string; published: boolean; frontPage: boolean }> {
  const random = createRandom(11);
  const words = "lab safety cell membrane light enzyme rate sample result error trial model data figure method reason evidence".split(" ");
  const sentence = () => {
    const n = 6 + Math.floor(random() * 10);
    const text = Array.from({ length: n }, () => words[Math.floor(random() * words.length)]!).join(" ");
    return `${text.charAt(0).toUpperCase()}${text.slice(1)}.`;
  };
  return Array.from({ length: count }, (_, i) => {
    const sentences = Array.from({ length: 5 + Math.floor(random() * 10) }, sentence);
    return { slug: `offline-note-${i}`, title: `Notes ${i + 1}: ${sentence()}`, body: sentences.join(" "), published: false, frontPage: false };
  });
}

/**
 * The last moment either end was busy, in this process's `performance.now()` time: this
 * process's own samples, and the server's as its activity endpoint (`serveActivity`) reports them.
 */
export function lastBusyOfBothEnds(own: Activity, serverActivityUrl: string): () => Promise<number | null> {
  return async () => {
    let server: number | null = null;
    try {
      const response = await fetch(serverActivityUrl, { signal: AbortSignal.timeout(1_000) });
      server = ((await response.json()) as { lastBusyAt: number | null }).lastBusyAt;
    } catch {
      // A server that cannot answer within a second is busy.
      server = Date.now();
    }
    const latest = Math.max(own.lastBusyAt() ?? 0, server ?? 0);
    return latest === 0 ? null : latest - performance.timeOrigin;
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` every `everyMs` until it holds (returns `performance.now()` then) or `deadline` passes (returns undefined). */
export async function pollUntil(check: () => boolean | Promise<boolean>, deadline: number, everyMs = 25): Promise<number | undefined> {
  for (;;) {
    if (await check()) return performance.now();
    if (performance.now() >= deadline) return undefined;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
