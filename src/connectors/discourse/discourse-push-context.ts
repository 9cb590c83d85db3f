import type { Kysely } from "kysely";
import type { DocStore } from "../../crdt/doc-store.js";
import type { DocUrl } from "../../crdt/ids.js";
import type { Clock } from "../../util/clock.js";
import type { ConnectorTables } from "../connector-tables.js";
import { RemoteError, type HttpClient } from "../http-client.js";
import type { Outbox, OutboxEntry } from "../outbox.js";
import { followRemoteDeletion, isGoneRemotely } from "../remote-deletion.js";
import type { DiscourseInstance } from "./discourse-mapping.js";

/** What the pieces of a Discourse push share. */

export interface DiscoursePushOptions {
  client: HttpClient;
  instance: DiscourseInstance;
  store: DocStore;
  db: Kysely<ConnectorTables>;
  outbox: Outbox;
  /** The course whose topics and posts are pushed. */
  course: DocUrl;
  /** The category the course is connected to: new topics go there, and topics elsewhere move there. */
  categoryId: string | number;
  clock?: Clock;
}

export interface DiscoursePushResult {
  /** Topics and replies made (an approved one that was waiting included). */
  created: number;
  /** Topics Discourse already had under the same title: linked to the document instead of created. */
  linked: number;
  /** Topics and posts whose edits were sent. */
  edited: number;
  /** Entries a crash left in doubt whose object was found already made: recorded, not sent again. */
  recovered: number;
  /** Creates Discourse queued for a moderator: neither sent nor failed, still pending. */
  awaitingApproval: number;
  /** Fields both sides changed, settled by the course's strategy (each in `remote_conflicts`). */
  conflicts: number;
  /** Will be retried (Discourse was unreachable or busy). */
  retrying: number;
  /** Changed here but deleted in Discourse meanwhile: deleted here too, recorded as conflicts. */
  deleted: number;
  failed: Array<{ url: string; error: string }>;
}

export interface PushContext extends Omit<DiscoursePushOptions, "clock" | "categoryId"> {
  categoryId: string;
  clock: Clock;
  result: DiscoursePushResult;
}

/** A post as Discourse's create, edit and read answers give it. */
export interface PostPayload {
  id: number | string;
  topic_id?: number;
  post_number?: number;
  raw?: string;
  user_id?: number;
  created_at?: string;
  updated_at?: string;
  reply_to_post_number?: number | null;
  version?: number;
  deleted_at?: string | null;
}

/** How long a failed request waits per attempt made, up to `MAX_RETRY_STEPS` steps. */
const RETRY_STEP_MS = 60_000;
const MAX_RETRY_STEPS = 30;

export function isRetryable(error: unknown): boolean {
  return error instanceof RemoteError && ["throttled", "server", "network"].includes(error.problem.kind);
}

/** A request whose outcome is unknown: the server failed or the connection did (a throttled one was refused before anything was done). */
function isUnanswered(error: unknown): boolean {
  return error instanceof RemoteError && (error.problem.kind === "server" || error.problem.kind === "network");
}

/** Discourse refused the request as it stands (422: a short title, a taken title, "too similar"). */
export function isInvalid(error: unknown): boolean {
  return error instanceof RemoteError && error.problem.kind === "invalid";
}

export function isEditConflict(error: unknown): boolean {
  return error instanceof RemoteError && error.problem.kind === "conflict";
}

/** The error with what Discourse said about it (`errors[]`: "Title has already been used", ...). */
export function failureMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (!(error instanceof RemoteError) || error.body === null) return message;
  try {
    const errors = (JSON.parse(error.body) as { errors?: unknown }).errors;
    return Array.isArray(errors) && errors.length > 0 ? `${message}: ${errors.map(String).join("; ")}` : message;
  } catch {
    return message;
  }
}

/**
 * Records a failed send: retried later when Discourse was unreachable or busy, or when an edit
 * kept meeting newer edits (each 409 was settled; the next push tries again), failed for good otherwise.
 */
export async function recordFailure(context: PushContext, entry: OutboxEntry, error: unknown): Promise<void> {
  const message = failureMessage(error);
  if (isGoneRemotely(entry, error)) {
    await followRemoteDeletion(context, entry, "discourse");
    context.result.deleted++;
    return;
  }
  if (entry.operation === "create" && isUnanswered(error)) {
    // Discourse may have made it before the answer was lost: the entry stays in doubt, and the
    // next push looks for the post by its mark before sending anything again.
    context.result.retrying++;
    return;
  }
  if (isRetryable(error) || isEditConflict(error)) {
    const wait = RETRY_STEP_MS * Math.min(entry.attempts + 1, MAX_RETRY_STEPS);
    await context.outbox.failed(entry.id, message, { retryAt: new Date(context.clock().getTime() + wait) });
    context.result.retrying++;
  } else {
    await context.outbox.failed(entry.id, message, { status: "failed" });
    context.result.failed.push({ url: entry.doc_url, error: message });
  }
}
