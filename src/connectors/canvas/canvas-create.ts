import type { Entity } from "../../crdt/schema/document.js";
import { pick } from "../import-documents.js";
import type { OutboxEntry } from "../outbox.js";
import { recordInSync } from "../remote-records.js";
import { urlOf } from "./canvas-mapping.js";
import { remoteFieldsOf, remoteIdOfPayload, remoteTimeOf, type CanvasPushContext, type Place } from "./canvas-objects.js";
import { canvasRequest, isSent } from "./canvas-requests.js";

type Payload = Record<string, unknown>;

/**
 * Makes a document's object in Canvas. The outbox entry is `sending`, committed, before the
 * request leaves, and the request is never repeated by the HTTP client: Canvas has no
 * idempotency key, so a create whose answer was lost is settled by looking for the object
 * (canvas-recovery.ts), never by sending it again blindly.
 */
export async function pushCreate(ctx: CanvasPushContext, entry: OutboxEntry, doc: Entity, place: Place): Promise<void> {
  const values = Object.fromEntries(Object.entries(pick(doc, Object.keys(doc))).filter(([field]) => isSent(place.kind, field, "create")));
  const form = canvasRequest(place.kind, values, "create", ctx.timeZone);
  const response = await ctx.client.request<Payload>(place.create.method, place.create.path, { form, once: true });
  await settleCreate(ctx, entry, doc, place, response.body);
}

/**
 * Records that a document's object exists in Canvas: the entry closes with the id mapped (one
 * transaction), the document takes the Canvas id and fills what it left blank from Canvas (a
 * new topic's author, a page's slug), and the bases are recorded with the remote side as
 * Canvas stored it, so the next pull of the object changes nothing.
 */
export async function settleCreate(ctx: CanvasPushContext, entry: OutboxEntry, doc: Entity, place: Place, payload: Payload): Promise<void> {
  const remoteId = remoteIdOfPayload(place.kind, payload);
  ctx.aliases.add(urlOf(ctx.instance, place.type, remoteId), doc.url);
  const remote = remoteFieldsOf(ctx, place, payload);
  await ctx.outbox.sent(entry.id, { type: place.type, id: remoteId });
  const current = pick(doc, Object.keys(remote));
  const written = await ctx.store.change(doc.url, (draft) => {
    draft.external.canvas = remoteId;
    const target = draft as unknown as Record<string, unknown>;
    for (const [field, value] of Object.entries(remote)) if (isBlank(current[field]) && !isBlank(value)) target[field] = value;
  });
  await recordInSync(ctx.db, ctx.store, { system: "canvas", type: place.type, remoteId, url: doc.url, remoteVersion: remoteTimeOf(place.kind, payload), base: { local: pick(written, Object.keys(remote)), remote } }, ctx.clock);
}

/** A value the document never set: Canvas's is taken. (False is a value; positions start at 1.) */
function isBlank(value: unknown): boolean {
  return value === null || value === undefined || value === "" || value === 0 || (Array.isArray(value) && value.length === 0);
}
