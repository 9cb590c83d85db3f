import type { DocUrl } from "../../crdt/ids.js";
import type { Entity } from "../../crdt/schema/document.js";
import { systemClock } from "../../util/clock.js";
import { ReferenceAliases } from "../reference-aliases.js";
import { mappedUrl } from "../remote-records.js";
import { canvasInstance, urlOf, type CanvasType } from "./canvas-mapping.js";
import { REMOTE_TYPE, type CanvasPushContext } from "./canvas-objects.js";
import { PUSHED_KINDS, type PushedKind } from "./canvas-requests.js";
import type { PushOptions } from "./canvas-push.js";

/** What a push works with: the options, and the course as this node knows it. */
export async function pushContext(options: PushOptions): Promise<CanvasPushContext> {
  const instance = options.instance ?? canvasInstance(options.client.baseUrl);
  const course = (await mappedUrl(options.db, "canvas", "course", options.courseId)) ?? urlOf(instance, "course", options.courseId)!;
  const courseDoc = await options.store.find<"course">(course);
  return {
    client: options.client,
    store: options.store,
    db: options.db,
    outbox: options.outbox,
    instance,
    courseId: options.courseId,
    course,
    timeZone: courseDoc?.timeZone ?? "UTC",
    aliases: await ReferenceAliases.load(options.db, "canvas", (type, id) => urlOf(instance, type as CanvasType, id)),
    clock: options.clock ?? systemClock,
  };
}

/**
 * Queues what must reach Canvas: an update for each Canvas object whose document changed since
 * its last sync (its heads differ from those recorded then; what a pull writes is recorded as
 * in sync, so nothing echoes), and a create for each document of the course that Canvas does
 * not have yet, made here or mirrored from Discourse. A document whose last send Canvas refused
 * is queued again only once it is edited after that refusal.
 */
export async function enqueueChanges(ctx: CanvasPushContext): Promise<void> {
  const { db, store, outbox } = ctx;
  const refused = await refusedSince(ctx);
  const retry = (doc: Entity): boolean => !(refused.get(doc.url) && refused.get(doc.url)! >= doc.updatedAt);

  const synced = await db
    .selectFrom("remote_sync")
    .innerJoin("remote_ids", (join) => join.onRef("remote_ids.doc_url", "=", "remote_sync.doc_url").onRef("remote_ids.system", "=", "remote_sync.system"))
    .select(["remote_sync.doc_url", "remote_sync.local_heads"])
    .where("remote_sync.system", "=", "canvas")
    .where("remote_ids.remote_type", "in", Object.values(REMOTE_TYPE))
    .execute();
  for (const row of synced) {
    const record = await store.record(row.doc_url as DocUrl);
    if (!record || record.deleted || record.heads === row.local_heads) continue;
    const doc = await store.find(row.doc_url as DocUrl);
    if (doc && retry(doc)) await outbox.enqueue("canvas", row.doc_url, "update");
  }

  const mapped = new Set((await db.selectFrom("remote_ids").select("doc_url").where("system", "=", "canvas").execute()).map((r) => r.doc_url));
  for (const kind of PUSHED_KINDS) {
    // Only documents no Canvas object is mapped to are read: in a pulled course, that is the work done here.
    for (const url of await store.urls(ctx.course, kind)) {
      if (mapped.has(url)) continue;
      const doc = await store.find(url);
      if (!doc || doc.external.canvas || !retry(doc) || !(await belongsInCanvas(ctx, kind, doc))) continue;
      await outbox.enqueue("canvas", doc.url, "create");
    }
  }
}

/** A post goes to Canvas when its topic does (a Discourse reply in a mirrored topic); a deleted one never starts there. */
async function belongsInCanvas(ctx: CanvasPushContext, kind: PushedKind, doc: Entity): Promise<boolean> {
  if (kind !== "post") return true;
  const post = doc as Entity<"post">;
  if (post.deleted || !post.topic) return false;
  return (await ctx.store.find(post.topic))?.course === ctx.course;
}

/** When each document's last send to Canvas was refused for good. */
async function refusedSince(ctx: CanvasPushContext): Promise<Map<string, string>> {
  const rows = await ctx.db.selectFrom("outbox").select("doc_url").select((eb) => eb.fn.max("updated_at").as("at")).where("system", "=", "canvas").where("status", "=", "failed").groupBy("doc_url").execute();
  return new Map(rows.map((row) => [row.doc_url, String(row.at)]));
}
