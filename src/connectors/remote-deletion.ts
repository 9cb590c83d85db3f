import type { Kysely } from "kysely";
import type { DocStore } from "../crdt/doc-store.js";
import type { DocUrl } from "../crdt/ids.js";
import type { Clock } from "../util/clock.js";
import type { ConnectorTables, RemoteSystem } from "./connector-tables.js";
import { RemoteError } from "./http-client.js";
import type { Outbox, OutboxEntry } from "./outbox.js";
import { recordConflicts, strategyFor } from "./sync-base.js";

export interface DeletionContext {
  store: DocStore;
  db: Kysely<ConnectorTables>;
  outbox: Outbox;
  clock: Clock;
}

/** Whether a failed update means the system deleted the object: a 404 for an object the node knows. */
export function isGoneRemotely(entry: OutboxEntry, error: unknown): boolean {
  return entry.operation !== "create" && error instanceof RemoteError && error.problem.kind === "not-found";
}

/**
 * The system deleted an object while a change made here was on its way to it.
 *
 * When the document is that system's object only, the document follows (deletions are
 * one-way, on every peer), and the lost change is recorded as a conflict; the change itself
 * stays in the document's history. When the other system still holds it (a Canvas entry whose
 * Discourse copy a moderator deleted), deleting it here would delete it there too: it is kept,
 * and marked in conflict with the system that deleted it, which is sent nothing more of it
 * (`ordo status`, `ordo conflicts` show it).
 */
export async function followRemoteDeletion(context: DeletionContext, entry: OutboxEntry, system: RemoteSystem): Promise<void> {
  const url = entry.doc_url as DocUrl;
  const doc = await context.store.find(url);
  const other: RemoteSystem = system === "canvas" ? "discourse" : "canvas";
  const keep = doc !== undefined && doc.external[other] !== undefined;
  if (doc) {
    const strategy = await strategyFor(context.db, doc.course, doc.kind);
    const resolution = keep ? `deleted in ${system}, still in ${other}: kept here, and no longer sent to ${system}` : `deleted in ${system}: deleted here too (the change made here stays in the document's history)`;
    await recordConflicts(context.db, url, system, strategy, [{ field: "(object)", local: "changed here", remote: "deleted", resolved: keep ? "kept" : "deleted", resolution }], context.clock);
    if (!keep) await context.store.delete(url);
  }
  await context.db.updateTable("remote_sync").set({ state: keep ? "conflict" : "in_sync" }).where("doc_url", "=", url).where("system", "=", system).execute();
  await context.outbox.failed(entry.id, `deleted in ${system}`, { status: "conflict" });
}
