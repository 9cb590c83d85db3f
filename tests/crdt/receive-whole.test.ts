import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { DocStore } from "../../src/crdt/doc-store.js";
import type { DocUrl } from "../../src/crdt/ids.js";
import { openSqliteStorage } from "../../src/crdt/sqlite-storage-adapter.js";
import { makeTempDir } from "../../src/testing/temp-dir.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function openStore(options: { workerBatchMin?: number } = {}) {
  const temp = makeTempDir();
  const storage = openSqliteStorage({ path: join(temp.dir, "store.sqlite") });
  const store = new DocStore({ storage, ...options });
  cleanups.push(async () => {
    await store.close();
    await storage.close();
    temp.remove();
  });
  return store;
}

/** A course with pages, and every document as a peer would send it whole. */
async function courseToSend(pages: number) {
  const source = openStore();
  const course = await source.create("course", { name: "Biology 101", courseCode: "BIO-101" });
  for (let i = 0; i < pages; i++) await source.create("page", { course: course.url, title: `Page ${i}`, body: `Body ${i}` });
  const records = await source.records();
  const items = await Promise.all(records.map(async (r) => ({ url: `automerge:${r.id}` as DocUrl, data: (await source.exportStored(`automerge:${r.id}` as DocUrl))! })));
  return { source, course, items, records };
}

/** What a record says, without when it was written. */
const described = (records: Awaited<ReturnType<DocStore["records"]>>) => records.map(({ updatedAt: _, ...rest }) => rest);

describe("receiving documents whole in a batch", () => {
  it("stores, in a worker's hands, the same records and heads the sender holds, and keeps none live", async () => {
    const { items, records } = await courseToSend(30);
    const store = openStore({ workerBatchMin: 1 });
    const results = await store.receiveWhole(store.prepareWhole(items));
    expect(results.every((r) => r.status === "applied")).toBe(true);
    expect(store.describedInWorker).toBe(items.length);
    await store.flush();
    expect(described(await store.records())).toEqual(described(records));
    // Live: only the course's catalog partition, which the store keeps up to date.
    expect(store.liveCount).toBeLessThanOrEqual(1);
    // The same batch again changes nothing.
    expect((await store.receiveWhole(store.prepareWhole(items))).every((r) => r.status === "unchanged")).toBe(true);
  });

  it("describes a small batch on this thread, with the same outcome", async () => {
    const { items, records } = await courseToSend(5);
    const store = openStore();
    await store.receiveWhole(store.prepareWhole(items));
    expect(store.describedInWorker).toBe(0);
    await store.flush();
    expect(described(await store.records())).toEqual(described(records));
  });

  it("refuses what the admission check refuses and stores nothing of it", async () => {
    const { items, course } = await courseToSend(10);
    const store = openStore({ workerBatchMin: 1 });
    const results = await store.receiveWhole(store.prepareWhole(items), (next) => next.kind !== "page");
    expect(results.filter((r) => r.status === "refused")).toHaveLength(10);
    await store.flush();
    expect(await store.list(course.url, "page")).toEqual([]);
    expect((await store.records({ kind: "course" })).map((r) => r.id)).toEqual([course.url.slice("automerge:".length)]);
  });

  it("rejects bytes Automerge cannot read, as receive does", async () => {
    const { items } = await courseToSend(3);
    const store = openStore({ workerBatchMin: 1 });
    const garbage = { url: items[1]!.url, data: new Uint8Array([0x85, 0x6f, 0x4a, 0x83, 1, 2, 3]) };
    await expect(store.receiveWhole(store.prepareWhole([items[0]!, garbage]))).rejects.toMatchObject({ code: "ORDO_BAD_CHANGES" });
  });
});
