import * as A from "@automerge/automerge";
import { describe, expect, it } from "vitest";
import { openTempStore } from "../../src/testing/temp-store.js";

describe("what a sync exchange tells about a peer", () => {
  it("knows when the peer has changes the store lacks, until they arrive", async () => {
    const { store, close } = openTempStore();
    try {
      const course = await store.create("course", { name: "Biology", courseCode: "BIO" });
      const theirs = A.change(A.load<Record<string, unknown>>((await store.export(course.url))!), (doc) => {
        doc.name = new A.ImmutableString("Biology 2");
      });
      let state = A.initSyncState();
      // The peer announces its heads first; its changes follow in a later message.
      ({ state } = await store.receiveSyncMessage(course.url, state, A.encodeSyncMessage({ heads: A.getHeads(theirs), need: [], have: [], changes: [] })));
      let generated = await store.generateSyncMessage(course.url, state);
      expect(generated.behind).toBe(true);
      ({ state } = await store.receiveSyncMessage(course.url, generated.state, A.encodeSyncMessage({ heads: A.getHeads(theirs), need: [], have: [], changes: [A.getLastLocalChange(theirs)!] })));
      generated = await store.generateSyncMessage(course.url, state);
      expect(generated.behind).toBe(false);
      expect((await store.find<"course">(course.url))?.name).toBe("Biology 2");
    } finally {
      await close();
    }
  });
});
