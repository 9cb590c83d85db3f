/** The time source; injected so tests can control it. */
export type Clock = () => Date;

export const systemClock: Clock = () => new Date();

/** An ISO-8601 UTC timestamp, the one time format documents store. */
export function isoNow(clock: Clock): string {
  return clock().toISOString();
}
