import { describe, expect, it } from "vitest";
import { SUITES } from "../../reliability/suites/index.js";

/** Each reliability suite at its small size: `npm run reliability` runs them larger. */
describe("reliability suites, small", () => {
  for (const suite of SUITES) {
    it(`${suite.name}: ${suite.sizes.test} ${suite.unit} pass`, async () => {
      const result = await suite.run({ count: suite.sizes.test, first: 1, log: () => undefined });
      expect(result.failures).toEqual([]);
      expect(result.passed).toBe(suite.sizes.test);
    }, 240_000);
  }
});
