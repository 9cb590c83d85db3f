import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { SyncNode } from "../../src/node/sync-node.js";
import { FaultyStorage } from "../../src/testing/faulty-storage.js";
import { makeTempDir } from "../../src/testing/temp-dir.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** `GET /healthz` of a node: its status code and body. */
async function healthOf(node: SyncNode): Promise<{ code: number; body: { status: string } }> {
  const response = await fetch(`${node.url!.replace(/^ws/, "http")}/healthz`);
  return { code: response.status, body: (await response.json()) as { status: string } };
}

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
    const health = () => healthOf(node);
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

  it("says degraded while the projection fails, and ok once a retry projects", async () => {
    const temp = makeTempDir();
    cleanups.push(() => temp.remove());
    const node = await SyncNode.start({ dataDir: temp.dir, create: true, listen: { port: 0, host: "127.0.0.1" }, discovery: false, connectors: false });
    cleanups.push(() => node.close());
    const course = await node.engine.docs.create("course", { name: "Biology 101" });
    await node.engine.whenProjected();
    expect(await healthOf(node)).toMatchObject({ code: 200, body: { status: "ok" } });

    // Another process holds the projection's write lock past the busy timeout: the run projecting the change fails.
    const locker = new Database(join(temp.dir, "projection.sqlite"));
    cleanups.push(() => void locker.close());
    locker.exec("BEGIN EXCLUSIVE");
    await node.engine.docs.change<"course">(course.url, (d) => (d.name = "Chemistry"));
    await expect.poll(async () => (await node.engine.status()).projectionFailures, { timeout: 15_000, interval: 200 }).toBeGreaterThan(0);
    expect(await healthOf(node)).toMatchObject({ code: 200, body: { status: "degraded" } });

    // The lock goes: the retry projects the change, and health is ok again though a run once failed.
    locker.exec("COMMIT");
    await expect.poll(async () => (await healthOf(node)).body.status, { timeout: 15_000, interval: 200 }).toBe("ok");
    const status = await node.engine.status();
    expect(status).toMatchObject({ projectionFailing: false, projectionPending: 0 });
    expect(status.projectionFailures).toBeGreaterThan(0);
    const row = await node.engine.db.selectFrom("courses").select("name").where("doc_url", "=", course.url).executeTakeFirst();
    expect(row?.name).toBe("Chemistry");
  }, 40_000);
});
