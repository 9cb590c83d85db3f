import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { DiscourseFaults, losesAnswerAfterWork, serveFault } from "./discourse-faults.js";
import { errorReply, notFoundReply, parseNested, readBody, sendReply, type Params } from "./discourse-http.js";
import { dispatchDiscourseRoute } from "./discourse-routes.js";
import { DEFAULT_DISCOURSE_FIXTURES_DIR, generateDiscourseForum, seedDiscourseFromFixtures, type DiscourseScale } from "./discourse-seed.js";
import { DiscourseState, type DiscourseSettings, type DiscourseUser } from "./discourse-state.js";
import { DiscourseWebhookEmitter, type DiscourseWebhookOptions } from "./discourse-webhooks.js";

export interface FakeDiscourseOptions {
  /** Directory of the Discourse fixtures; the repo's `tests/fixtures/lms/discourse/` by default. */
  fixturesDir?: string;
  /** Milliseconds since the epoch; tests pass a movable clock to cross the 300 s grace period or the 120 s memo. */
  clock?: () => number;
  /** Deliver webhooks for every change to this URL, signed with this secret. */
  webhook?: DiscourseWebhookOptions;
  /** Add a generated forum on top of the fixtures. */
  scale?: DiscourseScale;
  settings?: Partial<DiscourseSettings>;
  /** The global admin key the fake accepts; a fixed 64-hex value by default. */
  apiKey?: string;
}

/** One request as the fake saw it, for tests that count requests. */
export interface DiscourseRequestRecord {
  method: string;
  path: string;
  status: number;
  username: string | null;
}

/** The fixed key of the fake: 64 hex characters, like a real admin key. */
export const DEFAULT_DISCOURSE_API_KEY = "d15c0a5ef00dfa4e0000000000000000000000000000000000000000000000aa";

const INVALID_KEY = "You are not permitted to view the requested resource. The API username or key is invalid.";

/**
 * A fake Discourse forum on loopback, speaking the REST API of CONTRACT §2 with its quirks.
 *
 * @example
 * const discourse = await FakeDiscourse.start();
 * const res = await fetch(`${discourse.url}/t/301.json`, {
 *   headers: { "Api-Key": discourse.apiKey, "Api-Username": discourse.username },
 * });
 * await discourse.close();
 */
export class FakeDiscourse {
  readonly faults = new DiscourseFaults();
  readonly requests: DiscourseRequestRecord[] = [];
  /** The admin user the key is meant for (`system`); any username can be impersonated. */
  readonly username = "system";
  private readonly createMemo = new Map<string, { postId: number; atMs: number }>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
    readonly apiKey: string,
    readonly state: DiscourseState,
    readonly webhooks: DiscourseWebhookEmitter | undefined,
  ) {}

  /** Seeds the state from the fixtures, listens on 127.0.0.1 with a free port, and wires webhooks. */
  static async start(options: FakeDiscourseOptions = {}): Promise<FakeDiscourse> {
    const state = new DiscourseState(options.clock ?? Date.now, options.settings);
    seedDiscourseFromFixtures(state, options.fixturesDir ?? DEFAULT_DISCOURSE_FIXTURES_DIR);
    if (options.scale !== undefined) generateDiscourseForum(state, options.scale);
    let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.end();
    const server = createServer((req, res) => handler(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // Webhooks start after seeding, so the seeded forum announces nothing.
    const webhooks = options.webhook === undefined ? undefined : new DiscourseWebhookEmitter(state, options.webhook, url);
    if (webhooks !== undefined) state.onChange((change) => webhooks.onChange(change));
    const fake = new FakeDiscourse(server, url, options.apiKey ?? DEFAULT_DISCOURSE_API_KEY, state, webhooks);
    handler = (req, res) => {
      fake.handle(req, res).catch((error: unknown) => {
        if (!res.headersSent) sendReply(res, errorReply(500, [String(error)], "server_error"));
        else res.destroy();
      });
    };
    return fake;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? "GET";
    const parsed = new URL(req.url ?? "/", this.url);
    const path = parsed.pathname;
    const username = header(req, "api-username") ?? null;
    const record: DiscourseRequestRecord = { method, path: path + parsed.search, status: 0, username };
    this.requests.push(record);
    res.on("finish", () => (record.status = res.statusCode));

    const fault = this.faults.take(method, path);
    if (fault !== undefined && !losesAnswerAfterWork(fault.kind)) {
      req.resume();
      serveFault(fault, res);
      return;
    }

    // Query-string keys are rejected on modern versions (§2.1); only headers authenticate.
    const key = header(req, "api-key");
    let viewer: DiscourseUser | null = null;
    if (key !== undefined) {
      viewer = key === this.apiKey ? (this.state.userByName(username ?? "system") ?? null) : null;
      if (viewer === null) {
        req.resume();
        sendReply(res, errorReply(403, [INVALID_KEY], "invalid_access"));
        return;
      }
    }

    // JSON is chosen by a `.json` suffix or `Accept: application/json`; otherwise Discourse serves the HTML app.
    const wantsJson = path.endsWith(".json") || (header(req, "accept") ?? "").includes("application/json");
    const bare = path.replace(/\.json$/, "");
    if (!wantsJson && method === "GET") {
      req.resume();
      sendReply(res, { status: 200, text: "<!DOCTYPE html><html><head><title>Forum</title></head><body><noscript>JavaScript required</noscript></body></html>", contentType: "text/html; charset=utf-8" });
      return;
    }

    let body: Params;
    try {
      body = await readBody(req);
    } catch {
      sendReply(res, errorReply(400, ["The parameters are invalid."], "invalid_parameters"));
      return;
    }
    const params = { ...parseNested(parsed.searchParams), ...body };
    const reply = dispatchDiscourseRoute(method, bare, { state: this.state, viewer, params, createMemo: this.createMemo });
    // The work is done; a fault that loses the answer loses it now.
    if (fault !== undefined) serveFault(fault, res);
    else sendReply(res, reply ?? notFoundReply());
  }

  /** Stops the webhook emitter and the server; both steps run even if one fails. */
  async close(): Promise<void> {
    const results = await Promise.allSettled([
      this.webhooks?.close() ?? Promise.resolve(),
      new Promise<void>((resolve, reject) => {
        this.server.close((error) => (error === undefined ? resolve() : reject(error)));
        this.server.closeAllConnections();
      }),
    ]);
    const failure = results.find((r) => r.status === "rejected");
    if (failure !== undefined) throw failure.reason;
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
