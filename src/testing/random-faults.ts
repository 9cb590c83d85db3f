/**
 * A fake server's faults at random: a share of its requests, each drawn from a seeded random
 * source, fail in one of the given ways. Seeded, so a run that found a fault can be replayed.
 */
export interface RandomFaults<F> {
  /** The share of requests that fail, from 0 to 1. */
  rate: number;
  /** What a failing request gets: one of these, each as likely (repeat one to weight it). */
  faults: readonly F[];
  random: () => number;
}

/** The fault this request gets, if the draw says it fails. */
export function drawFault<F>(mode: RandomFaults<F> | null): F | undefined {
  if (mode === null || mode.faults.length === 0 || mode.random() >= mode.rate) return undefined;
  return mode.faults[Math.floor(mode.random() * mode.faults.length)];
}
