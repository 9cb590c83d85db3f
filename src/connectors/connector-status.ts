import type { Kysely } from "kysely";
import type { ConnectorTables, RemoteSystem } from "./connector-tables.js";

export interface ConnectorStatus {
  system: RemoteSystem;
  /** Documents by sync state: pending (to send), in_sync, conflict. */
  documents: Record<string, number>;
  /** Outbox entries by status. */
  outbox: Record<string, number>;
}

/** One document not in step with a system: changes pending to it, or a conflict. */
export interface UnsettledEntity {
  doc_url: string;
  canvas: string | null;
  discourse: string | null;
}

/** How each connected system stands, for `ordo status`: what is in sync, pending or in conflict. */
export async function connectorStatus(db: Kysely<ConnectorTables>): Promise<ConnectorStatus[]> {
  const states = await db.selectFrom("remote_sync").select(["system", "state"]).select((eb) => eb.fn.countAll<number>().as("n")).groupBy(["system", "state"]).execute();
  const outbox = await db.selectFrom("outbox").select(["system", "status"]).select((eb) => eb.fn.countAll<number>().as("n")).groupBy(["system", "status"]).execute();
  const systems = [...new Set([...states.map((s) => s.system), ...outbox.map((o) => o.system)])].sort();
  return systems.map((system) => ({
    system,
    documents: Object.fromEntries(states.filter((s) => s.system === system).map((s) => [s.state, Number(s.n)])),
    outbox: Object.fromEntries(outbox.filter((o) => o.system === system).map((o) => [o.status, Number(o.n)])),
  }));
}

/** Documents pending to a system or in conflict with one (from the `entity_sync_status` view), the first `limit`. */
export async function unsettledEntities(db: Kysely<ConnectorTables>, limit = 20): Promise<UnsettledEntity[]> {
  return db
    .selectFrom("entity_sync_status")
    .selectAll()
    .where((eb) => eb.or([eb("canvas", "in", ["pending", "conflict"]), eb("discourse", "in", ["pending", "conflict"])]))
    .orderBy("doc_url")
    .limit(limit)
    .execute();
}

/** How many remote objects of a system are mapped to documents: what the next pull will about read. */
export async function mappedCount(db: Kysely<ConnectorTables>, system: RemoteSystem): Promise<number> {
  const row = await db.selectFrom("remote_ids").select((eb) => eb.fn.countAll<number>().as("n")).where("system", "=", system).executeTakeFirst();
  return Number(row?.n ?? 0);
}
