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
 * The system deleted an object while a change made here was on its way to it. The document
 * follows (deletions are one-way, on every peer), the entry is closed, and the lost change is
 * recorded as a conflict so that `ordo conflicts` shows it; the change itself stays in the
 * document's history.
 */
export async function followRemoteDeletion(context: DeletionContext, entry: OutboxEntry, system: RemoteSystem): Promise<void> {
  const url = entry.doc_url as DocUrl;
  const doc = await context.store.find(url);
  if (doc) {
    const strategy = await strategyFor(context.db, doc.course, doc.kind);
    const resolution = `deleted in ${system}: deleted here too (the change made here stays in the document's history)`;
    await recordConflicts(context.db, url, system, strategy, [{ field: "(object)", local: "changed here", remote: "deleted", resolved: "deleted", resolution }], context.clock);
    await context.store.delete(url);
  }
  await context.db.updateTable("remote_sync").set({ state: "in_sync" }).where("doc_url", "=", url).where("system", "=", system).execute();
  await context.outbox.failed(entry.id, `deleted in ${system}`, { status: "conflict" });
}
