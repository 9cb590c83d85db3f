import type { Kysely } from "kysely";
import type { DocStore } from "../../crdt/doc-store.js";
import type { DocUrl } from "../../crdt/ids.js";
import type { Entity } from "../../crdt/schema/document.js";
import { isoNow, systemClock, type Clock } from "../../util/clock.js";
import type { ConnectorTables } from "../connector-tables.js";
import { RemoteError, type HttpClient } from "../http-client.js";
import type { Outbox, OutboxEntry } from "../outbox.js";
import { recordInSync, remoteIdOf } from "../remote-records.js";

export interface PushOptions {
  client: HttpClient;
  store: DocStore;
  db: Kysely<ConnectorTables>;
  outbox: Outbox;
  courseId: string;
  clock?: Clock;
}

export interface PushResult {
  sent: number;
  /** Changed on both sides since the last sync: recorded, not sent (see `remote_conflicts`). */
  conflicts: number;
  /** Will be retried (the system was unreachable or busy). */
  retrying: number;
  failed: Array<{ url: string; error: string }>;
}

/** Kinds whose local edits go back to Canvas, with the remote type they are mapped as. */
const PUSHED: Record<string, string> = { assignment: "assignment", grade: "grade" };

/**
 * Sends local edits of Canvas objects back to Canvas: a changed assignment, and a grade (it
 * becomes the submission's score). A document is due when its heads differ from those recorded
 * at its last sync with Canvas; edits made by a pull are recorded as in sync, so nothing echoes.
 * Both updates are idempotent PUTs, so a retry after a crash cannot make anything twice. An
 * assignment Canvas changed too since the last sync is a conflict: recorded, not overwritten.
 */
export async function pushCanvasChanges(options: PushOptions): Promise<PushResult> {
  const { db, store, outbox } = options;
  const clock = options.clock ?? systemClock;
  const result: PushResult = { sent: 0, conflicts: 0, retrying: 0, failed: [] };
  const synced = await db
    .selectFrom("remote_sync")
    .innerJoin("remote_ids", (join) => join.onRef("remote_ids.doc_url", "=", "remote_sync.doc_url").onRef("remote_ids.system", "=", "remote_sync.system"))
    .select(["remote_sync.doc_url", "remote_sync.local_heads", "remote_ids.remote_type"])
    .where("remote_sync.system", "=", "canvas")
    .where("remote_sync.state", "=", "in_sync")
    .where("remote_ids.remote_type", "in", Object.values(PUSHED))
    .execute();
  for (const row of synced) {
    const record = await store.record(row.doc_url as DocUrl);
    if (record && !record.deleted && record.heads !== row.local_heads) await outbox.enqueue("canvas", row.doc_url, "update");
  }
  for (const entry of await outbox.due("canvas")) {
    await outbox.begin(entry.id);
    try {
      const outcome = await send(entry);
      if (outcome === "conflict") {
        result.conflicts++;
        continue;
      }
      await outbox.sent(entry.id, outcome);
      result.sent++;
    } catch (error) {
      const retryable = error instanceof RemoteError && ["throttled", "server", "network"].includes(error.problem.kind);
      await outbox.failed(entry.id, (error as Error).message, retryable ? { retryAt: new Date(clock().getTime() + 60_000 * Math.min(entry.attempts + 1, 30)) } : { status: "failed" });
      if (retryable) result.retrying++;
      else result.failed.push({ url: entry.doc_url, error: (error as Error).message });
    }
  }
  return result;

  async function send(entry: OutboxEntry): Promise<{ type: string; id: string } | "conflict"> {
    const url = entry.doc_url as DocUrl;
    const entity = await store.find(url);
    if (!entity) throw new Error(`${url} is gone`);
    const base = `/api/v1/courses/${encodeURIComponent(options.courseId)}`;
    if (entity.kind === "grade") {
      const grade = entity as Entity<"grade">;
      const assignmentId = grade.assignment && (await remoteIdOf(db, "canvas", grade.assignment, "assignment"));
      const userId = grade.student && (await remoteIdOf(db, "canvas", grade.student, "user"));
      if (!assignmentId || !userId) throw new Error(`${url}: its assignment or student is not a Canvas object`);
      const posted = grade.score !== null ? String(grade.score) : (grade.grade ?? "");
      const response = await options.client.request<{ id: string | number; graded_at?: string }>("PUT", `${base}/assignments/${assignmentId}/submissions/${userId}`, { form: { "submission[posted_grade]": posted } });
      await recordInSync(db, store, { system: "canvas", type: "grade", remoteId: String(response.body.id), url, remoteVersion: response.body.graded_at ?? null }, clock);
      return { type: "grade", id: String(response.body.id) };
    }
    const assignment = entity as Entity<"assignment">;
    const remoteId = await remoteIdOf(db, "canvas", url, "assignment");
    if (!remoteId) throw new Error(`${url} is not a Canvas assignment`);
    const path = `${base}/assignments/${remoteId}`;
    const current = await options.client.request<{ updated_at?: string }>("GET", path);
    const known = await db.selectFrom("remote_sync").select("remote_version").where("doc_url", "=", url).where("system", "=", "canvas").executeTakeFirst();
    if (known?.remote_version && current.body.updated_at && current.body.updated_at !== known.remote_version) {
      await recordConflict(entry, "assignment", known.remote_version, current.body.updated_at);
      return "conflict";
    }
    const form: Record<string, string> = {
      "assignment[name]": assignment.title,
      "assignment[description]": assignment.description,
      "assignment[due_at]": assignment.dueAt ?? "",
      "assignment[unlock_at]": assignment.unlockAt ?? "",
      "assignment[lock_at]": assignment.lockAt ?? "",
      "assignment[published]": String(assignment.published),
    };
    if (assignment.pointsPossible !== null) form["assignment[points_possible]"] = String(assignment.pointsPossible);
    const response = await options.client.request<{ id: string | number; updated_at?: string }>("PUT", path, { form });
    await recordInSync(db, store, { system: "canvas", type: "assignment", remoteId, url, remoteVersion: response.body.updated_at ?? null }, clock);
    return { type: "assignment", id: remoteId };
  }

  async function recordConflict(entry: OutboxEntry, field: string, was: string, now: string): Promise<void> {
    await db
      .insertInto("remote_conflicts")
      .values({ doc_url: entry.doc_url, system: "canvas", field, local_value: `changed here since ${was}`, remote_value: `changed in Canvas at ${now}`, strategy: "prefer_canvas", resolution: "not sent: Canvas's version is kept until the conflict is resolved", detected_at: isoNow(clock) })
      .execute();
    await db.updateTable("remote_sync").set({ state: "conflict" }).where("doc_url", "=", entry.doc_url).where("system", "=", "canvas").execute();
    await outbox.failed(entry.id, "changed in Canvas too", { status: "conflict" });
  }
}
