import type { ConnectorSyncResult } from "../../src/connectors/connector-sync.js";
import { createRandom } from "../../src/util/random.js";
import { courseProblems } from "../lms/course-checks.js";
import { CourseChanges } from "../lms/course-changes.js";
import { startFaultyLms, type FaultyLms } from "../lms/faulty-lms.js";
import { check, runCases, type Suite } from "../suite.js";

/** The share of requests to each fake that fail while faults are on. */
const FAULT_RATE = 0.25;
/** Rounds of changes and syncs while the fakes fail. */
const FAULTY_ROUNDS = 5;
/** Rounds without faults the node gets to send and read everything. */
const MAX_SETTLING_ROUNDS = 8;
/** Longer than the outbox's longest wait before a retry (30 minutes), so every retry is due. */
const PAST_EVERY_RETRY_MS = 60 * 60_000;

/**
 * Connector faults: the fake Canvas and Discourse drop connections (before the work, or after
 * it with the answer lost), answer 500, throttle as each really does (Canvas a 403 "Rate Limit
 * Exceeded", Discourse a 429 with `Retry-After`) and leave requests unanswered until they time
 * out, on a quarter of the requests, while the node and both systems change the course and the
 * node syncs. Once the faults stop and the node has synced until nothing is left to send, every
 * change made anywhere is on every side once, the outbox is empty, documents and remote objects
 * are mapped one to one, and no sync threw.
 */
export const connectorFaults: Suite = {
  name: "connector-faults",
  summary: "Canvas and Discourse drop connections, lose answers, answer 500, throttle and time out at random: no remote change is lost or made twice",
  unit: "seeds",
  sizes: { test: 3, ci: 20, large: 200 },
  run: (options) =>
    runCases(options, "seed", async (n) => {
      const started = performance.now();
      const random = createRandom(n);
      const lms = await startFaultyLms(n);
      try {
        const changes = new CourseChanges(lms, random);
        lms.setFaultRate(FAULT_RATE);
        for (let round = 1; round <= FAULTY_ROUNDS; round++) {
          for (let i = 1 + Math.floor(random() * 3); i > 0; i--) await changes.onNode();
          for (let i = Math.floor(random() * 3); i > 0; i--) await changes.elsewhere();
          const systems = random() < 0.5 ? (["canvas", "discourse"] as const) : (["discourse", "canvas"] as const);
          for (const system of systems) await syncWithout(lms, system, `faulty round ${round}`);
          // Some retries come due before the next round, some later.
          lms.advance(Math.floor(random() * 10 * 60_000));
        }
        lms.setFaultRate(0);
        const rounds = await settle(lms);
        const problems = await courseProblems(lms, changes);
        check(problems.length === 0, `${problems.length} problems after settling, e.g. ${problems.slice(0, 4).join("; ")}`);
        options.log(`seed ${n}: ${changes.created.length} objects made, ${changes.lastEdit.size} fields edited, settled in ${rounds} rounds, ${Math.round(performance.now() - started)} ms`);
      } finally {
        await lms.close();
      }
    }),
};

/** One sync, which must not throw however the system fails: a failure is a result, not a crash. */
async function syncWithout(lms: FaultyLms, system: "canvas" | "discourse", when: string): Promise<ConnectorSyncResult<unknown>> {
  try {
    return system === "canvas" ? await lms.syncCanvas() : await lms.syncDiscourse();
  } catch (error) {
    throw new Error(`the ${system} sync threw in the ${when}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  }
}

/**
 * Syncs with both, past every retry's wait, until a round leaves the outbox empty, writes
 * nothing to either system, changes nothing on the node and fails nowhere. Returns how many
 * rounds that took.
 */
async function settle(lms: FaultyLms): Promise<number> {
  const writes = () => [...lms.canvas.requests, ...lms.discourse.requests].filter((r) => r.method !== "GET").length;
  let last = "";
  for (let round = 1; round <= MAX_SETTLING_ROUNDS; round++) {
    lms.advance(PAST_EVERY_RETRY_MS);
    const before = writes();
    const results = [await syncWithout(lms, "canvas", `settling round ${round}`), await syncWithout(lms, "discourse", `settling round ${round}`)];
    const open = await lms.db.selectFrom("outbox").select(["system", "doc_url", "status", "last_error"]).where("status", "in", ["pending", "sending"]).execute();
    const failures = results.flatMap(({ pushed, pulled }) => [...(pushed as { failed: Array<{ url: string; error: string }> }).failed.map((f) => `${f.url}: ${f.error}`), ...pulled.failed.map((f) => `${f.what}: ${f.error}`)]);
    const pulledChanges = results.reduce((sum, { pulled }) => sum + pulled.created + pulled.updated + pulled.deleted, 0);
    if (open.length === 0 && writes() === before && pulledChanges === 0 && failures.length === 0) return round;
    last = [...open.map((e) => `${e.system} ${e.doc_url} ${e.status} (${e.last_error ?? ""})`), ...failures].slice(0, 4).join("; ");
  }
  throw new Error(`not settled after ${MAX_SETTLING_ROUNDS} rounds without faults: ${last || "each round still wrote or pulled changes"}`);
}
