import * as A from "@automerge/automerge";
import Database from "better-sqlite3";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { catalogUrl, readCatalogEntries } from "../../src/crdt/catalog.js";
import type { CompactionTiming } from "../../src/crdt/compaction-schedule.js";
import { DocStore, type DocChange } from "../../src/crdt/doc-store.js";
import { documentIdOf, externalDocUrl, newDocUrl } from "../../src/crdt/ids.js";
import { studentAudience } from "../../src/crdt/schema/audience.js";
import { openSqliteStorage } from "../../src/crdt/sqlite-storage-adapter.js";
import { syncStores } from "../../src/testing/sync-stores.js";
import { makeTempDir } from "../../src/testing/temp-dir.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A store over a real SQLite file in a fresh directory. */
function openStore(options: { cacheSize?: number; cacheIdleMs?: number; dir?: string; compaction?: CompactionTiming } = {}) {
  const temp = options.dir ? undefined : makeTempDir();
  const dir = options.dir ?? temp!.dir;
  const storage = openSqliteStorage({ path: join(dir, "store.sqlite") });
  const store = new DocStore({ storage, cacheSize: options.cacheSize, cacheIdleMs: options.cacheIdleMs, compaction: options.compaction });
  cleanups.push(async () => {
    await store.close();
    await storage.close();
    temp?.remove();
  });
  return { store, storage, dir };
}

async function seedCourse(store: DocStore) {
  const course = await store.create("course", { name: "Biology 101", courseCode: "BIO-101" });
  return course;
}

describe("typed document API", () => {
  it("creates, changes, finds, lists and deletes entities", async () => {
    const { store } = openStore();
    const course = await seedCourse(store);
    const lab = await store.create("assignment", { course: course.url, title: "Lab 1", pointsPossible: 10, published: true });
    expect(lab.kind).toBe("assignment");
    expect(lab.course).toBe(course.url);

    const changed = await store.change<"assignment">(lab.url, (draft) => {
      draft.title = "Lab 1: cells";
      draft.description = "Draw a cell.";
    });
    expect(changed.title).toBe("Lab 1: cells");
    expect((await store.find<"assignment">(lab.url))?.description).toBe("Draw a cell.");
    expect((await store.list(course.url, "assignment")).map((a) => a.title)).toEqual(["Lab 1: cells"]);

    await store.delete(lab.url);
    expect(await store.find(lab.url)).toBeUndefined();
    expect((await store.find(lab.url, { includeDeleted: true }))?.tombstone).not.toBeNull();
    expect(await store.urls(course.url, "assignment")).toEqual([]);
  });

  it("refuses a change that breaks the schema and keeps the document as it was", async () => {
    const { store } = openStore();
    const course = await seedCourse(store);
    const lab = await store.create("assignment", { course: course.url, title: "Lab 1" });
    await expect(
      store.change<"assignment">(lab.url, (draft) => {
        (draft as unknown as Record<string, unknown>).pointsPossible = "ten";
      }),
    ).rejects.toMatchObject({ code: "ORDO_SCHEMA" });
    await expect(store.change(lab.url, (draft) => ((draft as unknown as Record<string, unknown>).nope = 1))).rejects.toMatchObject({ code: "ORDO_SCHEMA" });
    expect((await store.find<"assignment">(lab.url))?.pointsPossible).toBeNull();
    await expect(store.create("submission", { course: course.url })).rejects.toMatchObject({ code: "ORDO_SCHEMA" });
  });

  it("emits doc-changed after each committed local change", async () => {
    const { store, storage } = openStore();
    const events: DocChange[] = [];
    store.on("doc-changed", (event) => events.push(event));
    const course = await seedCourse(store);
    const page = await store.create("page", { course: course.url, slug: "welcome", title: "Welcome" });
    const pageEvents = events.filter((e) => e.url === page.url);
    expect(pageEvents).toHaveLength(1);
    expect(pageEvents[0]).toMatchObject({ kind: "page", origin: "local", deleted: false });
    expect((await storage.record(documentIdOf(page.url)))?.heads).toBe(pageEvents[0]?.heads);
  });

  it("keeps everything after the store is reopened", async () => {
    const first = openStore();
    const course = await seedCourse(first.store);
    const page = await first.store.create("page", { course: course.url, title: "Syllabus", body: "Week 1" });
    for (let week = 2; week <= 40; week++) {
      await first.store.change<"page">(page.url, (draft) => (draft.body = `${draft.body}\nWeek ${week}`));
    }
    await first.store.close();
    await first.storage.close();

    const storage = openSqliteStorage({ path: join(first.dir, "store.sqlite") });
    const reopened = new DocStore({ storage });
    cleanups.push(async () => {
      await reopened.close();
      await storage.close();
    });
    const body = (await reopened.find<"page">(page.url))?.body ?? "";
    expect(body.split("\n")).toHaveLength(40);
    // Compacted (when the store closed, if not in a quiet moment before): far fewer chunks than changes.
    expect((await storage.loadRange([documentIdOf(page.url)])).length).toBeLessThan(20);
  });
});

describe("merging between peers", () => {
  it("hands a peer a document as stored, snapshot and later changes, which it loads at the same heads and stores as it came", async () => {
    const a = openStore({ cacheSize: 1 }).store;
    const b = openStore().store;
    const course = await seedCourse(a);
    const page = await a.create("page", { course: course.url, title: "Notes", body: "One." });
    for (const body of ["One. Two.", "One. Two. Three."]) await a.change<"page">(page.url, (d) => (d.body = body));
    await a.create("page", { course: course.url, title: "Evicts the first from the cache", body: "" });
    const stored = (await a.exportStored(page.url))!;
    const head = (await a.record(page.url))!.heads;
    expect(await b.receive(page.url, stored)).toEqual({ status: "applied", heads: head });
    expect((await b.find<"page">(page.url))?.body).toBe("One. Two. Three.");
    await b.flush();
    expect(Buffer.from((await b.exportStored(page.url))!).equals(Buffer.from(stored))).toBe(true);
  });

  it("leaves a live document as it was when a peer's changes are refused, and still applies what is admitted next", async () => {
    const a = openStore().store;
    const b = openStore().store;
    const course = await seedCourse(a);
    const page = await a.create("page", { course: course.url, title: "Notes", body: "One." });
    await b.receive(page.url, (await a.exportStored(page.url))!);
    // B changes it too, unsent: a refusal must not lose what is only in B's queued writes.
    await b.change<"page">(page.url, (d) => (d.title = "Notes (B)"));
    const before = (await b.record(page.url))!.heads;
    const sinceShared = (await a.record(page.url))!.heads.split(",");
    await a.change<"page">(page.url, (d) => (d.body = "Forged."));
    const forged = (await a.changesSince(page.url, sinceShared))!;
    const judged: string[] = [];
    const refusal = await b.receive(page.url, forged, (next) => (judged.push(next.heads), false));
    expect(refusal.status).toBe("refused");
    expect(judged).toHaveLength(1);
    expect(judged[0]).not.toBe(before);
    expect((await b.record(page.url))!.heads).toBe(before);
    expect(await b.find<"page">(page.url)).toMatchObject({ title: "Notes (B)", body: "One." });
    // Admitted, the same bytes apply on top of B's own change.
    expect((await b.receive(page.url, forged, () => true)).status).toBe("applied");
    expect(await b.find<"page">(page.url)).toMatchObject({ title: "Notes (B)", body: "Forged." });
    await b.flush();
    expect((await b.record(page.url))!.heads).not.toBe(before);
  });

  it("keeps no document live for receiving it whole, so a course arriving costs no memory per document", async () => {
    const a = openStore().store;
    const b = openStore({ cacheSize: 1_000 }).store;
    const course = await seedCourse(a);
    const pages = await Promise.all(Array.from({ length: 40 }, (_, i) => a.create("page", { course: course.url, title: `Page ${i}`, body: "" })));
    for (const page of [course, ...pages]) expect((await b.receive(page.url, (await a.exportStored(page.url))!)).status).toBe("applied");
    // Live: only the course's catalog partition, which this store keeps up to date.
    expect(b.liveCount).toBe(1);
    // Still there, loaded on demand.
    expect(new TextDecoder().decode(await b.changesSince(pages[7]!.url))).toContain("Page 7");
    expect(b.liveCount).toBe(2);
  });


  it("merges concurrent edits of one text character by character", async () => {
    const a = openStore().store;
    const b = openStore().store;
    const course = await seedCourse(a);
    const page = await a.create("page", { course: course.url, title: "Notes", body: "The cell is the unit of life." });
    await syncStores(a, b);

    await a.change<"page">(page.url, (d) => (d.body = "The cell is the basic unit of life."));
    await b.change<"page">(page.url, (d) => (d.body = "The cell is the unit of all life."));
    await syncStores(a, b);

    const expected = "The cell is the basic unit of all life.";
    expect((await a.find<"page">(page.url))?.body).toBe(expected);
    expect((await b.find<"page">(page.url))?.body).toBe(expected);
  });

  it("ends with one document when two peers import the same external entity offline, losing no field", async () => {
    const a = openStore().store;
    const b = openStore().store;
    const course = await seedCourse(a);
    await syncStores(a, b);
    const identity = { system: "canvas:school.example", id: "31001" };

    const fromA = await a.create("assignment", { course: course.url, title: "Lab 1", pointsPossible: 10, external: { canvas: "31001" } }, { identity });
    const fromB = await b.create("assignment", { course: course.url, title: "Lab 1", dueAt: "2026-09-01T23:59:00Z", description: "Bring goggles." }, { identity });
    expect(fromA.url).toBe(fromB.url);
    expect(fromA.url).toBe(externalDocUrl("assignment", identity));

    await syncStores(a, b);
    for (const store of [a, b]) {
      expect(await store.urls(course.url, "assignment")).toEqual([fromA.url]);
      const merged = await store.find<"assignment">(fromA.url);
      expect(merged).toMatchObject({ title: "Lab 1", pointsPossible: 10, dueAt: "2026-09-01T23:59:00Z", description: "Bring goggles." });
      expect(merged?.external.canvas).toBe("31001");
    }
    // Both stores hold the same history.
    expect((await a.snapshot(fromA.url))?.heads).toBe((await b.snapshot(fromA.url))?.heads);
  });

  it("never brings a deleted entity back when an old peer reconnects", async () => {
    const a = openStore().store;
    const b = openStore().store;
    const course = await seedCourse(a);
    const post = await a.create("discussion_topic", { course: course.url, title: "Field trip", message: "Who is coming?" });
    await syncStores(a, b);

    await a.delete(post.url);
    // b, offline, keeps editing the old copy.
    await b.change<"discussion_topic">(post.url, (d) => (d.message = "Who is coming on Friday?"));
    await syncStores(a, b);

    for (const store of [a, b]) {
      expect(await store.find(post.url)).toBeUndefined();
      expect(await store.urls(course.url, "discussion_topic")).toEqual([]);
    }
    const catalog = await a.export(catalogUrl(course.url, "course"));
    const entries = readCatalogEntries(A.load(catalog!));
    expect(entries.find((e) => e.id === documentIdOf(post.url))?.deleted).toBe(true);
  });

  it("quarantines a peer's document that breaks its schema, keeps it, and never crashes", async () => {
    const { store } = openStore();
    const course = await seedCourse(store);
    const invalid: string[] = [];
    store.on("doc-invalid", ({ url }) => invalid.push(url));

    const url = newDocUrl();
    const bad = A.from({ kind: new A.ImmutableString("assignment"), schemaVersion: 1, course: course.url, createdAt: "2026-01-01T00:00:00Z", updatedAt: "2026-01-01T00:00:00Z", pointsPossible: "lots" });
    const result = await store.receive(url, A.save(bad));

    expect(result.status).toBe("quarantined");
    expect(invalid).toEqual([url]);
    expect(await store.find(url)).toBeUndefined();
    expect(await store.snapshot(url)).toBeUndefined();
    const [record] = await store.records({ status: "invalid" });
    expect(record?.problem).toMatch(/pointsPossible/);
    // Nothing is lost: the bytes are still there for a repair.
    expect(A.getHeads(A.load((await store.export(url))!))).toEqual(A.getHeads(bad));

    await expect(store.receive(newDocUrl(), new Uint8Array([0x85, 0x6f, 0x4a, 0x83, 1, 2, 3]))).rejects.toMatchObject({ code: "ORDO_BAD_CHANGES" });
    expect((await store.find<"course">(course.url))?.name).toBe("Biology 101");
  });
});

describe("the course catalog", () => {
  it("keeps a student's work out of the partitions other students read", async () => {
    const { store } = openStore();
    const course = await seedCourse(store);
    const ada = await store.create("user", { name: "Ada" });
    const ben = await store.create("user", { name: "Ben" });
    for (const user of [ada, ben]) await store.create("enrollment", { course: course.url, user: user.url, role: "student" });
    const lab = await store.create("assignment", { course: course.url, title: "Lab 1", published: true });
    const adaWork = await store.create("submission", { course: course.url, assignment: lab.url, student: ada.url, body: "Ada's answer" });
    const adaGrade = await store.create("grade", { course: course.url, assignment: lab.url, submission: adaWork.url, student: ada.url, score: 9 });
    const benWork = await store.create("submission", { course: course.url, assignment: lab.url, student: ben.url });

    const ids = async (audience: Parameters<typeof catalogUrl>[1]) =>
      readCatalogEntries(A.load((await store.export(catalogUrl(course.url, audience)))!)).map((e) => e.id);
    const courseWide = await ids("course");
    expect(courseWide).toContain(documentIdOf(lab.url));
    expect(courseWide).toContain(documentIdOf(ada.url));
    for (const privateDoc of [adaWork, adaGrade, benWork]) expect(courseWide).not.toContain(documentIdOf(privateDoc.url));
    expect((await ids(studentAudience(ada.url))).sort()).toEqual([documentIdOf(adaWork.url), documentIdOf(adaGrade.url)].sort());
    expect(await ids(studentAudience(ben.url))).toEqual([documentIdOf(benWork.url)]);
    // A teacher sees everything through all partitions.
    expect(await store.urls(course.url, "submission")).toHaveLength(2);
  });

  it("moves content between the staff and course partitions when it is published", async () => {
    const { store } = openStore();
    const course = await seedCourse(store);
    const draft = await store.create("page", { course: course.url, title: "Exam answers", published: false });
    const entries = async (audience: "course" | "staff") => {
      const data = await store.export(catalogUrl(course.url, audience));
      return data ? readCatalogEntries(A.load(data)).map((e) => e.id) : [];
    };
    expect(await entries("course")).not.toContain(documentIdOf(draft.url));
    expect(await entries("staff")).toContain(documentIdOf(draft.url));

    await store.change<"page">(draft.url, (d) => (d.published = true));
    expect(await entries("course")).toContain(documentIdOf(draft.url));
    expect(await entries("staff")).not.toContain(documentIdOf(draft.url));
  });
});

describe("memory and durability", () => {
  it("keeps no more documents in memory than its cap, and still finds every one", async () => {
    const { store } = openStore({ cacheSize: 10 });
    const course = await seedCourse(store);
    const pages = [];
    for (let i = 0; i < 60; i++) pages.push(await store.create("page", { course: course.url, title: `Page ${i}` }));
    expect(store.liveCount).toBeLessThanOrEqual(10);
    for (const [i, page] of pages.entries()) expect((await store.find<"page">(page.url))?.title).toBe(`Page ${i}`);
    expect(store.liveCount).toBeLessThanOrEqual(10);
    expect(await store.urls(course.url, "page")).toHaveLength(60);
  });

  it("loads each document once when more callers than its cap read at the same time, then holds no more than its cap", async () => {
    const { store, storage } = openStore({ cacheSize: 2 });
    const course = await seedCourse(store);
    const pages = [];
    for (let i = 0; i < 100; i++) pages.push(await store.create("page", { course: course.url, title: `Page ${i}`, body: "" }));
    await store.flush();
    let loads = 0;
    const loadRange = storage.loadRange.bind(storage);
    storage.loadRange = async (prefix) => {
      loads++;
      return loadRange(prefix);
    };
    const read = await Promise.all(pages.map((page) => store.changesSince(page.url)));
    expect(read.every((changes) => changes !== undefined && changes.byteLength > 0)).toBe(true);
    // Unpinned, each caller's load evicted another's before it was used: thousands of loads.
    expect(loads).toBeLessThanOrEqual(pages.length + 5);
    expect(store.liveCount).toBeLessThanOrEqual(2);
  });

  it("frees the documents nobody used for its idle time, though it has room for them, and reloads them when asked", async () => {
    const { store } = openStore({ cacheIdleMs: 300 });
    const course = await seedCourse(store);
    const pages = await Promise.all([0, 1, 2, 3].map((i) => store.create("page", { course: course.url, title: `P${i}`, body: "" })));
    await store.flush();
    // The course, the pages and the course's catalog.
    expect(store.liveCount).toBeGreaterThanOrEqual(6);
    // One page stays in use (and the catalog its changes touch); the rest go idle.
    const busy = pages[0]!;
    for (let n = 0; n < 8; n++) {
      await store.change<"page">(busy.url, (d) => (d.body = `${d.body}${n};`));
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(store.liveCount).toBeLessThanOrEqual(2);
    await expect.poll(() => store.liveCount, { timeout: 2_000, interval: 50 }).toBe(0);
    // Freed, not lost: a change loads the document again.
    await store.change<"page">(pages[3]!.url, (d) => (d.title = "Back"));
    expect((await store.find<"page">(pages[3]!.url))?.title).toBe("Back");
    expect((await store.find<"page">(busy.url))?.body).toBe("0;1;2;3;4;5;6;7;");
  });

  it("applies every one of many concurrent changes to the same documents, even while evicting", async () => {
    const { store } = openStore({ cacheSize: 2 });
    const course = await seedCourse(store);
    const pages = await Promise.all([0, 1, 2].map((i) => store.create("page", { course: course.url, title: `P${i}`, body: "" })));
    await Promise.all(
      Array.from({ length: 30 }, (_, n) => store.change<"page">(pages[n % 3]!.url, (d) => (d.body = `${d.body}${n};`))),
    );
    for (const [i, page] of pages.entries()) {
      const expected = Array.from({ length: 10 }, (_, k) => `${k * 3 + i};`).join("");
      expect((await store.find<"page">(page.url))?.body).toBe(expected);
    }
  });

  it("compacts a document's piled-up chunks once the store is quiet, not on the path of the change", async () => {
    const { store, storage } = openStore({ compaction: { quietMs: 500, latestMs: 60_000 } });
    const course = await seedCourse(store);
    const page = await store.create("page", { course: course.url, title: "Notes", body: "" });
    const chunks = async () => (await storage.loadRange([documentIdOf(page.url)])).length;
    // Each change outweighs the small snapshot soon: due after a few, yet none is compacted while they come.
    for (let n = 0; n < 8; n++) await store.change<"page">(page.url, (d) => (d.body = `${d.body}line ${n} of some length\n`));
    await store.flush();
    expect(await chunks()).toBe(9);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await store.flush();
    expect(await chunks()).toBe(1);
    expect((await store.find<"page">(page.url))?.body).toContain("line 7 of some length");
  });

  it("compacts by its deadline even when the store is never quiet", async () => {
    const { store, storage } = openStore({ compaction: { quietMs: 10_000, latestMs: 300 } });
    const course = await seedCourse(store);
    const page = await store.create("page", { course: course.url, title: "Notes", body: "" });
    const chunks = async () => (await storage.loadRange([documentIdOf(page.url)])).length;
    const until = performance.now() + 700;
    for (let n = 0; performance.now() < until; n++) {
      await store.change<"page">(page.url, (d) => (d.body = `${d.body}line ${n} of some length\n`));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await store.flush();
    // Compacted at least once (by the deadline), though a write came every 20 ms.
    expect(await chunks()).toBeLessThan(10);
  });

  it("resolves a durable write only after the storage has synced", async () => {
    const { store, storage } = openStore();
    let synced = 0;
    const sync = storage.sync.bind(storage);
    storage.sync = async () => {
      await sync();
      synced++;
    };
    const course = await store.create("course", { name: "Chemistry" }, { durable: true });
    expect(synced).toBe(1);
    await store.change<"course">(course.url, (d) => (d.name = "Chemistry I"));
    expect(synced).toBe(1);
    await store.durable();
    expect(synced).toBe(2);
  });
});

describe("damaged chunks", () => {
  it("loads every change a damaged chunk does not hold, never compacts it away, and heals from a peer", async () => {
    const first = openStore();
    const course = await seedCourse(first.store);
    // A long preamble makes the snapshot outweigh a few small incremental chunks, so none is compacted yet.
    const preamble = Array.from({ length: 400 }, (_, i) => ((i * 7919) % 10007).toString(36)).join(" ") + " ";
    const page = await first.store.create("page", { course: course.url, title: "Lab notes", body: `${preamble}one` });
    for (const word of ["two", "three", "four"]) await first.store.change<"page">(page.url, (d) => (d.body = `${d.body} ${word}`));
    const healthy = await first.store.export(page.url);
    await first.store.close();
    await first.storage.close();

    // Flip one bit in the second incremental chunk ("three"), as a failing disk would.
    const raw = new Database(join(first.dir, "store.sqlite"));
    const incrementals = (raw.prepare("SELECT seq, key, data FROM chunks ORDER BY seq").all() as Array<{ seq: number; key: string; data: Buffer }>).filter((row) =>
      row.key.startsWith(`${documentIdOf(page.url)}\u001fincremental`),
    );
    expect(incrementals).toHaveLength(3);
    const victim = incrementals[1]!;
    victim.data[victim.data.length - 1]! ^= 0x01;
    raw.prepare("UPDATE chunks SET data = ? WHERE seq = ?").run(victim.data, victim.seq);
    raw.close();

    const damaged: string[] = [];
    const storage = openSqliteStorage({ path: join(first.dir, "store.sqlite"), onDamage: (chunk) => damaged.push(chunk.key.join("/")) });
    const store = new DocStore({ storage });
    cleanups.push(async () => {
      await store.close();
      await storage.close();
    });
    // Loading the document finds the damage; the snapshot and the first incremental are
    // intact, and "four" waits for the damaged "three".
    const loaded = await store.snapshot(page.url, { fromDocument: true });
    expect(loaded?.entity).toMatchObject({ title: "Lab notes", body: `${preamble}one two` });
    expect(damaged).toHaveLength(1);
    // Reads and the projection follow what the document now is.
    await store.flush();
    expect(await store.find<"page">(page.url)).toMatchObject({ body: `${preamble}one two` });

    // Many more changes would normally compact the document; with a chunk missing, nothing is deleted.
    const kept = (await storage.loadRange([documentIdOf(page.url)])).map((c) => c.key.join("/"));
    for (let i = 0; i < 40; i++) await store.change<"page">(page.url, (d) => (d.title = `Lab notes ${i}`));
    const after = (await storage.loadRange([documentIdOf(page.url)])).map((c) => c.key.join("/"));
    for (const key of kept) expect(after).toContain(key);
    expect(await storage.damagedChunks()).toHaveLength(1);

    // A peer that still has the lost change heals the document.
    await store.receive(page.url, healthy!);
    expect((await store.find<"page">(page.url))?.body).toBe(`${preamble}one two three four`);
  });
});

describe("stored views", () => {
  it("give the same snapshot as loading the document, conflicts included", async () => {
    const a = openStore();
    const b = openStore().store;
    const course = await seedCourse(a.store);
    const page = await a.store.create("page", { course: course.url, title: "Notes", body: "Cells." });
    await syncStores(a.store, b);
    await a.store.change<"page">(page.url, (d) => (d.title = "Notes A"));
    await b.change<"page">(page.url, (d) => (d.title = "Notes B"));
    await syncStores(a.store, b);

    for (const url of [course.url, page.url]) {
      const fromView = await a.store.snapshot(url);
      const fromDocument = await a.store.snapshot(url, { fromDocument: true });
      expect(fromView).toEqual(fromDocument);
    }
    expect(Object.keys((await a.store.snapshot(page.url))!.conflicts)).toContain("title");
    // Listings stay lean: only a single record carries its view.
    expect((await a.storage.records({})).every((r) => r.view === undefined)).toBe(true);
    expect((await a.storage.record(documentIdOf(page.url)))?.view).toContain("Notes");
  });
});

describe("storage failures", () => {
  it("keeps a change whose commit failed, and announces it once a retry commits it", async () => {
    const { store, storage } = openStore();
    const course = await seedCourse(store);
    const other = await store.create("page", { course: course.url, title: "Other" });
    const announced: string[] = [];
    store.on("doc-changed", (e) => announced.push(e.url));
    const commit = storage.commit.bind(storage);
    let failures = 1;
    storage.commit = async (batch) => {
      if (failures-- > 0) throw new Error("disk full");
      return commit(batch);
    };

    await expect(store.change<"course">(course.url, (d) => (d.name = "Chemistry"))).rejects.toMatchObject({ code: "ORDO_STORAGE" });
    expect(announced).toEqual([]);
    // The next write carries the queued one with it.
    await store.change<"page">(other.url, (d) => (d.title = "Other 2"));
    expect(announced).toContain(course.url);
    expect((await storage.record(documentIdOf(course.url)))?.view).toContain("Chemistry");
  });

  it("keeps catalog edits when preparing a commit fails, and lists the document after the retry", async () => {
    const { store, storage } = openStore();
    const course = await seedCourse(store);
    const staff = documentIdOf(catalogUrl(course.url, "staff"));
    const record = storage.record.bind(storage);
    let failures = 1;
    storage.record = async (id) => {
      if (id === staff && failures-- > 0) throw new Error("read failed");
      return record(id);
    };
    await expect(store.create("assignment", { course: course.url, title: "Draft lab" })).rejects.toMatchObject({ code: "ORDO_STORAGE" });
    await store.create("page", { course: course.url, title: "Another write" });
    expect(await store.urls(course.url, "assignment")).toHaveLength(1);
  });
});

describe("typed drafts", () => {
  it("writes external ids through draft.external, and refuses undefined", async () => {
    const { store } = openStore();
    const course = await seedCourse(store);
    const lab = await store.create("assignment", { course: course.url, title: "Lab" });
    const changed = await store.change<"assignment">(lab.url, (d) => {
      d.external.canvas = "31001";
    });
    expect(changed.external).toEqual({ canvas: "31001" });
    await expect(store.change<"assignment">(lab.url, (d) => ((d as unknown as Record<string, unknown>).dueAt = undefined))).rejects.toMatchObject({ code: "ORDO_SCHEMA" });
  });
});
