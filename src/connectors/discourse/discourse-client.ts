import { HttpClient, type Classify, type HttpClientOptions, type RemoteProblem } from "../http-client.js";

/**
 * What Discourse's error responses mean: a 429 carries `Retry-After` or, in its JSON body,
 * `extras.wait_seconds` (a per-IP 429 is plain text with neither).
 */
export const classifyDiscourse: Classify = (status, headers, body): RemoteProblem | null => {
  if (status !== 429) return null;
  const header = Number(headers.get("retry-after"));
  if (Number.isFinite(header) && header > 0) return { kind: "throttled", waitMs: header * 1000 };
  try {
    const wait = Number((JSON.parse(body) as { extras?: { wait_seconds?: unknown } }).extras?.wait_seconds);
    if (Number.isFinite(wait) && wait > 0) return { kind: "throttled", waitMs: wait * 1000 };
  } catch {
    // A plain-text 429: wait by backoff.
  }
  return { kind: "throttled", waitMs: null };
};

export interface DiscourseClientOptions extends Pick<HttpClientOptions, "fetch" | "retry" | "sleep" | "random" | "logger" | "timeoutMs"> {
  url: string;
  apiKey: () => string;
  username: string;
}

/** An `HttpClient` speaking to Discourse with `Api-Key` and `Api-Username`. */
export function discourseClient(options: DiscourseClientOptions): HttpClient {
  return new HttpClient({
    ...options,
    baseUrl: options.url,
    classify: classifyDiscourse,
    concurrency: 1,
    headers: () => ({ "api-key": options.apiKey(), "api-username": options.username }),
  });
}
