import type { Kysely } from "kysely";
import type { DocStore } from "../../crdt/doc-store.js";
import type { DocUrl } from "../../crdt/ids.js";
import type { Entity } from "../../crdt/schema/document.js";
import type { Clock } from "../../util/clock.js";
import type { ConnectorTables } from "../connector-tables.js";
import { RemoteError, type HttpClient } from "../http-client.js";
import type { Outbox, OutboxEntry } from "../outbox.js";
import { followRemoteDeletion, isGoneRemotely } from "../remote-deletion.js";
import { enqueueChanges, pushContext } from "./canvas-changes.js";
import { pushCreate, settleCreate } from "./canvas-create.js";
import type { CanvasInstance } from "./canvas-mapping.js";
import { placeOf, type CanvasPushContext } from "./canvas-objects.js";
import { findCreated } from "./canvas-recovery.js";
import { PUSHED_KINDS } from "./canvas-requests.js";
import { pushUpdate } from "./canvas-update.js";

export interface PushOptions {
  client: HttpClient;
  store: DocStore;
  db: Kysely<ConnectorTables>;
  outbox: Outbox;
  courseId: string;
  /** Defaults to the instance at the client's address. */
  instance?: CanvasInstance;
  clock?: Clock;
}

export interface PushResult {
  /** Objects created or changed in Canvas. */
  sent: number;
  created: number;
  updated: number;
  /** Creates an interrupted send left in doubt, found made in Canvas: recorded, not sent again. */
  recovered: number;
  /** Objects changed on both sides since the last sync, settled by the course's strategy (see `remote_conflicts`). */
  conflicts: number;
  /** Will be retried (Canvas was unreachable or busy, or a create's outcome is still to be settled). */
  retrying: number;
  /** Waiting for something they refer to (a reply's topic or parent) to reach Canvas first. */
  deferred: number;
  /** Changed here but deleted in Canvas meanwhile: deleted here too, recorded as conflicts. */
  deleted: number;
  failed: Array<{ url: string; error: string }>;
}

/** Order of sending: what others refer to first (a topic before its replies, an assignment before its grades). */
const SEND_ORDER: Record<string, number> = Object.fromEntries(["assignment", "page", "discussion_topic", "grade", "post"].map((kind, i) => [kind, i]));
/** Passes over the outbox in one push: a reply waiting for its parent goes in the pass after the parent's. */
const MAX_PASSES = 8;

/**
 * Sends this node's work on a Canvas course to Canvas: new and edited assignments, pages,
 * discussion topics and announcements, replies, and grades (a grade becomes its submission's
 * score). A topic or reply that came from Discourse is made in Canvas like one made here. Each
 * change goes through the outbox; an update reconciles with Canvas field by field first (see
 * canvas-update.ts); a create is made exactly once (see canvas-create.ts, canvas-recovery.ts).
 * Reports per document; throws only when the node's own tables cannot be read.
 *
 * @example
 * const result = await pushCanvasChanges({ client, store: engine.docs, db: connectorDb(engine.db), outbox: new Outbox(db), courseId: "4201" });
 */
export async function pushCanvasChanges(options: PushOptions): Promise<PushResult> {
  const ctx = await pushContext(options);
  const result: PushResult = { sent: 0, created: 0, updated: 0, recovered: 0, conflicts: 0, retrying: 0, deferred: 0, deleted: 0, failed: [] };
  await settleInDoubt(ctx, result);
  await enqueueChanges(ctx);
  for (let pass = 0; pass < MAX_PASSES; pass++) {
    const { begun, waiting } = await sendDue(ctx, result);
    result.deferred = waiting;
    if (begun === 0 || waiting === 0) break;
  }
  return result;
}

/** Sends every due entry once; reports how many were sent and how many wait for another. */
async function sendDue(ctx: CanvasPushContext, result: PushResult): Promise<{ begun: number; waiting: number }> {
  const { outbox } = ctx;
  let begun = 0;
  let waiting = 0;
  for (const { entry, doc } of await dueInOrder(ctx)) {
    const place = doc ? await placeOf(ctx, doc) : { unreachable: "the document is gone" };
    if ("waiting" in place) {
      waiting++;
      continue;
    }
    if ("unreachable" in place || !doc) {
      const why = "unreachable" in place ? place.unreachable : "the document is gone";
      await outbox.failed(entry.id, why, { status: "failed" });
      result.failed.push({ url: entry.doc_url, error: why });
      continue;
    }
    if (!(await outbox.begin(entry.id))) continue;
    begun++;
    const creating = place.remoteId === null;
    try {
      if (creating) {
        await pushCreate(ctx, entry, doc, place);
        result.created++;
        result.sent++;
        continue;
      }
      const outcome = await pushUpdate(ctx, doc, place);
      await outbox.sent(entry.id, { type: place.type, id: place.remoteId! });
      if (outcome.sent) {
        result.updated++;
        result.sent++;
      }
      if (outcome.conflicts > 0) result.conflicts++;
    } catch (error) {
      await recordFailure(ctx, entry, error, creating, result);
    }
  }
  return { begun, waiting };
}

async function dueInOrder(ctx: CanvasPushContext): Promise<Array<{ entry: OutboxEntry; doc: Entity | undefined }>> {
  const due = await Promise.all((await ctx.outbox.due("canvas")).map(async (entry) => ({ entry, doc: await ctx.store.find(entry.doc_url as DocUrl) })));
  const rank = (doc: Entity | undefined) => (doc ? (SEND_ORDER[doc.kind] ?? 99) : -1);
  return due.sort((a, b) => rank(a.doc) - rank(b.doc) || (a.doc?.createdAt ?? "").localeCompare(b.doc?.createdAt ?? "") || a.entry.id - b.entry.id);
}

/**
 * A create Canvas may have carried out (its answer lost, the server failing midway, or this
 * node's own error after the answer) stays `sending`: the next push looks for the object before
 * anything is sent again. Anything Canvas refused made nothing, and is retried or given up.
 */
async function recordFailure(ctx: CanvasPushContext, entry: OutboxEntry, error: unknown, creating: boolean, result: PushResult): Promise<void> {
  const problem = error instanceof RemoteError ? error.problem : null;
  const refused = problem !== null && !(problem.kind === "server" || problem.kind === "network" || (problem.kind === "invalid" && problem.status < 300));
  const message = (error as Error).message;
  if (isGoneRemotely(entry, error)) {
    await followRemoteDeletion(ctx, entry, "canvas");
    result.deleted++;
    return;
  }
  if (creating && !refused) {
    result.retrying++;
    return;
  }
  if (problem && (problem.kind === "throttled" || problem.kind === "server" || problem.kind === "network")) {
    await ctx.outbox.failed(entry.id, message, { retryAt: new Date(ctx.clock().getTime() + 60_000 * Math.min(entry.attempts + 1, 30)) });
    result.retrying++;
    return;
  }
  await ctx.outbox.failed(entry.id, message, { status: "failed" });
  result.failed.push({ url: entry.doc_url, error: message });
}

/**
 * Settles the entries an interrupted push left `sending`. A create is looked for in Canvas: found,
 * it is recorded as made; not there, it goes back to be sent; Canvas unreadable, it stays in
 * doubt. An update, or a grade, is simply done again (reading Canvas first, it cannot apply twice).
 */
async function settleInDoubt(ctx: CanvasPushContext, result: PushResult): Promise<void> {
  const { outbox, store } = ctx;
  for (const entry of await outbox.inDoubt("canvas")) {
    const doc = await store.find(entry.doc_url as DocUrl);
    const place = doc && (PUSHED_KINDS as readonly string[]).includes(doc.kind) ? await placeOf(ctx, doc) : null;
    if (!doc || !place || "unreachable" in place) {
      await outbox.failed(entry.id, "the document is gone, or no longer goes to Canvas", { status: "failed" });
      continue;
    }
    if ("waiting" in place || entry.operation !== "create" || place.kind === "grade") {
      await outbox.failed(entry.id, "interrupted; done again", { retryAt: ctx.clock() });
      continue;
    }
    try {
      const found = await findCreated(ctx, doc, place);
      if (found) {
        await settleCreate(ctx, entry, doc, place, found);
        result.recovered++;
      } else {
        await outbox.failed(entry.id, "not in Canvas after an interrupted send: sending again", { retryAt: ctx.clock() });
      }
    } catch {
      result.retrying++;
    }
  }
}
