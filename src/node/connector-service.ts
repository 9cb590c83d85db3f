import type { Kysely } from "kysely";
import type { ConnectorSettings } from "../connectors/connector-config.js";
import { syncCanvas, syncDiscourse, type CanvasSyncResult, type DiscourseSyncResult } from "../connectors/connector-sync.js";
import type { ConnectorTables, RemoteSystem } from "../connectors/connector-tables.js";
import { DiscourseWebhookReceiver, type WebhookHeaders, type WebhookReceipt } from "../connectors/discourse/discourse-webhook.js";
import type { DocStore } from "../crdt/doc-store.js";
import type { Clock } from "../util/clock.js";
import { OrdoError } from "../util/errors.js";
import { silentLogger, type Logger } from "../util/logger.js";

/** Time between syncs with each connected system: new grades and posts show up within a minute, at one scan of the course per minute. */
export const DEFAULT_CONNECTOR_INTERVAL_MS = 60_000;

/**
 * Wait after a webhook before the pull it asks for. One edit brings several events (the post,
 * its topic, sometimes the category) moments apart: they become one pull.
 */
export const DEFAULT_WEBHOOK_DEBOUNCE_MS = 2_000;

export interface ConnectorServiceOptions {
  store: DocStore;
  db: Kysely<ConnectorTables>;
  settings: ConnectorSettings;
  /** Time between syncs of each system; 0 syncs only when a webhook asks (default `DEFAULT_CONNECTOR_INTERVAL_MS`). */
  intervalMs?: number;
  debounceMs?: number;
  fetch?: typeof fetch;
  clock?: Clock;
  logger?: Logger;
}

/** How one sync with a system went: its results, or the error that stopped it (its message free of credentials). */
export type ConnectorSyncReport =
  | { system: "canvas"; ok: true; result: CanvasSyncResult }
  | { system: "discourse"; ok: true; result: DiscourseSyncResult }
  | { system: RemoteSystem; ok: false; error: string };

/**
 * Keeps a node's connected systems in step while it runs: each system is synced (push, then
 * pull) every interval and soon after a webhook says something changed there, one sync at a
 * time per system. A failed sync is logged and tried again at the next turn; nothing here
 * throws into the node, and no log line carries a credential.
 *
 * @example
 * const service = ConnectorService.start({ store: engine.docs, db: connectorDb(engine.db), settings: readConnectorSettings(dataDir) });
 * await service.close();
 */
export class ConnectorService {
  readonly #options: ConnectorServiceOptions;
  readonly #logger: Logger;
  readonly #runs = new Map<RemoteSystem, SyncQueue>();
  readonly #webhooks: DiscourseWebhookReceiver | null;
  readonly #stop = new AbortController();
  #interval: NodeJS.Timeout | null = null;

  private constructor(options: ConnectorServiceOptions) {
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
    const debounceMs = options.debounceMs ?? DEFAULT_WEBHOOK_DEBOUNCE_MS;
    for (const system of ["canvas", "discourse"] as const) {
      if (options.settings[system]) this.#runs.set(system, new SyncQueue(() => this.#syncOnce(system), debounceMs));
    }
    const secret = options.settings.discourse?.webhookSecret;
    this.#webhooks = secret
      ? new DiscourseWebhookReceiver({
          db: options.db,
          secret,
          clock: options.clock,
          reread: (event) => {
            this.#logger.info({ event: event.event, eventId: event.id, topics: event.topicIds, posts: event.postIds }, "Discourse webhook: re-reading the category");
            // The pull re-reads the whole category, the changed topic with it: what it reads is the forum as it is now.
            this.#runs.get("discourse")?.request();
          },
        })
      : null;
  }

  /** Starts the schedule: a first sync of each system now, then one every interval (none with interval 0). */
  static start(options: ConnectorServiceOptions): ConnectorService {
    const service = new ConnectorService(options);
    const intervalMs = options.intervalMs ?? DEFAULT_CONNECTOR_INTERVAL_MS;
    if (intervalMs > 0) {
      for (const queue of service.#runs.values()) void queue.sync();
      service.#interval = setInterval(() => {
        for (const queue of service.#runs.values()) void queue.sync();
      }, intervalMs);
      // The node's server keeps the process alive; this timer alone must not.
      service.#interval.unref();
    }
    return service;
  }

  /** The systems this node is connected to. */
  get systems(): RemoteSystem[] {
    return [...this.#runs.keys()];
  }

  /** Whether a Discourse forum is connected (a webhook for it is answered, if only with a refusal). */
  get takesDiscourseWebhooks(): boolean {
    return this.#runs.has("discourse");
  }

  /**
   * Takes a Discourse webhook delivery (see `DiscourseWebhookReceiver`). Refused when its
   * signature is wrong, or when no webhook secret is configured. Throws when the node is
   * stopping or has no Discourse connector.
   */
  async receiveDiscourseWebhook(headers: WebhookHeaders, rawBody: Uint8Array): Promise<WebhookReceipt> {
    if (!this.#runs.has("discourse")) throw new OrdoError("ORDO_NOT_CONNECTED", "no Discourse forum is connected");
    if (this.#stop.signal.aborted) throw new OrdoError("ORDO_STOPPING", "the node is stopping");
    const receipt: WebhookReceipt = this.#webhooks
      ? await this.#webhooks.receive(headers, rawBody)
      : { outcome: "refused", problem: "signature", message: "no webhook secret is configured for Discourse (ordo connect discourse --webhook-secret-file)" };
    // Neither headers nor body are logged: a refused delivery is anyone's text.
    if (receipt.outcome === "refused") this.#logger.warn({ problem: receipt.problem, reason: receipt.message }, "Discourse webhook refused");
    return receipt;
  }

  /** Syncs a system now, or joins a sync that is waiting to start; resolves with how it went. */
  sync(system: RemoteSystem): Promise<ConnectorSyncReport> {
    const queue = this.#runs.get(system);
    if (!queue) return Promise.resolve({ system, ok: false, error: `${system} is not connected` });
    return queue.sync();
  }

  /** Resolves once no sync is running, queued or waiting out a webhook's debounce. */
  async whenIdle(): Promise<void> {
    await Promise.all([...this.#runs.values()].map((queue) => queue.idle()));
  }

  /** Stops the schedule and cuts a sync under way short (its remote calls are aborted); waits for it to end. */
  async close(): Promise<void> {
    if (this.#interval) clearInterval(this.#interval);
    this.#interval = null;
    this.#stop.abort();
    await Promise.all([...this.#runs.values()].map((queue) => queue.close()));
  }

  async #syncOnce(system: RemoteSystem): Promise<ConnectorSyncReport> {
    const { store, db, settings } = this.#options;
    const signal = this.#stop.signal;
    if (signal.aborted) return { system, ok: false, error: "the node is stopping" };
    const base = this.#options.fetch ?? fetch;
    const common = {
      store,
      db,
      // The engine's clock: the outbox's times are compared with the documents' own.
      clock: this.#options.clock,
      logger: this.#logger,
      // Stopping the node aborts calls in flight and the waits between retries: a pull cut
      // short takes nothing as deleted, and the outbox keeps what was not sent.
      fetch: abortableFetch(base, signal),
      sleep: (ms: number) => abortableSleep(ms, signal),
    };
    const started = performance.now();
    try {
      const report: ConnectorSyncReport =
        system === "canvas"
          ? { system, ok: true, result: await syncCanvas({ ...common, settings: settings.canvas! }) }
          : { system, ok: true, result: await syncDiscourse({ ...common, settings: settings.discourse! }) };
      const { pushed, pulled } = report.result;
      const failed = [...pushed.failed.map((f) => `${f.url}: ${f.error}`), ...pulled.failed.map((f) => `${f.what}: ${f.error}`)];
      const counts = { system, ms: Math.round(performance.now() - started), created: pulled.created, updated: pulled.updated, deleted: pulled.deleted, failed: failed.length };
      if (failed.length > 0) this.#logger.warn({ ...counts, failures: failed.slice(0, 10).map((line) => this.#scrub(line)) }, "connector sync finished with failures");
      else this.#logger.info(counts, "connector sync finished");
      return report;
    } catch (error) {
      const message = this.#scrub(error instanceof Error ? error.message : String(error));
      this.#logger.error({ system, code: (error as { code?: unknown }).code, error: message }, "connector sync failed; trying again at the next turn");
      return { system, ok: false, error: message };
    }
  }

  /** A message with every credential of the settings cut out, should a remote or a library have echoed one. */
  #scrub(text: string): string {
    const { canvas, discourse } = this.#options.settings;
    let out = text;
    for (const secret of [canvas?.token, discourse?.apiKey, discourse?.webhookSecret]) {
      if (secret && secret.length > 0) out = out.split(secret).join("(redacted)");
    }
    return out;
  }
}

/**
 * One system's syncs, one at a time. `sync()` joins a sync that has not started yet (it will
 * read everything the caller wants read); `request()` asks for one after the debounce, and
 * further requests meanwhile are covered by it, since it starts after them.
 */
class SyncQueue {
  #tail: Promise<unknown> = Promise.resolve();
  #queued: Promise<ConnectorSyncReport> | null = null;
  #active = 0;
  #debounce: { timer: NodeJS.Timeout; done: Promise<void>; resolve: () => void } | null = null;
  #closed = false;

  constructor(
    private readonly run: () => Promise<ConnectorSyncReport>,
    private readonly debounceMs: number,
  ) {}

  sync(): Promise<ConnectorSyncReport> {
    if (this.#queued) return this.#queued;
    this.#active++;
    // `run` never rejects: it reports.
    const next = this.#tail.then(() => {
      this.#queued = null;
      return this.run();
    });
    this.#queued = next;
    this.#tail = next.finally(() => this.#active--);
    return next;
  }

  request(): void {
    if (this.#closed || this.#debounce) return;
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    const timer = setTimeout(() => {
      this.#debounce = null;
      this.sync().then(() => resolve(), resolve);
    }, this.debounceMs);
    this.#debounce = { timer, done, resolve };
  }

  async idle(): Promise<void> {
    while (this.#debounce || this.#active > 0) await (this.#debounce?.done ?? this.#tail);
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#debounce) {
      clearTimeout(this.#debounce.timer);
      this.#debounce.resolve();
      this.#debounce = null;
    }
    await this.#tail;
  }
}

/**
 * `fetch` that `stop` also aborts (until the response's headers arrive). Not `AbortSignal.any`:
 * on Node 20 every call would leave a dependent signal on the long-lived `stop` signal.
 */
function abortableFetch(base: typeof fetch, stop: AbortSignal): typeof fetch {
  return async (input, init) => {
    const controller = new AbortController();
    const onStop = () => controller.abort(stop.reason);
    const own = init?.signal;
    if (own) {
      if (own.aborted) controller.abort(own.reason);
      else own.addEventListener("abort", () => controller.abort(own.reason), { once: true });
    }
    if (stop.aborted) onStop();
    else stop.addEventListener("abort", onStop, { once: true });
    try {
      return await base(input, { ...init, signal: controller.signal });
    } finally {
      stop.removeEventListener("abort", onStop);
    }
  };
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new OrdoError("ORDO_STOPPING", "the node is stopping"));
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new OrdoError("ORDO_STOPPING", "the node is stopping"));
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
