import type { Kysely } from "kysely";
import type { ConnectorTables, RemoteSystem } from "./connector-tables.js";

export interface ConnectorStatus {
  system: RemoteSystem;
  /** Documents by sync state: pending (to send), in_sync, conflict. */
  documents: Record<string, number>;
  /** Outbox entries by status. */
  outbox: Record<string, number>;
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
