// Canvas throttling (a leaky cost bucket per token) and the per-route fault injection tests use.
import { drawFault, type RandomFaults } from "../random-faults.js";

export interface ThrottleOptions {
  /** Canvas's high-water mark: at or above it, requests get the 403 throttle. */
  hwm: number;
  /** Units drained per second of the fake's clock. */
  outflowPerSecond: number;
  /** Reserved while a request is in flight and refunded at its end: the penalty for parallel requests. */
  upFrontCost: number;
  /** What each finished request costs (Canvas: CPU + DB seconds, typically a few hundredths). */
  requestCost: number;
}

/** Canvas defaults (request_throttle.rb); the per-request cost is a typical cheap GET. */
export const DEFAULT_THROTTLE: ThrottleOptions = { hwm: 600, outflowPerSecond: 10, upFrontCost: 50, requestCost: 0.05 };

/** One token's bucket. Time comes from the injected clock, so a frozen clock never drains. */
export class CostBucket {
  private count = 0;
  private lastMs: number;

  constructor(
    private readonly options: ThrottleOptions,
    now: number,
  ) {
    this.lastMs = now;
  }

  /** Reserves the up-front cost; false means the request is throttled. */
  admit(now: number): boolean {
    this.drain(now);
    if (this.count >= this.options.hwm) return false;
    this.count += this.options.upFrontCost;
    return true;
  }

  /** Refunds the reservation, charges the real cost, and returns what `X-Rate-Limit-Remaining` shows. */
  finish(now: number): number {
    this.drain(now);
    this.count = Math.max(0, this.count - this.options.upFrontCost + this.options.requestCost);
    return this.options.hwm - this.count;
  }

  /** Fills the bucket so the next request is throttled (until it drains). */
  exhaust(): void {
    this.count = Math.max(this.count, this.options.hwm);
  }

  private drain(now: number): void {
    const elapsed = Math.max(0, now - this.lastMs) / 1000;
    this.count = Math.max(0, this.count - elapsed * this.options.outflowPerSecond);
    this.lastMs = now;
  }
}

/**
 * What an injected fault does to a request. Most take the place of the answer: the request does
 * nothing. Two let it do its work and then lose the answer: `lose-answer` closes the connection
 * where the answer was due, `no-answer` leaves the request waiting until the client gives up.
 */
export type CanvasFault = "throttle-403" | 429 | 500 | 503 | "drop-connection" | "lose-answer" | "no-answer";

/**
 * Which requests a fault hits: `"*"` for any, a path under `/api/v1` (`"/courses/4201/assignments"`, optionally
 * prefixed by a method, `"PUT /courses/4201/pages/x"`, and ending in `*` for a prefix), or a RegExp tested
 * against `"METHOD /path"`.
 */
export type RouteMatcher = string | RegExp;

interface PendingFault {
  matcher: RouteMatcher;
  fault: CanvasFault;
  remaining: number;
}

/** Faults for the next N matching requests, consumed in the order they were injected; or at random. */
export class FaultInjector {
  private readonly pending: PendingFault[] = [];
  private random: RandomFaults<CanvasFault> | null = null;

  /** From now on, a share of the requests no injected fault matches fail at random (null: none do). */
  randomly(mode: RandomFaults<CanvasFault> | null): void {
    this.random = mode;
  }

  /** The next `times` requests matching `matcher` get `fault`. */
  inject(matcher: RouteMatcher, fault: CanvasFault, times = 1): void {
    this.pending.push({ matcher, fault, remaining: times });
  }

  clear(): void {
    this.pending.length = 0;
  }

  /** How many injected faults are still waiting for a request. */
  get remaining(): number {
    return this.pending.reduce((sum, p) => sum + p.remaining, 0);
  }

  /** Consumes and returns the fault for this request, if one matches. */
  take(method: string, path: string): CanvasFault | undefined {
    const index = this.pending.findIndex((p) => matches(p.matcher, method, path));
    const found = this.pending[index];
    if (!found) return drawFault(this.random);
    found.remaining -= 1;
    if (found.remaining <= 0) this.pending.splice(index, 1);
    return found.fault;
  }
}

function matches(matcher: RouteMatcher, method: string, path: string): boolean {
  if (matcher instanceof RegExp) return matcher.test(`${method} ${path}`);
  if (matcher === "*") return true;
  const space = matcher.indexOf(" ");
  const wantMethod = space > 0 ? matcher.slice(0, space).toUpperCase() : undefined;
  const wantPath = space > 0 ? matcher.slice(space + 1) : matcher;
  if (wantMethod !== undefined && wantMethod !== method) return false;
  return wantPath.endsWith("*") ? path.startsWith(wantPath.slice(0, -1)) : path === wantPath;
}
