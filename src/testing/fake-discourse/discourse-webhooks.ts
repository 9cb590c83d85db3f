import { createHmac } from "node:crypto";
import { serializeTopicFields, serializeWebhookPost, serializeCategory } from "./discourse-serialize.js";
import type { DiscourseChange, DiscourseState } from "./discourse-state.js";

/** Where and how the fake delivers webhooks (§2.6). */
export interface DiscourseWebhookOptions {
  url: string;
  /** Signs every body: `X-Discourse-Event-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>`. */
  secret: string;
  /** Delay before each delivery; 0 when absent. Real deliveries go through a job queue. */
  delayMs?: number;
  /** Deliver every event twice, with the same event id. */
  duplicate?: boolean;
  /** Hold each event back and deliver it after the next one (pairs arrive swapped). */
  reorder?: boolean;
}

/** One delivery attempt, as the receiver answered it. */
export interface DiscourseWebhookDelivery {
  eventId: number;
  event: string;
  body: string;
  status: number | "error";
}

/** The signature header value for a raw body. */
export function signDiscourseWebhook(secret: string, rawBody: string): string {
  return `sha256=${createHmac("sha256", secret).update(rawBody, "utf8").digest("hex")}`;
}

interface PendingEvent {
  eventId: number;
  event: string;
  type: string;
  body: string;
}

/** Serializes state changes into webhook bodies and POSTs them; failures are recorded, never thrown. */
export class DiscourseWebhookEmitter {
  readonly deliveries: DiscourseWebhookDelivery[] = [];
  private nextEventId = 9000;
  private held: PendingEvent | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Deliveries go out one after another, so the order a test asks for is the order that arrives. */
  private tail: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly state: DiscourseState,
    private readonly options: DiscourseWebhookOptions,
    private readonly instanceUrl: string,
  ) {}

  /** Builds the event for a change and schedules it; called from the state's change listener. */
  onChange(change: DiscourseChange): void {
    const pending = this.build(change);
    if (pending !== undefined) this.enqueue(pending);
  }

  /** Sends an arbitrary event, e.g. `ping` with `{"ping":"OK"}`. */
  send(event: string, type: string, payload: unknown): void {
    this.enqueue({ eventId: this.nextEventId++, event, type, body: JSON.stringify(payload) });
  }

  private build(change: DiscourseChange): PendingEvent | undefined {
    let type: string;
    let payload: unknown;
    if ("postId" in change) {
      const post = this.state.posts.get(change.postId);
      if (post === undefined) return undefined;
      const topic = this.state.topics.get(post.topic_id);
      // Discourse sends no post_edited for posts of trashed topics.
      if (change.kind === "post_edited" && topic?.deleted_at !== null) return undefined;
      type = "post";
      payload = { post: serializeWebhookPost(this.state, post) };
    } else if ("topicId" in change) {
      const topic = this.state.topics.get(change.topicId);
      if (topic === undefined) return undefined;
      type = "topic";
      payload = { topic: serializeTopicFields(this.state, topic) };
    } else {
      const category = this.state.categories.get(change.categoryId);
      if (category === undefined) return undefined;
      type = "category";
      payload = { category: serializeCategory(this.state, category) };
    }
    // The body is frozen now, like a job enqueued at the time of the change.
    return { eventId: this.nextEventId++, event: change.kind, type, body: JSON.stringify(payload) };
  }

  private enqueue(pending: PendingEvent): void {
    if (this.closed) return;
    const copies = this.options.duplicate === true ? 2 : 1;
    if (this.options.reorder === true) {
      const held = this.held;
      if (held === undefined) {
        this.held = pending;
        return;
      }
      this.held = undefined;
      this.schedule(pending, copies);
      this.schedule(held, copies);
      return;
    }
    this.schedule(pending, copies);
  }

  private schedule(pending: PendingEvent, copies: number): void {
    for (let i = 0; i < copies; i++) {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        const delivery: Promise<void> = this.tail.then(() => this.deliver(pending)).finally(() => this.inFlight.delete(delivery));
        this.tail = delivery;
        this.inFlight.add(delivery);
      }, this.options.delayMs ?? 0);
      this.timers.add(timer);
    }
  }

  private async deliver(pending: PendingEvent): Promise<void> {
    let status: number | "error";
    try {
      const res = await fetch(this.options.url, {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          "User-Agent": "Discourse/3.4.0",
          "X-Discourse-Instance": this.instanceUrl,
          "X-Discourse-Event-Id": String(pending.eventId),
          "X-Discourse-Event-Type": pending.type,
          "X-Discourse-Event": pending.event,
          "X-Discourse-Event-Signature": signDiscourseWebhook(this.options.secret, pending.body),
        },
        body: pending.body,
      });
      await res.arrayBuffer();
      status = res.status;
    } catch {
      // Webhooks are not retried by default (§2.6): a failed delivery is only recorded.
      status = "error";
    }
    this.deliveries.push({ eventId: pending.eventId, event: pending.event, body: pending.body, status });
  }

  /** Sends a held (reordered) event, then waits until every scheduled delivery has been answered. */
  async flush(): Promise<void> {
    const held = this.held;
    this.held = undefined;
    if (held !== undefined) this.schedule(held, this.options.duplicate === true ? 2 : 1);
    while (this.timers.size > 0 || this.inFlight.size > 0) {
      if (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
      else await new Promise((resolve) => setTimeout(resolve, Math.max(1, this.options.delayMs ?? 0)));
    }
  }

  /** Drops what is not sent yet and waits for deliveries already under way. */
  async close(): Promise<void> {
    this.closed = true;
    this.held = undefined;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    await Promise.all([...this.inFlight]);
  }
}
