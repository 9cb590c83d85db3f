import type { Kysely } from "kysely";
import type { CanvasSettings, DiscourseSettings } from "../../src/connectors/connector-config.js";
import { syncCanvas, syncDiscourse, type CanvasSyncResult, type DiscourseSyncResult } from "../../src/connectors/connector-sync.js";
import { connectorDb, type ConnectorTables } from "../../src/connectors/connector-tables.js";
import type { DocStore } from "../../src/crdt/doc-store.js";
import type { DocUrl } from "../../src/crdt/ids.js";
import { Engine } from "../../src/engine.js";
import type { CanvasFault } from "../../src/testing/fake-canvas/index.js";
import type { DiscourseFaultRule } from "../../src/testing/fake-discourse/index.js";
import { DEFAULT_DISCOURSE_API_KEY, FakeCanvas, FakeDiscourse } from "../../src/testing/lms-fakes.js";
import { makeTempDir } from "../../src/testing/temp-dir.js";
import { createRandom } from "../../src/util/random.js";

/** Every way the fake Canvas fails a request at random: before any work, or after it with the answer lost. */
const CANVAS_FAULTS: readonly CanvasFault[] = ["drop-connection", "lose-answer", 500, "throttle-403", "no-answer"];

/** The same for the fake Discourse, throttling as the contract says it does (a 429 with `Retry-After`). */
const DISCOURSE_FAULTS: readonly DiscourseFaultRule[] = [
  { kind: "drop" },
  { kind: "lose-answer" },
  { kind: "server-error" },
  { kind: "rate-limit", retryAfter: 42 },
  { kind: "rate-limit-ip", retryAfter: 10 },
  { kind: "no-answer" },
];

/** A request whose answer has not come by then is given up (a fault that never answers is met this way). */
const REQUEST_TIMEOUT_MS = 150;

/** When the fixture course is "now": its announcements and due dates read as they were written. */
const START = Date.parse("2025-01-22T12:00:00Z");

/**
 * A node connected to a fake Canvas course and its fake Discourse category, with one clock for
 * all three: it runs with real time, and jumps when the connectors wait (a backoff, a throttle)
 * or when `advance` says, so retries an hour away come due at once.
 */
export interface FaultyLms {
  canvas: FakeCanvas;
  discourse: FakeDiscourse;
  store: DocStore;
  db: Kysely<ConnectorTables>;
  /** The course document the Canvas course and the Discourse category both belong to. */
  course: DocUrl;
  advance(ms: number): void;
  syncCanvas(): Promise<CanvasSyncResult>;
  syncDiscourse(): Promise<DiscourseSyncResult>;
  /** From now on `rate` of the requests to each fake fail at random (0: none). */
  setFaultRate(rate: number): void;
  /** Runs `change` (a change made in Canvas or Discourse by someone else) with no fault in its way. */
  withoutFaults<T>(change: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** Starts both fakes and a node that has synced with both once (so the discussions on both are paired). */
export async function startFaultyLms(seed: number): Promise<FaultyLms> {
  const startedAt = Date.now();
  let offset = 0;
  const now = () => START + (Date.now() - startedAt) + offset;
  const clock = () => new Date(now());
  const canvas = await FakeCanvas.start({ clock: now, seed });
  const discourse = await FakeDiscourse.start({ clock: now });
  const temp = makeTempDir("ordo-connector-faults-");
  const engine = await Engine.open({ dataDir: temp.dir, create: true, clock });
  const store = engine.docs;
  const db = connectorDb(engine.db);
  const common = {
    store,
    db,
    clock,
    fetch: timingOut(REQUEST_TIMEOUT_MS),
    // The connectors' waits pass on the shared clock at once.
    sleep: async (ms: number) => void (offset += ms),
    random: createRandom(seed * 7919 + 1),
  };
  const canvasSettings: CanvasSettings = { url: canvas.url, token: canvas.token, courseId: "4201" };
  await syncCanvas({ ...common, settings: canvasSettings });
  const course = `automerge:${(await store.records({ kind: "course" }))[0]!.id}` as DocUrl;
  const discourseSettings: DiscourseSettings = { url: discourse.url, apiKey: DEFAULT_DISCOURSE_API_KEY, username: "system", categoryId: "12", course };
  await syncDiscourse({ ...common, settings: discourseSettings });

  const faultRandom = createRandom(seed);
  let rate = 0;
  const applyRate = (value: number) => {
    canvas.faults.randomly(value > 0 ? { rate: value, faults: CANVAS_FAULTS, random: faultRandom } : null);
    discourse.faults.randomly(value > 0 ? { rate: value, faults: DISCOURSE_FAULTS, random: faultRandom } : null);
  };
  return {
    canvas,
    discourse,
    store,
    db,
    course,
    advance: (ms) => void (offset += ms),
    syncCanvas: () => syncCanvas({ ...common, settings: canvasSettings }),
    syncDiscourse: () => syncDiscourse({ ...common, settings: discourseSettings }),
    setFaultRate: (value) => applyRate((rate = value)),
    withoutFaults: async (change) => {
      applyRate(0);
      try {
        return await change();
      } finally {
        applyRate(rate);
      }
    },
    close: async () => {
      await engine.close();
      await Promise.allSettled([canvas.close(), discourse.close()]);
      temp.remove();
    },
  };
}

/** `fetch` that gives up on a request after `ms`, as well as when the caller's own signal says. */
function timingOut(ms: number): typeof fetch {
  return async (input, init) => {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new DOMException(`no answer within ${ms} ms`, "TimeoutError")), ms);
    const own = init?.signal;
    const onAbort = () => controller.abort(own?.reason);
    own?.addEventListener("abort", onAbort, { once: true });
    try {
      return await fetch(input, { ...init, signal: controller.signal });
    } finally {
      clearTimeout(timer);
      own?.removeEventListener("abort", onAbort);
    }
  };
}
