import * as A from "@automerge/automerge";
import { describe, expect, it } from "vitest";
import { catalogUrl, initialCatalog } from "../../src/crdt/catalog.js";
import { newDocUrl } from "../../src/crdt/ids.js";
import { openTempStore } from "../../src/testing/temp-store.js";

describe("a catalog partition", () => {
  it("is valid only at the URL its course and audience derive, so no one can squat another student's", async () => {
    const { store, close } = openTempStore();
    try {
      const course = newDocUrl();
      const [a, c] = [newDocUrl(), newDocUrl()];
      // Content naming A's partition, placed where C's partition lives.
      const squat = A.from(initialCatalog(course, `student:${a}`));
      const squatted = catalogUrl(course, `student:${c}`);
      await store.receive(squatted, A.save(squat));
      expect(await store.record(squatted)).toMatchObject({ status: "invalid", audience: "staff" });
      // The same content at its own URL is a partition like any other.
      const own = catalogUrl(course, `student:${a}`);
      await store.receive(own, A.save(A.from(initialCatalog(course, `student:${a}`))));
      expect(await store.record(own)).toMatchObject({ status: "ok", audience: `student:${a}` });
    } finally {
      await close();
    }
  });
});
