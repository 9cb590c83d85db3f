import type { ServerResponse } from "node:http";
import { drawFault, type RandomFaults } from "../random-faults.js";

/**
 * What an injected fault answers:
 * - `rate-limit`: 429 JSON with `extras.wait_seconds`, `Retry-After` and the per-key error-code header
 * - `rate-limit-action`: the same JSON without the error-code header (an action-level refusal)
 * - `rate-limit-ip`: the per-IP middleware's plain-text 429
 * - `server-error`: 500; `read-only`: 503 JSON `read_only`
 * - `drop`: the socket is destroyed without an answer
 * - `lose-answer`: the request does its work, then the socket is destroyed where the answer was due
 * - `no-answer`: the request does its work, and its answer never comes (the client times out)
 */
export type DiscourseFaultKind = "rate-limit" | "rate-limit-action" | "rate-limit-ip" | "server-error" | "read-only" | "drop" | "lose-answer" | "no-answer";

/** Faults that let the request do its work and then lose its answer; the others take the answer's place. */
export function losesAnswerAfterWork(kind: DiscourseFaultKind): kind is "lose-answer" | "no-answer" {
  return kind === "lose-answer" || kind === "no-answer";
}

export interface DiscourseFaultRule {
  kind: DiscourseFaultKind;
  /** Only requests with this method; any when absent. */
  method?: string;
  /** Matched against the path without query: a string must equal it (with or without `.json`), a RegExp must match it. Any when absent. */
  path?: string | RegExp;
  /** How many matching requests fail; 1 when absent. */
  times?: number;
  /** Seconds for `Retry-After` and `wait_seconds`; 42 when absent, like the fixture. */
  retryAfter?: number;
}

/** Injects failures into the next matching requests, per route; or into requests at random. */
export class DiscourseFaults {
  private rules: (DiscourseFaultRule & { left: number })[] = [];
  private random: RandomFaults<DiscourseFaultRule> | null = null;

  /** From now on, a share of the requests no injected rule matches fail at random (null: none do). */
  randomly(mode: RandomFaults<DiscourseFaultRule> | null): void {
    this.random = mode;
  }

  /** Makes the next `times` requests matching `rule` fail with `rule.kind`. */
  inject(rule: DiscourseFaultRule): void {
    this.rules.push({ ...rule, left: rule.times ?? 1 });
  }

  clear(): void {
    this.rules = [];
  }

  /** Failures still to be served. */
  get pending(): number {
    return this.rules.reduce((n, rule) => n + rule.left, 0);
  }

  /** Takes the first rule matching this request, if any, and spends one of its uses. */
  take(method: string, path: string): DiscourseFaultRule | undefined {
    const bare = path.replace(/\.json$/, "");
    const rule = this.rules.find((r) => {
      if (r.method !== undefined && r.method.toUpperCase() !== method) return false;
      if (r.path === undefined) return true;
      if (typeof r.path === "string") return r.path === path || r.path.replace(/\.json$/, "") === bare;
      return r.path.test(path);
    });
    if (rule === undefined) return drawFault(this.random);
    rule.left -= 1;
    if (rule.left <= 0) this.rules = this.rules.filter((r) => r !== rule);
    return rule;
  }
}

/** Answers `res` as the fault says. */
export function serveFault(rule: DiscourseFaultRule, res: ServerResponse): void {
  const wait = rule.retryAfter ?? 42;
  const json = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
    res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", ...headers });
    res.end(JSON.stringify(body));
  };
  const rateLimitBody = {
    errors: [`You\u2019ve performed this action too many times. Please wait ${wait} seconds before trying again.`],
    error_type: "rate_limit",
    extras: { wait_seconds: wait, time_left: `${wait} seconds` },
  };
  switch (rule.kind) {
    case "rate-limit":
      json(429, rateLimitBody, { "Retry-After": String(wait), "Discourse-Rate-Limit-Error-Code": "admin_api_key_rate_limit" });
      return;
    case "rate-limit-action":
      json(429, rateLimitBody, { "Retry-After": String(wait) });
      return;
    case "rate-limit-ip":
      res.writeHead(429, { "Content-Type": "text/plain", "Retry-After": String(wait), "Discourse-Rate-Limit-Error-Code": "ip_10_secs_limit" });
      res.end(`Slow down, too many requests from this IP address.\nPlease retry again in ${wait} seconds.\nError code: ip_10_secs_limit.\n`);
      return;
    case "server-error":
      res.writeHead(500, { "Content-Type": "text/html" });
      res.end("<html><body><h1>We're sorry, but something went wrong.</h1></body></html>");
      return;
    case "read-only":
      json(503, {
        errors: ["Your site is in read only mode. Please continue to browse, however actions such as replying, liking and other actions are disabled for now."],
        error_type: "read_only",
      });
      return;
    case "drop":
    case "lose-answer":
      res.socket?.destroy();
      return;
    case "no-answer":
      return;
  }
}
