import { isDeepStrictEqual } from "node:util";
import type { Entity } from "../../crdt/schema/document.js";
import { pick, TEXT_FIELDS } from "../import-documents.js";
import { reconcile, type FieldValues, type SyncBase } from "../reconcile.js";
import { recordInSync } from "../remote-records.js";
import { readBase, recordConflicts, strategyFor } from "../sync-base.js";
import { readObject, remoteFieldsOf, remoteIdOfPayload, remoteTimeOf, type CanvasPushContext, type Place } from "./canvas-objects.js";
import { CANVAS_OWNED, canvasRequest, isSent } from "./canvas-requests.js";

export interface UpdateOutcome {
  /** Whether a write reached Canvas (nothing is sent when Canvas already holds what it must). */
  sent: boolean;
  /** Fields both sides changed, settled by the course's strategy and recorded. */
  conflicts: number;
}

/**
 * Brings a Canvas object and its document into step after either changed. Canvas has no
 * `If-Match`: the object is read just before the write, reconciled field by field against the
 * bases of the last sync (the course's strategy for the kind settles what both sides changed,
 * `prefer_recent` judging by the `updated_at` just read), the document takes what it must, and
 * Canvas is sent only the fields it must change, which keeps a concurrent edit there to the
 * fields this one touches. The base recorded after takes the remote side from Canvas's answer:
 * HTML Canvas rewrote is then its form of the same text, not a change.
 */
export async function pushUpdate(ctx: CanvasPushContext, doc: Entity, place: Place): Promise<UpdateOutcome> {
  const { store, db, clock } = ctx;
  const current = await readObject(ctx, place);
  const remote = remoteFieldsOf(ctx, place, current);
  const local = pick(doc, Object.keys(remote));
  const strategy = await strategyFor(db, doc.course, doc.kind);
  const base = (await readBase(db, doc.url, "canvas")) ?? (await baseBeforeBasesWereKept(ctx, doc, remote));
  const outcome = reconcile({ system: "canvas", base, local, remote, strategy, localTime: doc.updatedAt, remoteTime: remoteTimeOf(place.kind, current), textFields: TEXT_FIELDS });
  await recordConflicts(db, doc.url, "canvas", strategy, outcome.conflicts, clock);
  if (Object.keys(outcome.toLocal).length > 0) {
    await store.change(doc.url, (draft) => Object.assign(draft, outcome.toLocal));
  }

  const changes = Object.keys(outcome.toRemote).filter((field) => isSent(place.kind, field, "update"));
  let after = current;
  let remoteAfter = remote;
  if (changes.length > 0) {
    // A grade is one posted value: it is sent whole whichever of score and grade changed.
    const resolved = { ...local, ...outcome.toLocal };
    const values = place.kind === "grade" ? { score: resolved.score, grade: resolved.grade } : Object.fromEntries(changes.map((field) => [field, outcome.toRemote[field]]));
    const form = canvasRequest(place.kind, values, "update", ctx.timeZone);
    after = (await ctx.client.request<Record<string, unknown>>("PUT", place.write, { form })).body;
    remoteAfter = remoteFieldsOf(ctx, place, after);
    // What Canvas decides in answer to the write (a renamed page's slug, when a grade was given) is the document's too.
    const decided = Object.fromEntries(CANVAS_OWNED[place.kind].filter((field) => !isDeepStrictEqual(remoteAfter[field], remote[field])).map((field) => [field, remoteAfter[field]]));
    if (Object.keys(decided).length > 0) await store.change(doc.url, (draft) => Object.assign(draft, decided));
  }
  const written = await store.find(doc.url);
  const nextBase: SyncBase = { local: written ? pick(written, Object.keys(remoteAfter)) : outcome.nextBase.local, remote: remoteAfter };
  await recordInSync(db, store, { system: "canvas", type: place.type, remoteId: remoteIdOfPayload(place.kind, after), url: doc.url, remoteVersion: remoteTimeOf(place.kind, after), base: nextBase }, clock);
  return { sent: changes.length > 0, conflicts: outcome.conflicts.length };
}

/**
 * A document synced before bases were kept has none: if it changed here since that sync, its
 * differences from Canvas are taken as this node's edits (what the push before bases did,
 * sending the document whole); otherwise Canvas is taken as it is.
 */
async function baseBeforeBasesWereKept(ctx: CanvasPushContext, doc: Entity, remote: FieldValues): Promise<SyncBase | null> {
  const row = await ctx.db.selectFrom("remote_sync").select("local_heads").where("doc_url", "=", doc.url).where("system", "=", "canvas").executeTakeFirst();
  const heads = (await ctx.store.record(doc.url))?.heads;
  return row && row.local_heads !== heads ? { local: remote, remote } : null;
}
