import { HttpClient, type Classify, type HttpClientOptions, type RemoteProblem } from "../http-client.js";

/**
 * What Canvas's error responses mean. Throttling looks like a permission failure (a 403 whose
 * text says "Rate Limit Exceeded", `X-Rate-Limit-Remaining: 0`, no `Retry-After`); a bad or
 * expired token is a 401 with `WWW-Authenticate`; a 401 or 403 without it is no permission.
 */
export const classifyCanvas: Classify = (status, headers, body): RemoteProblem | null => {
  if (status === 429 || (status === 403 && /rate limit exceeded/i.test(body))) return { kind: "throttled", waitMs: null };
  if (status === 401) return headers.has("www-authenticate") ? { kind: "unauthenticated" } : { kind: "forbidden" };
  return null;
};

/** The share of a token's rate budget below which requests slow down. */
export const CANVAS_LOW_SHARE = 0.25;
/** Canvas's bucket drains about this many units a second. */
const CANVAS_OUTFLOW_PER_S = 10;
const MAX_PACE_MS = 15_000;

/**
 * Canvas says what is left of a token's budget in `X-Rate-Limit-Remaining` (a Ruby float) on
 * every answer, but not how large the budget is (600 by default, set per deployment): the
 * largest value seen stands for it. Under a quarter of that, the connector waits as long as
 * the bucket needs to drain back to a quarter, so a long pull slows down instead of running
 * into the 403 throttle.
 */
export function canvasPacer(): (headers: Headers) => number {
  let budget = 0;
  return (headers) => {
    const remaining = Number.parseFloat(headers.get("x-rate-limit-remaining") ?? "");
    if (!Number.isFinite(remaining)) return 0;
    budget = Math.max(budget, remaining);
    const low = budget * CANVAS_LOW_SHARE;
    if (remaining >= low) return 0;
    return Math.min(MAX_PACE_MS, Math.ceil(((low - Math.max(0, remaining)) / CANVAS_OUTFLOW_PER_S) * 1000));
  };
}

export interface CanvasClientOptions extends Pick<HttpClientOptions, "fetch" | "retry" | "sleep" | "random" | "logger" | "timeoutMs"> {
  /** The Canvas instance, e.g. `https://school.instructure.com`. */
  url: string;
  token: () => string;
}

/** An `HttpClient` speaking to Canvas: bearer token, string ids (ids can pass 2^53), one request at a time. */
export function canvasClient(options: CanvasClientOptions): HttpClient {
  return new HttpClient({
    ...options,
    baseUrl: options.url,
    classify: classifyCanvas,
    pace: canvasPacer(),
    concurrency: 1,
    headers: () => ({ authorization: `Bearer ${options.token()}`, accept: "application/json+canvas-string-ids" }),
  });
}
