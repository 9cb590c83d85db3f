import { describe, expect, it } from "vitest";
import { expiryTimerDelay } from "../../src/net/ws-link.js";
import { createRandom } from "../../src/util/random.js";

describe("a link's token-expiry timer", () => {
  it("uses a few thousand distinct delays for any number of links, so Node's per-delay timer lists stay bounded", () => {
    const random = createRandom(11);
    const delays = new Set<number>();
    // A day of links, each with a token of up to 24 hours left, to the millisecond.
    for (let n = 0; n < 200_000; n++) delays.add(expiryTimerDelay(Math.floor(random() * 24 * 3_600_000)));
    expect(delays.size).toBeLessThanOrEqual(24 * 60 + 600);
    expect(delays.size).toBeGreaterThan(1_000);
  });

  it("never fires after the expiry it waits for, except by under 100 ms at the last step", () => {
    const random = createRandom(12);
    for (let n = 0; n < 10_000; n++) {
      const remaining = Math.floor(random() * 3 * 3_600_000);
      const delay = expiryTimerDelay(remaining);
      if (remaining >= 60_000) {
        // Early by under a minute: the timer re-arms for the rest.
        expect(delay).toBeLessThanOrEqual(remaining);
        expect(remaining - delay).toBeLessThan(60_000);
      } else {
        expect(delay).toBeGreaterThanOrEqual(remaining);
        expect(delay - remaining).toBeLessThan(100);
      }
    }
    expect(expiryTimerDelay(-5)).toBe(0);
    expect(expiryTimerDelay(Number.MAX_SAFE_INTEGER)).toBeLessThanOrEqual(2_147_483_647);
  });
});
