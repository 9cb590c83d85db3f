import * as A from "@automerge/automerge";
import { afterEach, describe, expect, it } from "vitest";
import type { DocStore } from "../../src/crdt/doc-store.js";
import { openTempStore } from "../../src/testing/temp-store.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function openStore(): Promise<DocStore> {
  const { store, close } = openTempStore();
  cleanups.push(close);
  return store;
}

/** A sync message carrying exactly these changes. */
const carrying = (doc: A.Doc<unknown>, changes: Uint8Array[]) => A.encodeSyncMessage({ heads: A.getHeads(doc), need: [], have: [], changes });

describe("changes that arrive before the change they depend on", () => {
  it("are not kept for a document the store did not have, so no one can slip them past the write check", async () => {
    const store = await openStore();
    const origin = await openStore();
    const grade = await origin.create("course", { name: "Grades", courseCode: "G" });
    const base = A.load<Record<string, unknown>>((await origin.export(grade.url))!);
    const forged = A.change(A.clone(base), (doc) => {
      doc.name = new A.ImmutableString("forged");
    });
    // A peer who may not write it sends only its forged change; the store has nothing of the document.
    await store.receiveSyncMessage(grade.url, A.initSyncState(), carrying(forged, [A.getLastLocalChange(forged)!]), () => false);
    // Then a peer who may write it sends the document itself.
    await store.receiveSyncMessage(grade.url, A.initSyncState(), carrying(base, A.getAllChanges(base)));
    expect((await store.find<"course">(grade.url))?.name).toBe("Grades");
  });

  it("land only if whoever queued them may write the result", async () => {
    const store = await openStore();
    const course = await store.create("course", { name: "Biology", courseCode: "BIO" });
    const theirs = A.load<Record<string, unknown>>((await store.export(course.url))!);
    const first = A.change(theirs, (doc) => {
      doc.name = new A.ImmutableString("Biology 1");
    });
    const second = A.change(A.clone(first), (doc) => {
      doc.name = new A.ImmutableString("taken over");
    });
    const refuseTakeover = (next: { view?: string | null }) => !String(next.view).includes("taken over");
    // The later change, from a peer whose admit refuses where it leads, waits for its dependency...
    await store.receiveSyncMessage(course.url, A.initSyncState(), carrying(second, [A.getLastLocalChange(second)!]), refuseTakeover);
    // ...which a peer who may write anything then sends: the result is refused as a whole.
    const receipt = await store.receiveSyncMessage(course.url, A.initSyncState(), carrying(first, [A.getLastLocalChange(first)!]));
    expect(receipt.status).toBe("refused");
    expect((await store.find<"course">(course.url))?.name).toBe("Biology");
    // Sent again without the queue, the honest change lands.
    await store.receiveSyncMessage(course.url, A.initSyncState(), carrying(first, [A.getLastLocalChange(first)!]));
    expect((await store.find<"course">(course.url))?.name).toBe("Biology 1");
  });
});
