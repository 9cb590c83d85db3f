import { OrdoError } from "../util/errors.js";
import { silentLogger, type Logger } from "../util/logger.js";

/** What went wrong with a remote call, in terms a connector acts on. */
export type RemoteProblem =
  | { kind: "throttled"; waitMs: number | null }
  | { kind: "unauthenticated" }
  | { kind: "forbidden" }
  | { kind: "not-found" }
  | { kind: "conflict" }
  | { kind: "invalid"; status: number }
  | { kind: "server"; status: number }
  | { kind: "network" };

/** A remote call that failed for good (after retries, or at once when retrying cannot help). */
export class RemoteError extends OrdoError {
  constructor(
    readonly problem: RemoteProblem,
    message: string,
    /** The response body, as text, for logs and conflict handling (never contains our credentials). */
    readonly body: string | null = null,
    options?: { cause?: unknown },
  ) {
    super(`ORDO_REMOTE_${problem.kind.toUpperCase().replace("-", "_")}`, message, options);
    this.name = "RemoteError";
  }
}

/** Each system says what its error responses mean: Canvas throttles with a 403, Discourse with a 429. */
export type Classify = (status: number, headers: Headers, body: string) => RemoteProblem | null;

export interface RetryPolicy {
  /** Attempts for a call that fails with a server or network error. */
  attempts: number;
  baseMs: number;
  maxMs: number;
  /** Throttled answers are waited out this many times before the call gives up. */
  throttleWaits: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseMs: 500, maxMs: 30_000, throttleWaits: 20 };

export interface HttpClientOptions {
  baseUrl: string;
  /** Credentials and other headers for every request; read per request, never logged. */
  headers: () => Record<string, string>;
  classify: Classify;
  fetch?: typeof fetch;
  retry?: Partial<RetryPolicy>;
  /** Requests in flight at once (Canvas charges parallel requests extra: default one). */
  concurrency?: number;
  /** Per-request timeout. */
  timeoutMs?: number;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  logger?: Logger;
  /**
   * How long to pause before the next request, from a response's headers: a system that says
   * how much of its rate budget is left is slowed down for before it throttles.
   */
  pace?: (headers: Headers) => number;
}

/** A form body: each key to one value, or to several sent as the key repeated (Rails' `key[]=a&key[]=b`). */
export type FormFields = Record<string, string | readonly string[]>;

export interface RequestOptions {
  query?: Record<string, string | number | boolean | readonly (string | number)[] | undefined>;
  json?: unknown;
  form?: FormFields;
  headers?: Record<string, string>;
  /**
   * Never repeated after a server or network failure: for a create the system has no
   * idempotency key for, where a second attempt could make a second object. The caller settles
   * the doubt itself (by looking for the object). Throttled answers are still waited out: a
   * throttled request is refused before the system does anything.
   */
  once?: boolean;
}

export interface RemoteResponse<T> {
  status: number;
  headers: Headers;
  body: T;
}

/**
 * HTTP for the connectors over an injected `fetch`: one request at a time by default,
 * throttling waited out, server and network errors retried with backoff and jitter, and
 * everything else (bad credentials, no permission, not found, invalid) reported at once as a
 * `RemoteError` with a `RemoteProblem` the connector can act on.
 */
export class HttpClient {
  readonly #options: HttpClientOptions;
  readonly #retry: RetryPolicy;
  readonly #fetch: typeof fetch;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #logger: Logger;
  #inFlight = 0;
  readonly #waiting: Array<() => void> = [];

  constructor(options: HttpClientOptions) {
    this.#options = options;
    this.#retry = { ...DEFAULT_RETRY, ...options.retry };
    this.#fetch = options.fetch ?? fetch;
    this.#sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.#logger = options.logger ?? silentLogger;
  }

  /** The system's address, as given: connectors derive the instance's identity from it. */
  get baseUrl(): string {
    return this.#options.baseUrl;
  }

  /** One call, retried as the policy says; resolves with the parsed JSON body (or null for an empty one). */
  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<RemoteResponse<T>> {
    const url = this.#url(path, options.query);
    let failures = 0;
    let throttled = 0;
    for (;;) {
      const outcome = await this.#once(method, url, options);
      if (outcome.ok) return outcome.response as RemoteResponse<T>;
      const { problem, body, cause } = outcome;
      const where = `${method} ${url.pathname}`;
      if (problem.kind === "throttled" && throttled < this.#retry.throttleWaits) {
        throttled++;
        const waitMs = problem.waitMs ?? this.#backoff(throttled);
        this.#logger.warn({ request: where, waitMs }, "throttled; waiting before trying again");
        await this.#sleep(waitMs);
        continue;
      }
      if ((problem.kind === "server" || problem.kind === "network") && !options.once && ++failures < this.#retry.attempts) {
        const waitMs = this.#backoff(failures);
        this.#logger.warn({ request: where, problem: problem.kind, waitMs }, "remote failed; trying again");
        await this.#sleep(waitMs);
        continue;
      }
      throw new RemoteError(problem, `${where}: ${describe(problem)}`, body, { cause });
    }
  }

  /**
   * Every page of a list, following only `rel="next"` links: page values are opaque (numbers
   * or bookmarks), a short or empty page may still have a next one, and a list ends when a
   * page has no next link. A next link to another origin than the client's is refused (a
   * `RemoteError` of kind "invalid"), never requested: every request carries the credentials.
   */
  async *pages<T>(path: string, query: RequestOptions["query"] = {}): AsyncGenerator<T[]> {
    let next: URL | null = this.#url(path, { per_page: 100, ...query });
    while (next) {
      const response: RemoteResponse<T[] | null> = await this.request<T[] | null>("GET", next.toString());
      yield Array.isArray(response.body) ? response.body : [];
      const link = nextLink(response.headers.get("link"));
      next = link === null ? null : this.#ownUrl(link, `GET ${next.pathname}`, response.status);
    }
  }

  /** A link a response gave, resolved; a RemoteError unless it stays on the client's origin. */
  #ownUrl(link: string, where: string, status: number): URL {
    const own = new URL(this.#options.baseUrl).origin;
    let url: URL;
    try {
      url = new URL(link, this.#options.baseUrl);
    } catch (cause) {
      throw new RemoteError({ kind: "invalid", status }, `${where}: the next page's link is not a URL`, null, { cause });
    }
    if (url.origin !== own) {
      throw new RemoteError({ kind: "invalid", status }, `${where}: the next page's link leads to ${url.origin}, not ${own}; refused, so the credentials are not sent there`);
    }
    return url;
  }

  async #once(method: string, url: URL, options: RequestOptions): Promise<{ ok: true; response: RemoteResponse<unknown> } | { ok: false; problem: RemoteProblem; body: string | null; cause?: unknown }> {
    await this.#acquire();
    try {
      const headers: Record<string, string> = { accept: "application/json", ...this.#options.headers(), ...options.headers };
      let body: string | undefined;
      if (options.json !== undefined) {
        headers["content-type"] = "application/json";
        body = JSON.stringify(options.json);
      } else if (options.form) {
        headers["content-type"] = "application/x-www-form-urlencoded";
        body = encodeForm(options.form).toString();
      }
      let response: Response;
      let text: string;
      try {
        response = await this.#fetch(url, { method, headers, body, signal: AbortSignal.timeout(this.#options.timeoutMs ?? 60_000) });
        text = await response.text();
      } catch (cause) {
        return { ok: false, problem: { kind: "network" }, body: null, cause };
      }
      const pause = this.#options.pace?.(response.headers) ?? 0;
      if (pause > 0) {
        // Holding the slot: the next request waits out the pause too.
        this.#logger.warn({ request: `${method} ${url.pathname}`, waitMs: pause }, "rate budget low; slowing down");
        await this.#sleep(pause);
      }
      const problem = response.ok ? null : (this.#options.classify(response.status, response.headers, text) ?? defaultProblem(response.status));
      if (problem) return { ok: false, problem, body: text };
      let parsed: unknown = null;
      if (text.length > 0) {
        try {
          parsed = JSON.parse(text);
        } catch (cause) {
          return { ok: false, problem: { kind: "invalid", status: response.status }, body: text.slice(0, 500), cause };
        }
      }
      return { ok: true, response: { status: response.status, headers: response.headers, body: parsed } };
    } finally {
      this.#release();
    }
  }

  #url(path: string, query: RequestOptions["query"] = {}): URL {
    const url = new URL(path, this.#options.baseUrl);
    for (const [key, value] of Object.entries(query)) {
      if (value === undefined) continue;
      if (Array.isArray(value)) for (const item of value) url.searchParams.append(key, String(item));
      else url.searchParams.set(key, String(value));
    }
    return url;
  }

  /** Exponential backoff with full jitter. */
  #backoff(attempt: number): number {
    const ceiling = Math.min(this.#retry.maxMs, this.#retry.baseMs * 2 ** (attempt - 1));
    return Math.round((this.#options.random ?? Math.random)() * ceiling);
  }

  async #acquire(): Promise<void> {
    if (this.#inFlight < (this.#options.concurrency ?? 1)) {
      this.#inFlight++;
      return;
    }
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
  }

  #release(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#inFlight--;
  }
}

/** A form body as `application/x-www-form-urlencoded` parameters, a list's values under its key repeated. */
export function encodeForm(form: FormFields): URLSearchParams {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(form)) {
    if (typeof value === "string") params.append(key, value);
    else for (const item of value) params.append(key, item);
  }
  return params;
}

/** The `rel="next"` URL of a Link header, if any (relation names compared without case). */
export function nextLink(header: string | null): string | null {
  if (!header) return null;
  for (const part of header.split(/,(?=\s*<)/)) {
    const match = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
    if (match && /\brel\s*=\s*"?([^";]*\s)?next(\s[^";]*)?"?/i.test(match[2]!)) return match[1]!;
  }
  return null;
}

function defaultProblem(status: number): RemoteProblem {
  if (status === 401) return { kind: "unauthenticated" };
  if (status === 403) return { kind: "forbidden" };
  if (status === 404) return { kind: "not-found" };
  if (status === 409) return { kind: "conflict" };
  if (status === 429) return { kind: "throttled", waitMs: null };
  if (status >= 500) return { kind: "server", status };
  return { kind: "invalid", status };
}

function describe(problem: RemoteProblem): string {
  switch (problem.kind) {
    case "throttled":
      return "still throttled after waiting";
    case "unauthenticated":
      return "the credentials were refused (bad or expired)";
    case "forbidden":
      return "not permitted";
    case "not-found":
      return "not found (deleted?)";
    case "conflict":
      return "changed remotely since it was read";
    case "invalid":
      return `refused as invalid (${problem.status})`;
    case "server":
      return `server error (${problem.status}) after retries`;
    case "network":
      return "unreachable after retries";
  }
}
