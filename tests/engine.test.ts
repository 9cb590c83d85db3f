import * as A from "@automerge/automerge";
import { afterEach, describe, expect, it } from "vitest";
import { join } from "node:path";
import { DocStore } from "../src/crdt/doc-store.js";
import { newDocUrl } from "../src/crdt/ids.js";
import { openSqliteStorage } from "../src/crdt/sqlite-storage-adapter.js";
import { seedDemoCourse } from "../src/demo/demo-course.js";
import { Engine } from "../src/engine.js";
import { dumpTables } from "../src/projection/table-dump.js";
import { syncStores } from "../src/testing/sync-stores.js";
import { makeTempDir } from "../src/testing/temp-dir.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function openEngine(dir?: string) {
  const temp = dir ? undefined : makeTempDir("ordo-engine-");
  const dataDir = dir ?? temp!.dir;
  const engine = await Engine.open({ dataDir, create: true });
  let closed = false;
  cleanups.push(async () => {
    if (!closed) await engine.close();
    temp?.remove();
  });
  return {
    engine,
    dataDir,
    close: async () => {
      closed = true;
      await engine.close();
    },
  };
}

describe("the engine keeps SQL in step with the documents", () => {
  it("projects local changes, deletions and remote changes", async () => {
    const { engine } = await openEngine();
    const course = await engine.docs.create("course", { name: "Biology 101" });
    const lab = await engine.docs.create("assignment", { course: course.url, title: "Lab 1", published: true });
    await engine.whenProjected();
    expect(await engine.db.selectFrom("assignments").select("title").execute()).toEqual([{ title: "Lab 1" }]);

    await engine.docs.change<"assignment">(lab.url, (d) => (d.title = "Lab 1: Cells"));
    await engine.whenProjected();
    expect(await engine.db.selectFrom("assignments").select("title").execute()).toEqual([{ title: "Lab 1: Cells" }]);

    await engine.docs.delete(lab.url);
    await engine.whenProjected();
    expect(await engine.db.selectFrom("assignments").selectAll().execute()).toEqual([]);
    expect(await engine.db.selectFrom("doc_heads").select("status").where("doc_url", "=", lab.url).execute()).toEqual([{ status: "deleted" }]);

    const peer = await openEngine();
    await syncStores(engine.docs, peer.engine.docs);
    await peer.engine.docs.change<"course">(course.url, (d) => (d.name = "Biology 101 (Fall)"));
    await syncStores(engine.docs, peer.engine.docs);
    await engine.whenProjected();
    expect(await engine.db.selectFrom("courses").select("name").execute()).toEqual([{ name: "Biology 101 (Fall)" }]);
  });

  it("never projects a quarantined document", async () => {
    const { engine } = await openEngine();
    const course = await engine.docs.create("course", { name: "Biology 101" });
    const url = newDocUrl();
    const bad = A.from({ kind: new A.ImmutableString("page"), schemaVersion: 1, course: course.url, createdAt: "2026-01-01T00:00:00Z", updatedAt: "2026-01-01T00:00:00Z", title: 42 });
    await engine.docs.receive(url, A.save(bad));
    await engine.whenProjected();
    expect(await engine.db.selectFrom("pages").selectAll().execute()).toEqual([]);
    expect(await engine.db.selectFrom("doc_heads").select("status").where("doc_url", "=", url).execute()).toEqual([{ status: "invalid" }]);
    expect((await engine.status()).quarantined).toBe(1);
  });

  it("resumes after a restart and skips documents it already projected", async () => {
    const first = await openEngine();
    const demo = await seedDemoCourse(first.engine.docs, { students: 5, assignments: 3, topics: 1 });
    await first.engine.whenProjected();
    const before = await dumpTables(first.engine.db);
    await first.close();

    const again = await openEngine(first.dataDir);
    const resumed = await again.engine.catchUp();
    expect(resumed.projected).toBe(0);
    expect(resumed.skipped).toBeGreaterThanOrEqual(demo.documents);
    expect(await dumpTables(again.engine.db)).toBe(before);
  });

  it("opens a cleanly closed node without comparing every document, and catches up after another writer or a crash", async () => {
    const first = await openEngine();
    const course = await first.engine.docs.create("course", { name: "Biology 101" });
    await first.close();

    const clean = await openEngine(first.dataDir);
    expect(clean.engine.startup).toBeNull();
    await clean.close();

    // Another writer changes the store behind the projection's back.
    const storage = openSqliteStorage({ path: join(first.dataDir, "store.sqlite") });
    const store = new DocStore({ storage });
    await store.change<"course">(course.url, (d) => (d.name = "Biology 102"));
    await store.close();
    await storage.close();

    const behind = await openEngine(first.dataDir);
    expect(behind.engine.startup?.projected).toBe(1);
    expect(await behind.engine.db.selectFrom("courses").select("name").execute()).toEqual([{ name: "Biology 102" }]);

    // While a node runs, nothing claims the projection complete: a crash means a full catch-up.
    const afterCrash = await Engine.open({ dataDir: first.dataDir });
    expect(afterCrash.startup).not.toBeNull();
    await afterCrash.close();
  });

  it("gives identical tables on two peers that got the same changes in different orders, and a rebuild equals them", async () => {
    const a = (await openEngine()).engine;
    const b = (await openEngine()).engine;
    const course = await a.docs.create("course", { name: "Biology 101" });
    const page = await a.docs.create("page", { course: course.url, title: "Notes", body: "Cells." });
    await syncStores(a.docs, b.docs);
    // Concurrent edits, then each peer receives the other's afterwards: different orders of arrival.
    await a.docs.change<"page">(page.url, (d) => (d.title = "Notes A"));
    await b.docs.change<"page">(page.url, (d) => (d.title = "Notes B"));
    await a.docs.change<"page">(page.url, (d) => (d.body = "Cells and tissues."));
    await b.docs.create("assignment", { course: course.url, title: "Lab 1", published: true });
    await syncStores(b.docs, a.docs);
    await a.whenProjected();
    await b.whenProjected();

    const dumpA = await dumpTables(a.db);
    expect(dumpA).toBe(await dumpTables(b.db));
    expect(dumpA).toContain("Notes");
    // The losing title is not lost: it is recorded as a conflict.
    const conflicts = await a.db.selectFrom("conflicts").selectAll().where("doc_url", "=", page.url).execute();
    expect(conflicts.map((c) => c.field)).toContain("title");

    await a.rebuild();
    expect(await dumpTables(a.db)).toBe(dumpA);
  });
});
