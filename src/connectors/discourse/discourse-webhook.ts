import { createHmac, timingSafeEqual } from "node:crypto";
import type { Kysely } from "kysely";
import { isoNow, systemClock, type Clock } from "../../util/clock.js";
import { OrdoError } from "../../util/errors.js";
import type { ConnectorTables } from "../connector-tables.js";

// Webhooks are a trigger, pulls are the truth. Discourse delivers webhooks from a job queue:
// late, duplicated, out of order, and each body is frozen at the time of its change. Applying
// a body would let an older edit delivered last overwrite a newer one; so a delivery only says
// "this topic changed", and the node re-reads it from the API, which answers with the state as
// it is now, whatever order the deliveries came in. A lost delivery is caught by the next
// periodic sync.

/** How long event ids are kept to spot a replay: far beyond Discourse's last retry (1+5+25+125 min). */
export const DEFAULT_WEBHOOK_RETENTION_MS = 30 * 24 * 3_600_000;

/** Old event ids are deleted at most this often, not on every delivery. */
const PRUNE_EVERY_MS = 3_600_000;

/** Event types whose events may change what a pull reads; others (`ping`, `user`, `group`, ...) are taken and ignored. */
const PULLED_TYPES: ReadonlySet<string> = new Set(["post", "topic", "category"]);

/** Request headers as Node's `http` gives them: lower-case names. */
export type WebhookHeaders = Readonly<Record<string, string | readonly string[] | undefined>>;

export type WebhookProblem = "signature" | "malformed";

/** A delivery refused: `ORDO_WEBHOOK_SIGNATURE` (missing, malformed or wrong signature) or `ORDO_WEBHOOK_MALFORMED`. */
export class WebhookError extends OrdoError {
  constructor(
    readonly problem: WebhookProblem,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`ORDO_WEBHOOK_${problem.toUpperCase()}`, message, options);
    this.name = "WebhookError";
  }
}

/** One Discourse delivery, parsed: its headers and the ids it names. Its payload is never applied. */
export interface DiscourseWebhookEvent {
  /** `X-Discourse-Event-Id`: the same for every delivery of one event (a retry or a duplicate). */
  id: string;
  /** `X-Discourse-Event-Type`: `post`, `topic`, `category`, `user`, `ping`, ... */
  type: string;
  /** `X-Discourse-Event`: `post_edited`, `topic_created`, ... */
  event: string;
  /** Topics the event is about (a post event names its topic). */
  topicIds: string[];
  /** Posts the event is about. */
  postIds: string[];
}

/**
 * Whether `signature` is `sha256=<hex>` of HMAC-SHA256 over the raw body bytes with `secret`.
 * The comparison takes the same time wherever the first wrong byte is. Never throws: anything
 * missing or malformed is simply not a valid signature.
 */
export function verifyDiscourseSignature(secret: string, rawBody: Uint8Array, signature: string | undefined): boolean {
  if (secret.length === 0 || signature === undefined) return false;
  const match = /^sha256=([0-9a-fA-F]{64})$/.exec(signature.trim());
  if (!match) return false;
  const expected = createHmac("sha256", secret).update(rawBody).digest();
  return timingSafeEqual(expected, Buffer.from(match[1]!, "hex"));
}

/**
 * Reads a delivery's headers and body (after its signature was checked). Throws a
 * `WebhookError("malformed")` for a missing or odd event id, type or name, or a body that is
 * not a JSON object.
 */
export function parseDiscourseWebhook(headers: WebhookHeaders, rawBody: Uint8Array): DiscourseWebhookEvent {
  const id = header(headers, "x-discourse-event-id", /^[0-9A-Za-z_-]{1,64}$/);
  const type = header(headers, "x-discourse-event-type", /^[a-z_]{1,64}$/);
  const event = header(headers, "x-discourse-event", /^[a-z_]{1,64}$/);
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(rawBody).toString("utf8"));
  } catch (cause) {
    throw new WebhookError("malformed", "the body is not JSON", { cause });
  }
  if (!isObject(body)) throw new WebhookError("malformed", "the body is not a JSON object");
  const topicIds = new Set<string>();
  const postIds = new Set<string>();
  const subject = body[type];
  if (isObject(subject)) {
    if (type === "post") {
      addId(postIds, subject.id);
      addId(topicIds, subject.topic_id);
    } else if (type === "topic") {
      addId(topicIds, subject.id);
    }
  }
  return { id, type, event, topicIds: [...topicIds], postIds: [...postIds] };
}

/** What the receiver did with a delivery. */
export type WebhookReceipt =
  | { outcome: "refused"; problem: WebhookProblem; message: string }
  /** An event id already taken: nothing done. */
  | { outcome: "duplicate"; event: DiscourseWebhookEvent }
  /** Recorded; `reread` says whether a re-read of what it names was asked for. */
  | { outcome: "taken"; event: DiscourseWebhookEvent; reread: boolean };

export interface DiscourseWebhookReceiverOptions {
  db: Kysely<ConnectorTables>;
  /** The secret set on the Discourse webhook. */
  secret: string;
  /**
   * Asks for a re-read of what an event names. Called once per new event that may change what
   * a pull reads; the caller coalesces (a burst of edits is one pull) and must not throw.
   */
  reread: (event: DiscourseWebhookEvent) => void;
  clock?: Clock;
  retentionMs?: number;
}

/**
 * Takes Discourse webhook deliveries: checks the signature over the raw body, records the
 * event id in `webhook_events` (a replayed or duplicated id does nothing), and asks for a
 * re-read of the topic it names. It never applies a payload (see the note at the top).
 *
 * @example
 * const receiver = new DiscourseWebhookReceiver({ db: connectorDb(engine.db), secret, reread: () => scheduleSync() });
 * const receipt = await receiver.receive(request.headers, rawBody);
 * if (receipt.outcome === "refused") reply(401);
 */
export class DiscourseWebhookReceiver {
  readonly #options: DiscourseWebhookReceiverOptions;
  readonly #clock: Clock;
  #prunedAt = 0;

  constructor(options: DiscourseWebhookReceiverOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
  }

  /** Never throws for a bad delivery (it is refused); throws only when the table cannot be written. */
  async receive(headers: WebhookHeaders, rawBody: Uint8Array): Promise<WebhookReceipt> {
    const signature = headers["x-discourse-event-signature"];
    // Nothing of an unsigned body is read, not even its headers' claims.
    if (!verifyDiscourseSignature(this.#options.secret, rawBody, typeof signature === "string" ? signature : undefined)) {
      return { outcome: "refused", problem: "signature", message: "missing or wrong X-Discourse-Event-Signature" };
    }
    let event: DiscourseWebhookEvent;
    try {
      event = parseDiscourseWebhook(headers, rawBody);
    } catch (error) {
      if (error instanceof WebhookError) return { outcome: "refused", problem: error.problem, message: error.message };
      throw error;
    }
    await this.#prune();
    const { db } = this.#options;
    const inserted = await db
      .insertInto("webhook_events")
      .values({ system: "discourse", event_id: event.id, received_at: isoNow(this.#clock) })
      .onConflict((oc) => oc.columns(["system", "event_id"]).doNothing())
      .executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 0) return { outcome: "duplicate", event };
    const reread = PULLED_TYPES.has(event.type);
    if (reread) this.#options.reread(event);
    return { outcome: "taken", event, reread };
  }

  async #prune(): Promise<void> {
    const now = this.#clock().getTime();
    if (now - this.#prunedAt < PRUNE_EVERY_MS) return;
    this.#prunedAt = now;
    const before = new Date(now - (this.#options.retentionMs ?? DEFAULT_WEBHOOK_RETENTION_MS)).toISOString();
    await this.#options.db.deleteFrom("webhook_events").where("system", "=", "discourse").where("received_at", "<", before).execute();
  }
}

function header(headers: WebhookHeaders, name: string, shape: RegExp): string {
  const value = headers[name];
  if (typeof value !== "string" || !shape.test(value)) throw new WebhookError("malformed", `missing or malformed ${name}`);
  return value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function addId(ids: Set<string>, value: unknown): void {
  if ((typeof value === "number" && Number.isSafeInteger(value)) || (typeof value === "string" && /^\d+$/.test(value))) ids.add(String(value));
}
