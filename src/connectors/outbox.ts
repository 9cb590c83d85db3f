import { randomUUID } from "node:crypto";
import type { Kysely, Selectable } from "kysely";
import { isoNow, systemClock, type Clock } from "../util/clock.js";
import type { ConnectorTables, OutboxStatus, OutboxTable, RemoteSystem } from "./connector-tables.js";
import { markPending } from "./sync-base.js";

export type OutboxEntry = Selectable<OutboxTable>;
export type OutboxOperation = OutboxEntry["operation"];

/**
 * Local changes waiting to reach Canvas or Discourse, kept in SQLite so they survive restarts.
 *
 * A document has at most one open entry per system: later changes join it (the connector
 * sends the document as it is then). Sending follows a fixed order so that a create is never
 * made twice: `begin` marks the entry `sending` and commits before the request leaves; only
 * `sent` (with the remote id, in the same transaction as the id mapping) closes it. An entry
 * found `sending` after a restart is in doubt: the connector looks for the object by the
 * entry's `idempotency_key` before it sends anything again.
 */
export class Outbox {
  constructor(
    private readonly db: Kysely<ConnectorTables>,
    private readonly clock: Clock = systemClock,
  ) {}

  /**
   * Records that a document changed and must reach `system` (its sync state turns `pending`);
   * joins the open entry if there is one. A document in conflict with the system (a clash no
   * strategy could settle) is sent nothing: undefined.
   */
  async enqueue(system: RemoteSystem, docUrl: string, operation: OutboxOperation): Promise<OutboxEntry | undefined> {
    const now = isoNow(this.clock);
    return this.db.transaction().execute(async (trx) => {
      const state = await trx.selectFrom("remote_sync").select("state").where("doc_url", "=", docUrl).where("system", "=", system).executeTakeFirst();
      if (state?.state === "conflict") return undefined;
      await markPending(trx, docUrl, system);
      const open = await trx.selectFrom("outbox").selectAll().where("system", "=", system).where("doc_url", "=", docUrl).where("status", "in", ["pending", "sending"]).executeTakeFirst();
      if (!open) {
        return trx
          .insertInto("outbox")
          .values({ system, doc_url: docUrl, operation, status: "pending", idempotency_key: randomUUID(), last_error: null, not_before: null, remote_id: null, created_at: now, updated_at: now })
          .returningAll()
          .executeTakeFirstOrThrow();
      }
      // A create not yet sent stays a create (of the document as it is by then); a delete wins.
      const merged: OutboxOperation = operation === "delete" ? "delete" : open.operation;
      if (merged === open.operation) return open;
      return trx.updateTable("outbox").set({ operation: merged, updated_at: now }).where("id", "=", open.id).returningAll().executeTakeFirstOrThrow();
    });
  }

  /** Pending entries whose retry time has come, oldest first. */
  async due(system: RemoteSystem, limit = 100): Promise<OutboxEntry[]> {
    const now = isoNow(this.clock);
    return this.db
      .selectFrom("outbox")
      .selectAll()
      .where("system", "=", system)
      .where("status", "=", "pending")
      .where((eb) => eb.or([eb("not_before", "is", null), eb("not_before", "<=", now)]))
      .orderBy("id")
      .limit(limit)
      .execute();
  }

  /** Entries a crash left `sending`: the request may or may not have reached the system. */
  async inDoubt(system: RemoteSystem): Promise<OutboxEntry[]> {
    return this.db.selectFrom("outbox").selectAll().where("system", "=", system).where("status", "=", "sending").orderBy("id").execute();
  }

  /**
   * Marks an entry as being sent, committed before the request leaves. Only a pending entry can
   * be taken: undefined means another sync took it first, and the caller must send nothing.
   */
  async begin(id: number): Promise<OutboxEntry | undefined> {
    return this.db
      .updateTable("outbox")
      .set((eb) => ({ status: "sending", attempts: eb("attempts", "+", 1), updated_at: isoNow(this.clock) }))
      .where("id", "=", id)
      .where("status", "=", "pending")
      .returningAll()
      .executeTakeFirst();
  }

  /** Closes an entry that reached the system, recording the remote object it is. */
  async sent(id: number, remote: { type: string; id: string }): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const entry = await trx.updateTable("outbox").set({ status: "sent", remote_id: remote.id, last_error: null, updated_at: isoNow(this.clock) }).where("id", "=", id).returningAll().executeTakeFirstOrThrow();
      await trx
        .insertInto("remote_ids")
        .values({ system: entry.system, remote_type: remote.type, remote_id: remote.id, doc_url: entry.doc_url })
        .onConflict((oc) => oc.columns(["system", "remote_type", "remote_id"]).doUpdateSet({ doc_url: entry.doc_url }))
        .execute();
    });
  }

  /**
   * Records a failure: retried after `retryAt` (back to `pending`), or for good (`failed`,
   * or `conflict` when the system changed the object meanwhile), with the error kept.
   */
  async failed(id: number, error: string, outcome: { retryAt: Date } | { status: Extract<OutboxStatus, "failed" | "conflict"> }): Promise<void> {
    const retry = "retryAt" in outcome;
    await this.db
      .updateTable("outbox")
      .set({ status: retry ? "pending" : outcome.status, not_before: retry ? outcome.retryAt.toISOString() : null, last_error: error.slice(0, 2000), updated_at: isoNow(this.clock) })
      .where("id", "=", id)
      .execute();
  }

  /** How many entries are in each status, per system. */
  async counts(): Promise<Array<{ system: RemoteSystem; status: OutboxStatus; count: number }>> {
    const rows = await this.db.selectFrom("outbox").select(["system", "status"]).select((eb) => eb.fn.countAll<number>().as("count")).groupBy(["system", "status"]).orderBy("system").orderBy("status").execute();
    return rows.map((row) => ({ ...row, count: Number(row.count) }));
  }
}
