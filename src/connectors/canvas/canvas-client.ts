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
    concurrency: 1,
    headers: () => ({ authorization: `Bearer ${options.token()}`, accept: "application/json+canvas-string-ids" }),
  });
}
