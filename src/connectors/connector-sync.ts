import type { Kysely } from "kysely";
import type { DocStore } from "../crdt/doc-store.js";
import type { DocUrl } from "../crdt/ids.js";
import type { Clock } from "../util/clock.js";
import type { Logger } from "../util/logger.js";
import { canvasClient } from "./canvas/canvas-client.js";
import { canvasInstance, urlOf } from "./canvas/canvas-mapping.js";
import { pullCanvasCourse } from "./canvas/canvas-pull.js";
import { pushCanvasChanges, type PushResult } from "./canvas/canvas-push.js";
import type { CanvasSettings, DiscourseSettings } from "./connector-config.js";
import { mappedCount } from "./connector-status.js";
import type { ConnectorTables, RemoteSystem } from "./connector-tables.js";
import { linkCounterparts } from "./mirror-links.js";
import { discourseClient } from "./discourse/discourse-client.js";
import { discourseInstance } from "./discourse/discourse-mapping.js";
import { pullDiscourseCategory } from "./discourse/discourse-pull.js";
import { pushDiscourseChanges, type DiscoursePushResult } from "./discourse/discourse-push.js";
import type { RetryPolicy } from "./http-client.js";
import { Outbox } from "./outbox.js";
import type { PullResult } from "./pull-result.js";

/** What one sync with a system needs: the node's documents, its connector tables, and that system's settings. */
export interface ConnectorSyncOptions<S> {
  store: DocStore;
  db: Kysely<ConnectorTables>;
  settings: S;
  fetch?: typeof fetch;
  /** Retry policy of the HTTP client (tests shorten it). */
  retry?: Partial<RetryPolicy>;
  /** Waits of the HTTP client between retries (tests skip them). */
  sleep?: (ms: number) => Promise<void>;
  /** Jitter of the HTTP client's backoff (tests seed it). */
  random?: () => number;
  /**
   * The node's clock: when the outbox retries a change, and the times it compares with the
   * documents' own (which the node's clock wrote).
   */
  clock?: Clock;
  /** Receives the HTTP client's warnings (request method and path only, never credentials). */
  logger?: Logger;
  onProgress?: (done: number, stage: string) => void;
}

/** One sync with a system: what the push sent, then what the pull read. */
export interface ConnectorSyncResult<P> {
  pushed: P;
  pulled: PullResult;
}

export type CanvasSyncResult = ConnectorSyncResult<PushResult>;
export type DiscourseSyncResult = ConnectorSyncResult<DiscoursePushResult>;

/**
 * Sends this node's new and edited assignments, pages, discussions, replies, announcements and
 * grades to Canvas, then pulls the course (see `pushThenPull` for the order). Reports per
 * record (see `PushResult`, `PullResult`); throws only when the tables cannot be read.
 *
 * @example
 * const { pushed, pulled } = await syncCanvas({ store: engine.docs, db: connectorDb(engine.db), settings: readConnectorSettings(dir).canvas! });
 */
export async function syncCanvas(options: ConnectorSyncOptions<CanvasSettings>): Promise<CanvasSyncResult> {
  const { store, db, settings } = options;
  const { clock } = options;
  const client = canvasClient({ url: settings.url, token: () => settings.token, fetch: options.fetch, retry: options.retry, sleep: options.sleep, random: options.random, logger: options.logger });
  const instance = canvasInstance(settings.url);
  const outbox = new Outbox(db, clock);
  return pushThenPull(
    { store, db, system: "canvas", course: urlOf(instance, "course", settings.courseId)! },
    () => pushCanvasChanges({ client, store, db, outbox, courseId: settings.courseId, clock }),
    () => pullCanvasCourse({ client, instance, store, db, courseId: settings.courseId, outbox, clock, onProgress: options.onProgress }),
  );
}

/**
 * Sends this node's new topics, replies and edits to Discourse, then pulls the category.
 * Like `syncCanvas`, local work first; reports per record.
 *
 * @example
 * const { pushed, pulled } = await syncDiscourse({ store: engine.docs, db: connectorDb(engine.db), settings: readConnectorSettings(dir).discourse! });
 */
export async function syncDiscourse(options: ConnectorSyncOptions<DiscourseSettings>): Promise<DiscourseSyncResult> {
  const { store, db, settings } = options;
  const { clock } = options;
  const client = discourseClient({ url: settings.url, apiKey: () => settings.apiKey, username: settings.username, fetch: options.fetch, retry: options.retry, sleep: options.sleep, random: options.random, logger: options.logger });
  const course = settings.course as DocUrl;
  const outbox = new Outbox(db, clock);
  return pushThenPull(
    { store, db, system: "discourse", course },
    () => pushDiscourseChanges({ client, instance: discourseInstance(settings.url), store, db, outbox, course, categoryId: settings.categoryId, clock }),
    () => pullDiscourseCategory({ client, instance: discourseInstance(settings.url), store, db, categoryId: settings.categoryId, course, outbox, clock, onProgress: options.onProgress }),
  );
}

interface SyncTarget {
  store: DocStore;
  db: Kysely<ConnectorTables>;
  system: RemoteSystem;
  course: DocUrl;
}

/**
 * Local work first, so that the pull after it sees the system with that work in it. The first
 * sync with a system reads it before writing to it: discussions already on both Canvas and
 * Discourse are then paired (see mirror-links.ts) instead of being copied a second time.
 */
async function pushThenPull<P>(target: SyncTarget, push: () => Promise<P>, pull: () => Promise<PullResult>): Promise<ConnectorSyncResult<P>> {
  const link = () => linkCounterparts(target.store, target.db, target.course);
  if ((await mappedCount(target.db, target.system)) === 0) {
    const pulled = await pull();
    await link();
    return { pushed: await push(), pulled };
  }
  await link();
  const pushed = await push();
  const pulled = await pull();
  await link();
  return { pushed, pulled };
}
