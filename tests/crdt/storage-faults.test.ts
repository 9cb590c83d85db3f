import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { DocStore } from "../../src/crdt/doc-store.js";
import { docUrlOf, externalDocUrl } from "../../src/crdt/ids.js";
import { openSqliteStorage } from "../../src/crdt/sqlite-storage-adapter.js";
import { Engine } from "../../src/engine.js";
import { FaultyStorage, storageFaultError } from "../../src/testing/faulty-storage.js";
import { makeTempDir } from "../../src/testing/temp-dir.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A store over a real SQLite file whose writes fail at `rate` until told otherwise. */
function openFaultyStore(rate: number) {
  const temp = makeTempDir();
  cleanups.push(() => temp.remove());
  const storage = new FaultyStorage(openSqliteStorage({ path: join(temp.dir, "store.sqlite") }), { rate, seed: 1 });
  const store = new DocStore({ storage });
  cleanups.push(async () => {
    await store.close().catch(() => undefined);
    await storage.close();
  });
  return { store, storage, dir: temp.dir };
}

/** Opens the file again with plain storage, as the next start of the node would. */
async function reopened(dir: string) {
  const storage = openSqliteStorage({ path: join(dir, "store.sqlite") });
  const store = new DocStore({ storage });
  cleanups.push(async () => {
    await store.close();
    await storage.close();
  });
  return store;
}

describe("FaultyStorage", () => {
  it("fails the share of writes it is told to, with the platform's error codes, and stops when told", async () => {
    const { storage } = openFaultyStore(0.5);
    const outcomes = await Promise.all(Array.from({ length: 200 }, (_, n) => storage.save(["doc", "incremental", String(n)], new Uint8Array([n % 256 || 1])).then(() => "ok", (error: { code: string }) => error.code)));
    const failed = outcomes.filter((outcome) => outcome !== "ok");
    expect(failed.length).toBeGreaterThan(60);
    expect(failed.length).toBeLessThan(140);
    expect(new Set(failed)).toEqual(new Set(["ENOSPC", "EIO", "SQLITE_BUSY"]));
    expect(storage.injectedTotal).toBe(failed.length);
    // A failed write stored nothing.
    expect(await storage.loadRange(["doc"])).toHaveLength(200 - failed.length);
    storage.setRate(0);
    await expect(storage.commit({ save: [{ key: ["doc", "snapshot", "x"], data: new Uint8Array([1]) }] })).resolves.toBeUndefined();
    await expect(storage.sync()).resolves.toBeUndefined();
  });

  it("shapes errors as Node and better-sqlite3 raise them", () => {
    expect(storageFaultError("ENOSPC", "commit")).toMatchObject({ code: "ENOSPC", errno: -28, syscall: "write" });
    expect(storageFaultError("EIO", "commit")).toMatchObject({ code: "EIO", errno: -5 });
    expect(storageFaultError("SQLITE_BUSY", "commit")).toMatchObject({ name: "SqliteError", code: "SQLITE_BUSY" });
  });
});

describe("a store whose storage refuses writes", () => {
  it("says so while commits fail, keeps the changes readable, and stops saying so once a retry commits them", async () => {
    const { store, storage, dir } = openFaultyStore(0);
    const course = await store.create("course", { name: "Biology 101" });
    expect(store.writesFailing).toBe(false);

    storage.setRate(1);
    await expect(store.change<"course">(course.url, (d) => (d.name = "Chemistry"))).rejects.toMatchObject({ code: "ORDO_STORAGE" });
    expect(store.writesFailing).toBe(true);
    expect((await store.find<"course">(course.url))?.name).toBe("Chemistry");

    storage.setRate(0);
    // The retry comes after a pause; a flush asks for it now.
    await store.flush();
    expect(store.writesFailing).toBe(false);
    await store.close();
    expect((await (await reopened(dir)).find<"course">(course.url))?.name).toBe("Chemistry");
  });

  it("lists every document while commits fail: the stored ones as changed in memory, and the ones created meanwhile", async () => {
    const { store, storage } = openFaultyStore(0);
    const course = await store.create("course", { name: "Biology 101" });
    const first = await store.create("assignment", { course: course.url, title: "Lab 1", pointsPossible: 10 });
    storage.setRate(1);
    await expect(store.change<"course">(course.url, (d) => (d.name = "Chemistry"))).rejects.toMatchObject({ code: "ORDO_STORAGE" });
    const identity = { system: "test", id: "lab-2" };
    await expect(store.create("assignment", { course: course.url, title: "Lab 2", pointsPossible: 10 }, { identity })).rejects.toMatchObject({ code: "ORDO_STORAGE" });
    const second = externalDocUrl("assignment", identity);
    expect(store.writesFailing).toBe(true);

    const listed = await store.records();
    // The course's catalog partitions are listed too: they change with what the course holds.
    expect(listed.filter((r) => r.kind !== "catalog").map((r) => docUrlOf(r.id)).sort()).toEqual([course.url, first.url, second].sort());
    expect(listed.map((r) => r.id)).toEqual(listed.map((r) => r.id).sort());
    expect(listed.find((r) => docUrlOf(r.id) === course.url)?.heads).toBe((await store.snapshot(course.url))?.heads);
    expect((await store.records({ kind: "assignment" })).map((r) => docUrlOf(r.id)).sort()).toEqual([first.url, second].sort());
    expect((await store.records({ kind: "course" })).map((r) => docUrlOf(r.id))).toEqual([course.url]);

    storage.setRate(0);
    await store.flush();
    expect((await store.records()).map((r) => r.heads)).toEqual(listed.map((r) => r.heads));
  });

  it("writes the changes a failed commit kept when it closes, instead of leaving them for a retry that never comes", async () => {
    const { store, storage, dir } = openFaultyStore(0);
    const course = await store.create("course", { name: "Biology 101" });
    storage.setRate(1);
    await expect(store.change<"course">(course.url, (d) => (d.name = "Chemistry"))).rejects.toMatchObject({ code: "ORDO_STORAGE" });
    storage.setRate(0);
    // Closed at once, well before the retry's timer.
    await store.close();
    expect((await (await reopened(dir)).find<"course">(course.url))?.name).toBe("Chemistry");
  });

  it("fails a flush, and so a close, while the writes still cannot be committed", async () => {
    const { store, storage } = openFaultyStore(0);
    const course = await store.create("course", { name: "Biology 101" });
    storage.setRate(1);
    await expect(store.change<"course">(course.url, (d) => (d.name = "Chemistry"))).rejects.toMatchObject({ code: "ORDO_STORAGE" });
    await expect(store.flush()).rejects.toMatchObject({ code: "ORDO_STORAGE" });
    expect(store.writesFailing).toBe(true);
  });
});

describe("an engine whose storage refuses writes", () => {
  it("reports writesFailing in its status, without failing the status itself", async () => {
    const temp = makeTempDir();
    cleanups.push(() => temp.remove());
    let faulty: FaultyStorage | undefined;
    const engine = await Engine.open({ dataDir: temp.dir, create: true, wrapStorage: (storage) => (faulty = new FaultyStorage(storage, { rate: 0, seed: 2 })) });
    cleanups.push(() => engine.close());
    const course = await engine.docs.create("course", { name: "Biology 101" });
    const before = await engine.status();
    expect(before.writesFailing).toBe(false);

    faulty!.setRate(1);
    await expect(engine.docs.change<"course">(course.url, (d) => (d.name = "Chemistry"))).rejects.toMatchObject({ code: "ORDO_STORAGE" });
    expect(engine.writesFailing).toBe(true);
    expect(await engine.status()).toMatchObject({ writesFailing: true, documents: before.documents });

    faulty!.setRate(0);
    expect((await engine.status()).writesFailing).toBe(false);
  });
});
