import { rmSync } from "node:fs";
import { fmt, log, machineLines, markdownTable, median, perSecond, runChild, startService, type ChildOutcome, type Row, type RunInfo, type Service } from "./bench-kit.js";
import { BUSY_SHARE } from "./child-kit.js";
import { CHANGED_SHARE, QUIET_MS, SETTLE_MS, type ColdFigures, type JoinReport, type ReconnectFigures, type ServerReport } from "./sync-kit.js";
import type { SeedReport, SyncOursTask } from "./sync-ours-child.js";
import type { SyncStockTask } from "./sync-stock-child.js";
import type { WireWindow } from "./wire-meter.js";

/**
 * The replication section of `npm run bench` (alone: `BENCH_ONLY=sync`): a fresh node joins a
 * relay holding a course, reconnects with nothing changed and again after regrading 1% of the
 * course offline, and uploads what it wrote offline;
 * the same with stock automerge-repo at both ends, on the same documents. Every process is a
 * fresh child with a time limit; the joining side dials through a meter (`wire-meter.ts`) that
 * counts WebSocket messages the same way for both.
 */

/** The demo course, scaled up: 100 students and 53 assignments make about 10,000 documents; the quick run about 1,000. */
const COURSE = { full: { students: 100, assignments: 53 }, quick: { students: 30, assignments: 17 } };
/**
 * A smaller course on which our warm reconnect is measured again: its message count set
 * beside the full course's shows whether it grows with the number of documents.
 */
const SMALL_COURSE = { full: COURSE.quick, quick: { students: 10, assignments: 5 } };
/** Documents the teacher writes offline for the upload figure. */
const UPLOAD = { full: 1_000, quick: 200 };
/** A reconnection after changes is "proportional" if it takes at most this many messages per changed document, plus a fixed few. */
const CHANGED_MESSAGES_PER_DOC = 4;
const CHANGED_MESSAGES_FIXED = 10;
/** Grades regraded offline for the "1% changed" reconnection. */
const regradedCount = (documents: number) => Math.round(CHANGED_SHARE * documents);
/** Reconnections with nothing changed; the median is shown. */
const WARM_RUNS = 3;
/** Concurrent `repo.find` calls of the stock client (run.ts uses the same for its stock loads; 20 to 2,000 were tried, 100 was fastest). */
const STOCK_FIND_CONCURRENCY = 100;
/** The untimed build of the stock server's store grows Automerge's wasm memory first (the HAZARDS workaround); no timed phase does. */
const STOCK_SEED_PREGROW_MB = 768;
/**
 * A process is done with an exchange once it has been idle this long: a lone busy sample
 * seconds later (a timer, a collection) is not part of the exchange.
 */
const IDLE_GAP_MS = 250;
/** Time limits per child, in seconds. The join children also stop their cold sync at a deadline and report what they had. */
function limits(quick: boolean) {
  const coldS = quick ? 120 : 600;
  return {
    coldS,
    oursSeed: 300,
    stockSeed: 600,
    oursJoin: coldS + 600,
    stockJoin: coldS + 1_200,
    // A server lives through its client's whole run.
    server: coldS + 1_500,
  };
}

/** What one end did over an exchange: CPU used, and when it was done (wall ms). */
interface EndActivity {
  cpuMs: number;
  /** The end of its work that ran on from the exchange's last message (that message's time if none did). */
  doneAt: number;
  /** Still busy when the window closed: the exchange may have gone on longer than measured. */
  busyAtEnd: boolean;
}

/**
 * Reads one end's CPU samples over a window from `from` (the connection) to `to` (when the
 * joining side moved on): it is done at the end of the busy stretch that runs on from
 * `lastMessage`, i.e. before its first idle gap of `IDLE_GAP_MS`.
 */
function endActivity(cpu: ReadonlyArray<[number, number]>, from: number, lastMessage: number, to: number): EndActivity {
  const busy = (i: number) => (cpu[i]![1] - cpu[i - 1]![1]) / Math.max(1, cpu[i]![0] - cpu[i - 1]![0]) >= BUSY_SHARE;
  let doneAt = lastMessage;
  let busyAtEnd = false;
  for (let i = 1; i < cpu.length; i++) {
    const [wallBefore] = cpu[i - 1]!;
    const [wall] = cpu[i]!;
    if (wall <= lastMessage) continue;
    if (wallBefore >= to || wallBefore - doneAt >= IDLE_GAP_MS) break;
    if (!busy(i)) continue;
    doneAt = Math.min(wall, to);
    busyAtEnd = wall >= to;
  }
  let cpuMs = 0;
  for (let i = 1; i < cpu.length; i++) {
    const [wallBefore, cpuBefore] = cpu[i - 1]!;
    const [wall, used] = cpu[i]!;
    if (wall > from && wallBefore < doneAt) cpuMs += used - cpuBefore;
  }
  return { cpuMs, doneAt, busyAtEnd };
}

/** A reconnection as the table shows it: over once the last message crossed and both ends finished with what they got. */
interface Settled {
  ms: number;
  /** From the connection to the exchange's last message. */
  lastMessageMs: number;
  figures: ReconnectFigures;
  client: EndActivity;
  server: EndActivity | null;
}

function settle(join: JoinReport, figures: ReconnectFigures, server: ServerReport | undefined): Settled {
  const wire = figures.wire;
  const connected = join.timeOrigin + (wire.connectedAt ?? 0);
  const lastMessage = join.timeOrigin + (wire.lastMessageAt ?? wire.connectedAt ?? 0);
  const to = join.timeOrigin + figures.windowEndAt;
  const client = endActivity(join.cpu, connected, lastMessage, to);
  const activity = server ? endActivity(server.cpu, connected, lastMessage, to) : null;
  if (wire.connectedAt === null || wire.lastMessageAt === null) return { ms: figures.ms, lastMessageMs: figures.ms, figures, client, server: activity };
  return { ms: Math.max(client.doneAt, activity?.doneAt ?? 0) - connected, lastMessageMs: lastMessage - connected, figures, client, server: activity };
}

/** The server's CPU over a cold sync, from the start until the end of its work after the last message. */
function coldServer(join: JoinReport, server: ServerReport | undefined): EndActivity | null {
  const { cold, timeOrigin } = join;
  return server ? endActivity(server.cpu, timeOrigin + cold.startAt, timeOrigin + (cold.wire.lastMessageAt ?? cold.startAt + cold.ms), timeOrigin + cold.windowEndAt) : null;
}

const mb = (bytes: number) => `${fmt(bytes / 1e6, 1)} MB`;
const seconds = (ms: number, digits = 1) => `${fmt(ms / 1000, digits)} s`;
/** Messages each way, and any connection beyond the first (the server dropped the client, which redialed). */
const messages = (wire: WireWindow) =>
  `${fmt(wire.messagesUp)} message${wire.messagesUp === 1 ? "" : "s"} up (${mb(wire.bytesUp)}), ${fmt(wire.messagesDown)} down (${mb(wire.bytesDown)})` +
  (wire.connections > 1 || wire.serverCloses > 0 ? ` over ${fmt(wire.connections)} connections, ${fmt(wire.serverCloses)} of them ended by the server` : "");
/** "How many times better ours is", readable both ways: 25x, 1.4x, 0.12x. */
const times = (ratio: number) => `${fmt(ratio, ratio >= 10 ? 0 : ratio >= 1 ? 1 : 2)}x`;
const totalMessages = (wire: WireWindow) => wire.messagesUp + wire.messagesDown;

interface Side {
  join?: JoinReport;
  server?: ServerReport;
  /** Why a figure is missing: the first failure on the way. */
  failure?: string;
}

/** Starts a server child, runs the joining child against it, stops the server: both reports, or the first failure. */
async function joinServer(serverScript: string, serverTask: object, joinScript: string, joinTask: (url: string, activityUrl: string) => object, limit: { server: number; join: number }): Promise<Side> {
  const service: Service<ServerReport> = await startService<ServerReport>(serverScript, serverTask, limit.server);
  const { url, activityUrl } = service.ready ?? {};
  if (typeof url !== "string" || typeof activityUrl !== "string") {
    await service.stop();
    return { failure: `the server did not start: ${service.failure ?? "no url"}` };
  }
  const joined: ChildOutcome<JoinReport> = await runChild<JoinReport>(joinScript, joinTask(url, activityUrl), limit.join);
  const stopped = await service.stop();
  return {
    join: joined.result,
    server: stopped.result,
    failure: joined.failure ? `the joining side ${joined.failure}` : stopped.failure ? `the server ${stopped.failure}` : undefined,
  };
}

export interface SyncMeasurement {
  rows: Row[];
  /** The course, as the section's text describes it. */
  course: { students: number; assignments: number; documents: number; projected: number; byKind: Record<string, number>; meanBytes: number; upload: number } | null;
}

/** Runs the whole section; `path` names a file or directory under the run's work directory. */
export async function measureSync(quick: boolean, path: (name: string) => string): Promise<SyncMeasurement> {
  const scale = quick ? COURSE.quick : COURSE.full;
  const small = quick ? SMALL_COURSE.quick : SMALL_COURSE.full;
  const upload = quick ? UPLOAD.quick : UPLOAD.full;
  const limit = limits(quick);
  const remove = (...names: string[]) => {
    for (const name of names) rmSync(path(name), { recursive: true, force: true });
  };

  /** Our relay seeded with a course (`name` prefixes its files), joined by a fresh teacher's node. */
  const oursOn = async (name: string, course: typeof scale, phases: { warmRuns: number; regrade: boolean; upload: number }): Promise<Side & { seed?: SeedReport }> => {
    const seeded = await runChild<SeedReport>("sync-ours-child.ts", { task: "seed", relayDir: path(`${name}-relay`), nodeDir: path(`${name}-node`), ...course, exportFile: path(`${name}-export.txt`) } satisfies SyncOursTask, limit.oursSeed);
    const seed = seeded.result;
    if (!seed) return { failure: `the relay's course was not built: ${seeded.failure}` };
    log(`6/6 replication: ours: a fresh teacher's node joins the relay (${fmt(seed.documents)} documents), reconnects ${phases.warmRuns} times${phases.upload > 0 ? `, uploads ${fmt(phases.upload)} pages written offline` : ""}`);
    const side = await joinServer(
      "sync-ours-child.ts",
      { task: "relay", relayDir: path(`${name}-relay`) } satisfies SyncOursTask,
      "sync-ours-child.ts",
      (url, activityUrl) =>
        ({
          task: "join",
          nodeDir: path(`${name}-node`),
          token: seed.token,
          relayUrl: url,
          activityUrl,
          course: seed.course,
          expectedProjected: seed.projected,
          expectedDocuments: seed.documents,
          coldDeadlineMs: limit.coldS * 1000,
          warmRuns: phases.warmRuns,
          changed: phases.regrade ? regradedCount(seed.documents) : 0,
          upload: phases.upload,
        }) satisfies SyncOursTask,
      { server: limit.server, join: limit.oursJoin },
    );
    return { ...side, seed };
  };

  /** The stock server on the NodeFS store built from our relay's export, joined by a fresh stock client. */
  const stockOn = (seed: SeedReport, client: string, preGrowMb: number, phases: { warmRuns: number; regrade: boolean; upload: number }): Promise<Side> =>
    joinServer(
      "sync-stock-child.ts",
      { task: "server", dir: path("sync-stock-server"), preGrowMb } satisfies SyncStockTask,
      "sync-stock-child.ts",
      (url, activityUrl) =>
        ({
          task: "join",
          dir: path(client),
          serverUrl: url,
          activityUrl,
          exportFile: path("sync-export.txt"),
          course: seed.course,
          concurrency: STOCK_FIND_CONCURRENCY,
          coldDeadlineMs: limit.coldS * 1000,
          preGrowMb,
          warmRuns: phases.warmRuns,
          changed: phases.regrade ? regradedCount(seed.documents) : 0,
          upload: phases.upload,
        }) satisfies SyncStockTask,
      { server: limit.server, join: limit.stockJoin },
    );

  log(`6/6 replication: seed the relay with the demo course (${scale.students} students, ${scale.assignments} assignments) and export it for the stock server`);
  const ours = await oursOn("sync", scale, { warmRuns: WARM_RUNS, regrade: true, upload });
  const seed = ours.seed;
  if (!seed) {
    remove("sync-relay", "sync-node", "sync-export.txt");
    return { rows: [failedRow(ours.failure ?? "the relay's course was not built")], course: null };
  }
  const stockSeedTask: SyncStockTask = { task: "seed", dir: path("sync-stock-server"), exportFile: path("sync-export.txt"), preGrowMb: STOCK_SEED_PREGROW_MB };
  const stockSeeded = await runChild<{ documents: number; ms: number }>("sync-stock-child.ts", stockSeedTask, limit.stockSeed);
  let stock: Side = { failure: `the stock server's store was not built: ${stockSeeded.failure}` };
  let stockGrown: Side = stock;
  if (stockSeeded.result) {
    log(`6/6 replication: stock: a fresh client finds every document on a stock server, reconnects ${WARM_RUNS} times, uploads ${fmt(upload)} pages written offline (expect minutes)`);
    stock = await stockOn(seed, "sync-stock-client", 0, { warmRuns: WARM_RUNS, regrade: true, upload });
    log(`6/6 replication: stock with the HAZARDS wasm pre-grow workaround at both ends: cold sync only (for information)`);
    stockGrown = await stockOn(seed, "sync-stock-client-grown", STOCK_SEED_PREGROW_MB, { warmRuns: 0, regrade: false, upload: 0 });
  }
  remove("sync-relay", "sync-node", "sync-stock-server", "sync-stock-client", "sync-stock-client-grown", "sync-export.txt");

  log(`6/6 replication: ours again on a smaller course (${small.students} students, ${small.assignments} assignments): do reconnection messages grow with the course?`);
  const oursSmall = await oursOn("sync-small", small, { warmRuns: WARM_RUNS, regrade: false, upload: 0 });
  remove("sync-small-relay", "sync-small-node", "sync-small-export.txt");

  const rows = syncRows(seed, upload, ours, stock, stockGrown, oursSmall, stockSeeded);
  return { rows, course: { ...scale, documents: seed.documents, projected: seed.projected, byKind: seed.byKind, meanBytes: seed.meanBytes, upload } };
}

function failedRow(why: string): Row {
  return { figure: "Replication", ours: why, stock: "-", ratio: "-", target: "-", met: "no", notes: [] };
}

/** The stock cell of a cold sync that did not finish: how far it got. */
function partialCold(cold: ColdFigures): string {
  return `did not finish: ${fmt(cold.docs)} of ${fmt(cold.expected)} in ${seconds(cold.ms, 0)}`;
}

function syncRows(seed: SeedReport, upload: number, ours: Side, stock: Side, stockGrown: Side, small: Side & { seed?: SeedReport }, stockSeeded: ChildOutcome<{ documents: number; ms: number }>): Row[] {
  const n = fmt(seed.documents);
  const rows: Row[] = [];
  const oursCell = (value: string | undefined) => value ?? ours.failure ?? "-";
  const stockCell = (value: string | undefined, side = stock) => value ?? side.failure ?? "-";
  const cpuList = (runs: Settled[], end: "client" | "server") => runs.map((r) => (r[end] ? `${fmt(r[end].cpuMs)} ms` : "?")).join(", ");
  const stillBusy = (runs: Settled[]) => runs.some((r) => r.client.busyAtEnd || r.server?.busyAtEnd);

  // ---- cold sync ---------------------------------------------------------------------------
  const oc = ours.join?.cold;
  const sc = stock.join?.cold;
  const gc = stockGrown.join?.cold;
  const oursRate = oc?.finished ? perSecond(seed.documents, oc.ms) : undefined;
  // A stock client that ran out of time still shows its rate so far.
  const stockRateOf = (cold: ColdFigures | undefined) => (cold && cold.docs > 0 ? perSecond(cold.docs, cold.finished ? cold.ms : cold.arrivedMs) : undefined);
  const stockRate = stockRateOf(sc);
  const grownRate = stockRateOf(gc);
  const stockColdNotes = (label: string, side: Side, cold: ColdFigures) => {
    const server = side.join ? coldServer(side.join, side.server) : null;
    return [
      `${label}: told all ${n} document ids (a stock client cannot ask for a collection), it found them ${STOCK_FIND_CONCURRENCY} at a time: every find resolved after ${seconds(cold.arrivedMs, 2)}, stored (repo.flush()) after ${seconds(cold.ms, 2)}; connected after ${fmt(cold.connectMs ?? 0)} ms${cold.failures ? `; ${fmt(cold.failures)} finds failed, the first: ${cold.firstFailure ?? "?"}` : ""}`,
      `${label}: ${messages(cold.wire)}; client CPU ${seconds(cold.cpuMs)}${server ? `, server CPU ${seconds(server.cpuMs)}` : ""}; client RSS at the end ${fmt(cold.rssMb)} MB`,
    ];
  };
  const coldNotes: string[] = [];
  if (oc && ours.join) {
    const relay = coldServer(ours.join, ours.server);
    coldNotes.push(
      `ours: ${seconds(oc.ms, 2)} from starting the node until its projection held all ${fmt(oc.expected)} projected documents and its store all ${n} (the store was complete after ${seconds(oc.arrivedMs, 2)}); connected to the relay after ${fmt(oc.connectMs ?? 0)} ms`,
      `ours: ${messages(oc.wire)}; node CPU ${seconds(oc.cpuMs)}${relay ? `, relay CPU ${seconds(relay.cpuMs)}` : ""}; node RSS at the end ${fmt(oc.rssMb)} MB`,
    );
  }
  if (sc) coldNotes.push(...stockColdNotes("stock", stock, sc));
  if (stockSeeded.result) coldNotes.push(`stock: the server's NodeFS store was built untimed by importing our relay's ${fmt(stockSeeded.result.documents)} documents under their own ids (${seconds(stockSeeded.result.ms)})`);
  rows.push({
    figure: `Cold sync, ${n} documents (s)`,
    ours: oursCell(oc ? (oc.finished ? fmt(oc.ms / 1000, 2) : `did not finish: ${fmt(oc.docs)} of ${fmt(oc.expected)} projected`) : undefined),
    stock: stockCell(sc ? (sc.finished ? fmt(sc.ms / 1000, 2) : partialCold(sc)) : undefined),
    ratio: oc?.finished && sc?.finished ? times(sc.ms / oc.ms) : "-",
    target: "(see docs/s)",
    met: "n/a",
    notes: [],
  });
  rows.push({
    figure: `Cold sync, ${n} documents (docs/s)`,
    ours: oursCell(oursRate !== undefined ? fmt(oursRate) : oc ? "did not finish" : undefined),
    stock: stockCell(stockRate !== undefined ? `${fmt(stockRate)}${sc?.finished ? "" : " (did not finish)"}` : undefined),
    ratio: oursRate !== undefined && stockRate !== undefined ? `${times(oursRate / stockRate)}${sc?.finished ? "" : " (at most)"}` : "-",
    target: "ours ≥ 2,000 docs/s and ≥ 15x stock",
    met: oursRate !== undefined && stockRate !== undefined && oursRate >= 2_000 && oursRate >= 15 * stockRate ? "yes" : "no",
    notes: coldNotes,
  });
  rows.push({
    figure: `Cold sync, ${n} documents, stock with wasm pre-grow (docs/s)`,
    ours: oursCell(oursRate !== undefined ? fmt(oursRate) : undefined),
    stock: stockCell(grownRate !== undefined ? `${fmt(grownRate)}${gc?.finished ? "" : " (did not finish)"}` : undefined, stockGrown),
    ratio: oursRate !== undefined && grownRate !== undefined ? times(oursRate / grownRate) : "-",
    target: "(information)",
    met: "n/a",
    notes: gc ? [`stock with the HAZARDS workaround (Automerge's wasm memory grown by ${STOCK_SEED_PREGROW_MB} MB up front at both ends), to show how much of stock's time that one hazard costs`, ...stockColdNotes("stock with pre-grow", stockGrown, gc)] : [],
  });

  // ---- warm reconnect, nothing changed -------------------------------------------------------
  const settled = (side: Side) => (side.join ? side.join.warm.map((w) => settle(side.join!, w, side.server)) : []);
  const oursWarm = settled(ours);
  const stockWarm = settled(stock);
  const smallWarm = settled(small);
  const done = (runs: Settled[]) => runs.length === WARM_RUNS && runs.every((r) => r.figures.finished);
  const oursWarmMs = done(oursWarm) ? median(oursWarm.map((r) => r.ms)) : undefined;
  const stockWarmMs = done(stockWarm) ? median(stockWarm.map((r) => r.ms)) : undefined;
  const msList = (values: number[]) => values.map((ms) => `${fmt(ms)} ms`).join(", ");
  const warmNotes: string[] = [];
  if (oursWarm.length > 0) {
    const inSync = oursWarm.map((r) => r.figures.inSyncMs);
    warmNotes.push(
      `ours: ${msList(oursWarm.map((r) => r.ms))} (median shown), from the new connection until the last message and both ends done with it; the last message crossed after ${msList(oursWarm.map((r) => r.lastMessageMs))}; the node's own status said "in sync" after ${inSync.map((ms) => (ms === null ? "never" : `${fmt(ms)} ms`)).join(", ")}`,
      `ours: relay CPU ${cpuList(oursWarm, "server")}; node CPU ${cpuList(oursWarm, "client")}${stillBusy(oursWarm) ? "; an end was still busy when a window closed: that run took longer than shown" : ""}`,
    );
  }
  if (stockWarm.length > 0) {
    warmNotes.push(
      `stock: ${msList(stockWarm.map((r) => r.ms))} (median shown), the same way; the last message crossed after ${msList(stockWarm.map((r) => r.lastMessageMs))} (stock has no "in sync" to ask, and its server answers nothing when nothing changed: the ends' CPU tells when they were done)`,
      `stock: server CPU ${cpuList(stockWarm, "server")}; client CPU ${cpuList(stockWarm, "client")}; the client redials on its own 5 s after a drop, not counted${stillBusy(stockWarm) ? "; an end was still busy when a window closed: that run took longer than shown" : ""}`,
    );
  }
  rows.push({
    figure: `Warm reconnect, nothing changed, ${n} documents (ms)`,
    ours: oursCell(oursWarmMs !== undefined ? fmt(oursWarmMs) : ours.join ? "did not finish" : undefined),
    stock: stockCell(stockWarmMs !== undefined ? fmt(stockWarmMs) : stock.join ? (stock.join.cold.finished ? "did not finish" : "not run: the cold sync did not finish") : undefined),
    ratio: oursWarmMs !== undefined && stockWarmMs !== undefined ? times(stockWarmMs / oursWarmMs) : "-",
    target: "ours < 300 ms",
    met: oursWarmMs !== undefined && oursWarmMs < 300 ? "yes" : "no",
    notes: warmNotes,
  });
  const medianMessages = (runs: Settled[]) => (done(runs) ? median(runs.map((r) => totalMessages(r.figures.wire))) : undefined);
  const oursMessages = medianMessages(oursWarm);
  const stockMessages = medianMessages(stockWarm);
  const smallMessages = medianMessages(smallWarm);
  const smallDocs = small.seed?.documents;
  const messageNotes: string[] = [];
  if (done(oursWarm)) messageNotes.push(`ours: ${oursWarm.map((r) => messages(r.figures.wire)).join("; ")}`);
  if (smallMessages !== undefined && smallDocs !== undefined) messageNotes.push(`ours on a course of ${fmt(smallDocs)} documents: ${smallWarm.map((r) => messages(r.figures.wire)).join("; ")}`);
  else if (small.failure) messageNotes.push(`ours on the smaller course: ${small.failure}`);
  if (done(stockWarm)) messageNotes.push(`stock: ${stockWarm.map((r) => messages(r.figures.wire)).join("; ")}`);
  rows.push({
    figure: `Warm reconnect, nothing changed: WebSocket messages`,
    ours: oursCell(oursMessages !== undefined ? `${fmt(oursMessages)}${smallMessages !== undefined && smallDocs !== undefined ? ` (${fmt(smallMessages)} at ${fmt(smallDocs)} docs)` : ""}` : undefined),
    stock: stockCell(stockMessages !== undefined ? fmt(stockMessages) : undefined),
    ratio: oursMessages !== undefined && stockMessages !== undefined ? times(stockMessages / oursMessages) : "-",
    target: "ours: as many at ~10x the documents",
    met: oursMessages !== undefined && smallMessages !== undefined ? (oursMessages <= smallMessages ? "yes" : "no") : "n/a",
    notes: messageNotes,
  });

  // ---- warm reconnect, 1% changed -----------------------------------------------------------------
  const oc1 = ours.join?.changed ?? null;
  const sc1 = stock.join?.changed ?? null;
  const oursChanged = oc1?.finished ? settle(ours.join!, oc1, ours.server) : undefined;
  const stockChanged = sc1?.finished ? settle(stock.join!, sc1, stock.server) : undefined;
  const regraded = oc1?.docs ?? sc1?.docs ?? regradedCount(seed.documents);
  const changedNotes: string[] = [];
  if (oc1) {
    changedNotes.push(
      `ours: ${seconds(oursChanged?.ms ?? oc1.ms, 2)} from the new connection until the last message and both ends done with it; the node said "in sync" after ${oc1.inSyncMs === null ? "never" : seconds(oc1.inSyncMs, 2)}; ${messages(oc1.wire)}; relay CPU ${oursChanged?.server ? seconds(oursChanged.server.cpuMs) : "?"}, node CPU ${oursChanged ? seconds(oursChanged.client.cpuMs) : "?"}`,
    );
  }
  if (sc1) changedNotes.push(`stock: ${seconds(stockChanged?.ms ?? sc1.ms, 2)} the same way; ${messages(sc1.wire)}; server CPU ${stockChanged?.server ? seconds(stockChanged.server.cpuMs) : "?"}, client CPU ${stockChanged ? seconds(stockChanged.client.cpuMs) : "?"}`);
  changedNotes.push(`the teacher regrades ${fmt(regraded)} grades (${Math.round(CHANGED_SHARE * 100)}% of the course) while offline, then reconnects; "proportional" is judged by messages: at most ${CHANGED_MESSAGES_PER_DOC} per changed document plus ${CHANGED_MESSAGES_FIXED}, whatever the size of the course`);
  const oursChangedMessages = oc1?.finished ? totalMessages(oc1.wire) : undefined;
  rows.push({
    figure: `Warm reconnect, ${fmt(regraded)} of ${n} documents changed (ms)`,
    ours: oursCell(oursChanged ? `${fmt(oursChanged.ms)} (${fmt(oursChangedMessages ?? 0)} messages)` : oc1 ? "did not finish" : ours.join ? "not run" : undefined),
    stock: stockCell(stockChanged ? `${fmt(stockChanged.ms)} (${fmt(totalMessages(sc1!.wire))} messages)` : sc1 ? "did not finish" : stock.join ? "not run" : undefined),
    ratio: oursChanged && stockChanged ? times(stockChanged.ms / oursChanged.ms) : "-",
    target: "ours: cost proportional to the changed documents",
    met: oursChangedMessages !== undefined ? (oursChangedMessages <= CHANGED_MESSAGES_PER_DOC * regraded + CHANGED_MESSAGES_FIXED ? "yes" : "no") : "no",
    notes: changedNotes,
  });

  // ---- upload ---------------------------------------------------------------------------------
  const ou = ours.join?.upload ?? null;
  const su = stock.join?.upload ?? null;
  const oursUp = ou?.finished ? settle(ours.join!, ou, ours.server) : undefined;
  const stockUp = su?.finished ? settle(stock.join!, su, stock.server) : undefined;
  const oursUpRate = oursUp ? perSecond(upload, oursUp.ms) : undefined;
  const stockUpRate = stockUp ? perSecond(upload, stockUp.ms) : undefined;
  const expectedAfter = seed.documents + upload;
  const held = (side: Side) => side.server !== undefined && side.server.documents >= expectedAfter;
  const uploadNotes: string[] = [];
  if (ou) {
    uploadNotes.push(
      `ours: ${seconds(oursUp?.ms ?? ou.ms, 2)} from the new connection until the last message and both ends done with it (the last message after ${seconds(oursUp?.lastMessageMs ?? ou.ms, 2)}); the node said "in sync" after ${ou.inSyncMs === null ? "never" : seconds(ou.inSyncMs, 2)}; writing the pages offline took ${seconds(ou.createMs, 2)} (not counted)`,
      `ours: ${messages(ou.wire)}; relay CPU ${oursUp?.server ? seconds(oursUp.server.cpuMs) : "?"}, node CPU ${oursUp ? seconds(oursUp.client.cpuMs) : "?"}; the relay held ${ours.server ? fmt(ours.server.documents) : "?"} documents at the end (${fmt(expectedAfter)} expected)${oursUp && stillBusy([oursUp]) ? "; an end was still busy when the window closed" : ""}`,
    );
  }
  if (su) {
    uploadNotes.push(
      `stock: ${seconds(stockUp?.ms ?? su.ms, 2)} the same way (the last message after ${seconds(stockUp?.lastMessageMs ?? su.ms, 2)}); its client syncs every document it holds on each connection, the ${n} of the cold sync with the new ones; writing the pages offline (repo.create, then repo.flush()) took ${seconds(su.createMs, 2)} (not counted)`,
      `stock: ${messages(su.wire)}; server CPU ${stockUp?.server ? seconds(stockUp.server.cpuMs) : "?"}, client CPU ${stockUp ? seconds(stockUp.client.cpuMs) : "?"}; the server's NodeFS directory held ${stock.server ? fmt(stock.server.documents) : "?"} documents at the end (${fmt(expectedAfter)} expected)${stockUp && stillBusy([stockUp]) ? "; an end was still busy when the window closed" : ""}`,
    );
  }
  const uploadCell = (rate: number | undefined, figures: ReconnectFigures | null, side: Side) =>
    rate !== undefined ? `${fmt(rate)}${held(side) ? "" : " (not all arrived)"}` : figures ? "did not finish" : side.join ? "not run" : undefined;
  rows.push({
    figure: `Upload ${fmt(upload)} documents written offline (docs/s)`,
    ours: oursCell(uploadCell(oursUpRate, ou, ours)),
    stock: stockCell(uploadCell(stockUpRate, su, stock)),
    ratio: oursUpRate !== undefined && stockUpRate !== undefined ? times(oursUpRate / stockUpRate) : "-",
    target: "ours ≥ 10x stock",
    met: oursUpRate !== undefined && stockUpRate !== undefined && held(ours) && oursUpRate >= 10 * stockUpRate ? "yes" : "no",
    notes: uploadNotes,
  });

  // ---- memory, for information ------------------------------------------------------------------
  rows.push({
    figure: `Peak RSS of the joining side (MB)`,
    ours: oursCell(ours.join ? fmt(ours.join.peakRssMb) : undefined),
    stock: stockCell(stock.join ? fmt(stock.join.peakRssMb) : undefined),
    ratio: ours.join && stock.join ? times(stock.join.peakRssMb / ours.join.peakRssMb) : "-",
    target: "(information)",
    met: "n/a",
    notes: [],
  });
  rows.push({
    figure: `Peak RSS of the server, one client (MB)`,
    ours: oursCell(ours.server ? fmt(ours.server.peakRssMb) : undefined),
    stock: stockCell(stock.server ? fmt(stock.server.peakRssMb) : undefined),
    ratio: ours.server && stock.server ? times(stock.server.peakRssMb / ours.server.peakRssMb) : "-",
    target: "(information)",
    met: "n/a",
    notes: [],
  });
  return rows;
}

export const SYNC_MARKERS = {
  start: "<!-- sync: written by npm run bench; BENCH_ONLY=sync rewrites only this section -->",
  end: "<!-- sync end -->",
};

/** The replication section, with the machine and code it was measured on: it can be measured apart from the rest. */
export function renderSyncSection(measurement: SyncMeasurement, run: RunInfo): string {
  const c = measurement.course;
  const kinds = c
    ? Object.entries(c.byKind)
        .sort((a, b) => b[1] - a[1])
        .map(([kind, count]) => `${fmt(count)} ${kind}`)
        .join(", ")
    : "";
  const course = c
    ? `The course is the demo course (\`ordo demo\`) scaled to ${c.students} students and ${c.assignments} assignments:
${fmt(c.documents)} documents (${kinds}), ${fmt(c.projected)} of them projected into SQL (catalogs are not),
${fmt(c.meanBytes)} bytes per saved document on average.`
    : "The course could not be built in this run.";
  return `${SYNC_MARKERS.start}
## Replication

A fresh node joins a relay holding a whole course; both ends run in fresh processes on loopback,
and the joining side dials through a TCP proxy in its own process (\`bench/wire-meter.ts\`) that
counts WebSocket messages from the frames themselves (data frames, not pings, nor the \`ordo-sent\`
count of messages sent that an Ordo link adds a second after each burst, which like a ping is
transport bookkeeping) and can cut the connection. ${course}

- **Ours**: \`ordo relay\` as \`SyncNode\` (mode relay, its own authority) holding the course; a fresh
  \`SyncNode\` with a teacher's token bound to its key dials it (\`relay\` option). **Stock**: both
  ends stock automerge-repo 2.5.6: a server \`Repo\` with \`WebSocketServerAdapter\` and
  \`NodeFSStorageAdapter\` (\`sharePolicy\` false, as the stock sync server runs), holding the same
  documents under the same ids, ready once it knows its storage id; a fresh client \`Repo\` with
  \`WebSocketClientAdapter\` and its own \`NodeFSStorageAdapter\`.
- **Cold sync**: ours, from starting the node until its SQL projection holds every projected
  document and its store every document the teacher may read (all of the course); stock, from
  constructing the client \`Repo\` until \`repo.find\` resolved for every document id, ${STOCK_FIND_CONCURRENCY} at a
  time, and \`repo.flush()\` stored them. A stock client cannot ask for a collection: it is told
  every id. Documents per second = documents / that time.
- **Warm reconnect, nothing changed**: the proxy drops the connection, the joining side redials
  by itself (ours with its backoff, stock every 5 s), and the time runs from the new connection
  until the last message of the exchange and both ends being done with it. The wire alone cannot
  tell: a stock client works for seconds before its first sync message, and a stock server answers
  nothing when nothing changed. So both ends sample their CPU every 50 ms; an exchange is over once
  no message has crossed and neither end has been busy (above ${fmt(BUSY_SHARE * 100)}% of a core) for ${seconds(QUIET_MS, 0)}, and each
  end's work that ran on from the last message ends at its first ${fmt(IDLE_GAP_MS)} ms below that. The joining
  side waits ${seconds(SETTLE_MS, 0)} more before its next step. Median of ${WARM_RUNS} reconnections; ours is measured again
  on a smaller course to show whether its message count grows with the course.
- **Warm reconnect, 1% changed**: with the proxy refusing connections, the teacher regrades 1% of
  the course (that many grades, the first in id order, the same on both sides), then the proxy
  accepts connections again; the time runs as for a reconnection.
- **Upload**: with the proxy refusing connections, the teacher writes ${c ? fmt(c.upload) : "the"} unpublished pages
  (the same values on both sides), then the proxy accepts connections again; the time runs as for
  a reconnection, and the server's document count at the end confirms they arrived.
- **Stock as shipped** for every figure with a target. The HAZARDS wasm pre-grow workaround is used
  only to build the stock server's store (untimed) and in one informational cold sync.

${machineLines().join("\n")}
- Date: ${run.startedAt.toISOString()}
- Code measured: ${run.code}
- Load average when the run started: ${fmt(run.loadAtStart, 2)} (on a shared machine; a busy one makes the times noisier)

${markdownTable(measurement.rows, "Stock automerge-repo", "Ratio (ours better by)")}${SYNC_MARKERS.end}
`;
}
