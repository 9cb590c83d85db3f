import { afterEach, describe, expect, it } from "vitest";
import { SyncNode } from "../../src/node/sync-node.js";
import { FaultyStorage } from "../../src/testing/faulty-storage.js";
import { makeTempDir } from "../../src/testing/temp-dir.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe("/healthz while storage refuses writes", () => {
  it("says degraded while commits fail, and ok once they succeed again", async () => {
    const temp = makeTempDir();
    cleanups.push(() => temp.remove());
    let faulty: FaultyStorage | undefined;
    const node = await SyncNode.start({
      dataDir: temp.dir,
      create: true,
      listen: { port: 0, host: "127.0.0.1" },
      discovery: false,
      connectors: false,
      engine: { wrapStorage: (storage) => (faulty = new FaultyStorage(storage, { rate: 0, seed: 3 })) },
    });
    cleanups.push(() => node.close());
    const health = async () => {
      const response = await fetch(`${node.url!.replace(/^ws/, "http")}/healthz`);
      return { code: response.status, body: (await response.json()) as { status: string } };
    };
    const course = await node.engine.docs.create("course", { name: "Biology 101" });
    expect(await health()).toMatchObject({ code: 200, body: { status: "ok" } });

    faulty!.setRate(1);
    await expect(node.engine.docs.change<"course">(course.url, (d) => (d.name = "Chemistry"))).rejects.toMatchObject({ code: "ORDO_STORAGE" });
    // Answered (200, not a failed status), and degraded, for as long as the disk refuses.
    expect(await health()).toMatchObject({ code: 200, body: { status: "degraded" } });
    expect(await health()).toMatchObject({ code: 200, body: { status: "degraded" } });

    faulty!.setRate(0);
    expect(await health()).toMatchObject({ code: 200, body: { status: "ok" } });
    expect((await node.engine.docs.find<"course">(course.url))?.name).toBe("Chemistry");
  });
});
