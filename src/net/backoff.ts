/** Reconnection delays: exponential growth, a cap, full jitter. Pure, so tests need no clock. */

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  factor: number;
  /** A connection that lasted this long starts the next backoff from `initialMs` again. */
  resetAfterMs: number;
}

export const DEFAULT_BACKOFF: Readonly<BackoffOptions> = Object.freeze({
  // Fast enough that a server restart is barely noticed...
  initialMs: 250,
  // ...slow enough that a classroom of laptops does not hammer a server that is down.
  maxMs: 30_000,
  factor: 2,
  // A link that held this long was healthy: its loss is news, not a repeat failure.
  resetAfterMs: 10_000,
});

/**
 * The delay before retry number `attempt` (0-based), with full jitter: uniform in
 * [0, min(maxMs, initialMs * factor^attempt)), so that clients dropped together by one
 * server restart do not come back together.
 */
export function backoffDelay(attempt: number, backoff: BackoffOptions, random: () => number): number {
  const ceiling = Math.min(backoff.maxMs, backoff.initialMs * backoff.factor ** attempt);
  return Math.floor(random() * ceiling);
}
