// The fake Canvas HTTP shell: auth, throttling, faults, body parsing, pagination and string ids around the routes.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { fileURLToPath } from "node:url";
import { scaleCanvasCourse, type CourseScale } from "./canvas-generator.js";
import type { Reply, RouteHandler } from "./canvas-reply.js";
import { loadCanvasState, type CanvasState, type ViewMode } from "./canvas-state.js";
import { CostBucket, DEFAULT_THROTTLE, FaultInjector, type ThrottleOptions } from "./canvas-throttle.js";
import { COURSE_ROUTES } from "./course-routes.js";
import { DISCUSSION_ROUTES } from "./discussion-routes.js";
import { MODULE_ROUTES } from "./module-routes.js";
import { PAGE_ROUTES } from "./page-routes.js";
import { paginate } from "./canvas-paging.js";
import { isObject, paramString, parseRailsParams, stringifyIds, toCanvasJson, type Params } from "./canvas-wire.js";

export interface FakeCanvasOptions {
  /** Directory of the Canvas fixture files; defaults to the copy under `tests/fixtures/lms/canvas`. */
  fixturesDir?: string;
  /** Milliseconds since the epoch; drives timestamps, the announcements window and the throttle's drain. */
  clock?: () => number;
  /** Seeds the generated part of the course and the tokens. */
  seed?: number;
  /** Grows the fixture course (students, assignments, topics, entries per topic). */
  scale?: CourseScale;
  throttle?: Partial<ThrottleOptions>;
  /** Holds each request this long after reserving its up-front cost, so parallel requests really overlap. */
  latencyMs?: number;
}

export interface RecordedRequest {
  method: string;
  /** Path under `/api/v1` plus the query string. */
  path: string;
  status: number;
}

/** The teacher of the fixture course, whom the default token belongs to. */
const TEACHER_ID = 7001;
const DEFAULT_FIXTURES = fileURLToPath(new URL("../../../tests/fixtures/lms/canvas/", import.meta.url));
const STRING_IDS = "application/json+canvas-string-ids";
const JSON_TYPE = "application/json; charset=utf-8";

interface CompiledRoute {
  method: string;
  pattern: RegExp;
  names: string[];
  handler: RouteHandler;
}

const ROUTES: CompiledRoute[] = [...COURSE_ROUTES, ...MODULE_ROUTES, ...DISCUSSION_ROUTES, ...PAGE_ROUTES].map(([method, path, handler]) => {
  const names: string[] = [];
  const source = path.replace(/:([a-z_]+)/g, (_all, name: string) => {
    names.push(name);
    return "([^/]+)";
  });
  return { method, pattern: new RegExp(`^${source}$`), names, handler };
});

/**
 * A fake Canvas LMS on loopback, seeded with course 4201 "BIO101", quirks included (CONTRACT §1, §5).
 *
 * @example
 * const canvas = await FakeCanvas.start({ clock: () => Date.parse("2025-01-22T12:00:00Z") });
 * const res = await fetch(`${canvas.url}/api/v1/courses/4201/assignments`, { headers: { Authorization: `Bearer ${canvas.token}` } });
 * canvas.faults.inject("GET /courses/4201/assignments", "throttle-403", 2);
 * canvas.faults.randomly({ rate: 0.25, faults: ["drop-connection", "lose-answer", 500], random: createRandom(7) });
 * await canvas.close();
 */
export class FakeCanvas {
  /** Injected faults for the next N matching requests. */
  readonly faults = new FaultInjector();
  /** Every request answered (or dropped, with status 0), in order: for counting what a connector spent. */
  readonly requests: RecordedRequest[] = [];
  private readonly buckets = new Map<string, CostBucket>();
  private responses = 0;

  private constructor(
    private readonly server: Server,
    /** `http://127.0.0.1:<port>`; the API lives under `/api/v1`. */
    readonly url: string,
    /** The in-memory course; change it to simulate an edit made in Canvas. */
    readonly state: CanvasState,
    /** A valid bearer token for the teacher (user 7001). */
    readonly token: string,
    private readonly clock: () => number,
    private readonly throttle: ThrottleOptions,
    private readonly latencyMs: number,
  ) {}

  /** Starts a fake on a free loopback port. */
  static async start(options: FakeCanvasOptions = {}): Promise<FakeCanvas> {
    const clock = options.clock ?? Date.now;
    const seed = options.seed ?? 1;
    let fake: FakeCanvas | undefined;
    const server = createServer((req, res) => {
      if (fake) fake.handle(req, res).catch(() => res.destroy());
      else res.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const state = loadCanvasState(options.fixturesDir ?? DEFAULT_FIXTURES, url);
    if (options.scale) scaleCanvasCourse(state, options.scale, seed, url);
    const token = `fake-canvas-${seed}-${TEACHER_ID}`;
    state.tokens.set(token, TEACHER_ID);
    fake = new FakeCanvas(server, url, state, token, clock, { ...DEFAULT_THROTTLE, ...options.throttle }, options.latencyMs ?? 0);
    return fake;
  }

  /** A valid token for another user (a student, to provoke permission errors). */
  tokenFor(userId: number): string {
    const token = `fake-canvas-user-${userId}-${this.state.tokens.size}`;
    this.state.tokens.set(token, userId);
    return token;
  }

  /** Revokes a token: it then gets 401 with `WWW-Authenticate`, like an expired one. */
  revokeToken(token: string): void {
    this.state.tokens.delete(token);
  }

  /** Fills a token's cost bucket: its next requests get the 403 throttle until the clock drains it. */
  exhaustRateLimit(token: string = this.token): void {
    this.bucketFor(token).exhaust();
  }

  /** Sets how `/view` answers; "stale" freezes the cache with the entries that exist now. */
  setViewMode(mode: ViewMode): void {
    this.state.knobs.viewMode = mode;
    if (mode === "stale") this.state.viewCachedEntryIds = new Set([...this.state.entries.values()].flat().map((e) => e.id));
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private bucketFor(token: string): CostBucket {
    let bucket = this.buckets.get(token);
    if (!bucket) {
      bucket = new CostBucket(this.throttle, this.clock());
      this.buckets.set(token, bucket);
    }
    return bucket;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? "GET";
    const url = new URL(req.url ?? "/", this.url);
    const path = url.pathname.replace(/^\/api\/v1(?=\/)/, "");
    const record = (status: number): void => {
      this.requests.push({ method, path: `${path}${url.search}`, status });
    };
    if (!url.pathname.startsWith("/api/v1/")) return this.send(res, record, { status: 404, json: { errors: [{ message: "The specified resource does not exist." }] } });

    const fault = this.faults.take(method, path);
    if (fault === "drop-connection") {
      record(0);
      req.socket.destroy();
      return;
    }
    const header = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "")?.[1]?.trim();
    // The up-front cost is reserved before the body is read, as Canvas does while a request is in flight.
    let bucket = header !== undefined && this.state.tokens.has(header) ? this.bucketFor(header) : undefined;
    if (bucket && !bucket.admit(this.clock())) return this.sendThrottle(res, record, 403);
    let remaining: number | undefined;
    const settle = (): number => (remaining ??= bucket ? bucket.finish(this.clock()) : this.throttle.hwm);
    try {
      if (this.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.latencyMs));
      const body = await readBody(req);
      const input: Params = { ...parseRailsParams(url.searchParams), ...body };
      const token = header ?? paramString(input.access_token);
      if (token === undefined) {
        return this.send(res, record, { status: 401, json: { status: "unauthenticated", errors: [{ message: "user authorization required" }] } }, { "WWW-Authenticate": 'Bearer realm="canvas-lms"' });
      }
      const userId = this.state.tokens.get(token);
      if (userId === undefined) {
        return this.send(res, record, { status: 401, json: { errors: [{ message: "Invalid access token." }] } }, { "WWW-Authenticate": 'Bearer realm="canvas-lms"' });
      }
      if (!bucket) {
        // A token sent in the query or body is charged too, just later.
        bucket = this.bucketFor(token);
        if (!bucket.admit(this.clock())) {
          bucket = undefined;
          return this.sendThrottle(res, record, 403);
        }
      }
      if (fault === "throttle-403") return this.sendThrottle(res, record, 403);
      if (fault === 429) return this.sendThrottle(res, record, 429);
      if (fault === 500) return this.send(res, record, { status: 500, json: { errors: [{ message: "An error occurred.", error_code: "internal_server_error" }], error_report_id: 4815162342 } });
      if (fault === 503) return this.send(res, record, { status: 503, text: "" });

      const reply = this.route(method, path, input, userId);
      if (fault === "lose-answer" || fault === "no-answer") return this.withhold(req, record, fault);
      const stringIds = (req.headers.accept ?? "").includes(STRING_IDS);
      const extra = { "X-Request-Cost": this.throttle.requestCost.toFixed(16), "X-Rate-Limit-Remaining": String(settle()) };
      return this.send(res, record, reply, extra, { url, stringIds });
    } catch (error) {
      if (error instanceof BadBody) return this.send(res, record, { status: 400, json: { errors: [{ message: error.message }] } });
      return this.send(res, record, { status: 500, json: { errors: [{ message: "An error occurred.", error_code: "internal_server_error" }] } });
    } finally {
      settle();
    }
  }

  private route(method: string, path: string, input: Params, userId: number): Reply {
    for (const route of ROUTES) {
      const match = route.pattern.exec(path);
      if (!match || route.method !== method) continue;
      const params: Record<string, string> = {};
      route.names.forEach((name, i) => (params[name] = decodeURIComponent(match[i + 1] ?? "")));
      // A course may be named by an alias (`sis_course_id:BIO101`) instead of its id.
      const sis = this.state.course.sis_course_id;
      if (params.course_id === `sis_course_id:${typeof sis === "string" ? sis : "\u0000"}`) params.course_id = String(this.state.course.id);
      if (params.course_id !== undefined && params.course_id !== String(this.state.course.id)) break;
      return route.handler({ state: this.state, method, params, input, userId, now: this.clock, origin: this.url });
    }
    return { status: 404, json: { errors: [{ message: "The specified resource does not exist." }] } };
  }

  /** A request that did its work and whose answer is lost: the connection closes, or the answer never comes. */
  private withhold(req: IncomingMessage, record: (status: number) => void, fault: "lose-answer" | "no-answer"): void {
    record(0);
    if (fault === "lose-answer") req.socket.destroy();
  }

  /** The throttle answer: plain text, `X-Rate-Limit-Remaining: 0.0`, and no `Retry-After` or `X-Request-Cost`. */
  private sendThrottle(res: ServerResponse, record: (status: number) => void, status: 403 | 429): void {
    const text = status === 403 ? "403 Forbidden (Rate Limit Exceeded)\n" : "429 Too Many Requests (Rate Limit Exceeded)\n";
    record(status);
    res.writeHead(status, { "Content-Type": "text/plain; charset=utf-8", "X-Rate-Limit-Remaining": "0.0" });
    res.end(text);
  }

  private send(
    res: ServerResponse,
    record: (status: number) => void,
    reply: Reply,
    headers: Record<string, string> = {},
    wire: { url: URL; stringIds: boolean } | undefined = undefined,
  ): void {
    const out: Record<string, string> = { ...headers };
    let payload: string;
    if ("text" in reply) {
      if (reply.contentType) out["Content-Type"] = reply.contentType;
      payload = reply.text;
    } else {
      let json: unknown;
      if ("list" in reply) {
        const page = wire ? paginate(reply, wire.url, this.url) : { items: reply.list, link: undefined };
        json = page.items;
        // A bookmark the fake did not issue: Canvas answers 404.
        if (page.link === null) return this.send(res, record, { status: 404, json: { errors: [{ message: "The specified resource does not exist." }] } }, headers);
        // Canvas does not promise the header's case; alternate it so clients must read it case-insensitively.
        if (page.link) out[this.responses++ % 2 === 0 ? "Link" : "link"] = page.link;
      } else {
        json = reply.json;
      }
      if (wire?.stringIds) json = stringifyIds(json);
      out["Content-Type"] = JSON_TYPE;
      payload = toCanvasJson(json);
    }
    record(reply.status);
    res.writeHead(reply.status, out);
    res.end(reply.status === 204 ? undefined : payload);
  }
}

class BadBody extends Error {}

/** Reads a JSON or form-encoded body into Rails-style params; other bodies are ignored, as Canvas ignores them. */
async function readBody(req: IncomingMessage): Promise<Params> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const raw = Buffer.concat(chunks).toString("utf8");
  if (raw === "") return {};
  const type = (req.headers["content-type"] ?? "").toLowerCase();
  if (type.includes("application/json")) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      throw new BadBody("Invalid JSON body");
    }
    return isObject(parsed) ? parsed : {};
  }
  if (type.includes("application/x-www-form-urlencoded")) return parseRailsParams(new URLSearchParams(raw));
  return {};
}
