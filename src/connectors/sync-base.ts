import type { Kysely } from "kysely";
import type { DocUrl } from "../crdt/ids.js";
import { isoNow, systemClock, type Clock } from "../util/clock.js";
import type { ConflictStrategy, ConnectorTables, RemoteSystem } from "./connector-tables.js";
import type { FieldConflict, SyncBase } from "./reconcile.js";

/**
 * What the connectors remember per document and system to reconcile the next time: the
 * fields at the last sync on both sides (`remote_sync.base`), the strategy chosen for the
 * course and kind, and every conflict met (`remote_conflicts`, read by `ordo conflicts`).
 */

/** The strategy a course uses when none is set: field by field, Canvas winning a real clash (it is the gradebook of record). */
export const DEFAULT_STRATEGY: ConflictStrategy = "merge_prefer_canvas";

/** The `kind` a course-wide strategy is stored under. */
export const ANY_KIND = "*";

export const STRATEGIES: readonly ConflictStrategy[] = ["prefer_canvas", "prefer_discourse", "prefer_recent", "merge_prefer_canvas", "merge_prefer_discourse"];

export async function readBase(db: Kysely<ConnectorTables>, url: DocUrl, system: RemoteSystem): Promise<SyncBase | null> {
  const row = await db.selectFrom("remote_sync").select("base").where("doc_url", "=", url).where("system", "=", system).executeTakeFirst();
  if (!row?.base) return null;
  try {
    const base = JSON.parse(row.base) as SyncBase;
    return base && typeof base.local === "object" && typeof base.remote === "object" ? base : null;
  } catch {
    // A damaged base is as good as none: the remote object is then taken as it is.
    return null;
  }
}

/** The strategy for one kind of entity in a course: set for the kind, else for the course, else the default. */
export async function strategyFor(db: Kysely<ConnectorTables>, course: DocUrl | null, kind: string): Promise<ConflictStrategy> {
  if (course === null) return DEFAULT_STRATEGY;
  const rows = await db.selectFrom("conflict_strategies").select(["kind", "strategy"]).where("course_url", "=", course).where("kind", "in", [kind, ANY_KIND]).execute();
  return (rows.find((r) => r.kind === kind) ?? rows.find((r) => r.kind === ANY_KIND))?.strategy ?? DEFAULT_STRATEGY;
}

export async function setStrategy(db: Kysely<ConnectorTables>, course: DocUrl, kind: string, strategy: ConflictStrategy): Promise<void> {
  await db
    .insertInto("conflict_strategies")
    .values({ course_url: course, kind, strategy })
    .onConflict((oc) => oc.columns(["course_url", "kind"]).doUpdateSet({ strategy }))
    .execute();
}

/** Keeps every conflict a reconciliation settled, with both values and what won. */
export async function recordConflicts(db: Kysely<ConnectorTables>, url: DocUrl, system: RemoteSystem, strategy: ConflictStrategy, conflicts: readonly FieldConflict[], clock: Clock = systemClock): Promise<void> {
  if (conflicts.length === 0) return;
  const detected = isoNow(clock);
  await db
    .insertInto("remote_conflicts")
    .values(conflicts.map((c) => ({ doc_url: url, system, field: c.field, local_value: shown(c.local), remote_value: shown(c.remote), strategy, resolution: c.resolution, detected_at: detected })))
    .execute();
}

/** Marks a document as having changes on their way to a system (`ordo status`, `entity_sync_status`). */
export async function markPending(db: Kysely<ConnectorTables>, url: string, system: RemoteSystem): Promise<void> {
  await db
    .insertInto("remote_sync")
    .values({ doc_url: url, system, state: "pending", local_heads: null, remote_version: null, synced_at: null })
    .onConflict((oc) => oc.columns(["doc_url", "system"]).doUpdateSet({ state: "pending" }))
    .execute();
}

function shown(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  return typeof value === "string" ? value : JSON.stringify(value);
}
