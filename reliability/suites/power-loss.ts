import * as A from "@automerge/automerge";
import type { StorageKey } from "@automerge/automerge-repo/slim";
import { DocStore } from "../../src/crdt/doc-store.js";
import type { DamagedChunk } from "../../src/crdt/doc-storage.js";
import { docUrlOf, type DocUrl, type DocumentId } from "../../src/crdt/ids.js";
import { PowerLossStorage, type CrashModel } from "../../src/testing/power-loss-storage.js";
import type { Logger } from "../../src/util/logger.js";
import { createRandom } from "../../src/util/random.js";
import { check, runCases, type Suite } from "../suite.js";

/**
 * Power loss: a store writes, compacts and acknowledges some changes as durable over a model
 * disk (`PowerLossStorage`), and the power goes at a seeded moment with writes still queued.
 * The unsynced writes are lost, or cut with the chunk at the cut torn or garbled. A new store
 * over what survived must hold every acknowledged change, load every document without
 * throwing, report every damaged chunk (through the storage's checksums or the loader) and
 * build each document from exactly its undamaged chunks, and its compactions must leave every
 * chunk of a document that did not load cleanly where it is.
 */
export const powerLoss: Suite = {
  name: "power-loss",
  summary: "cut the power with writes unsynced (lost, torn, garbled): nothing acknowledged is lost, damage is reported and isolated, compaction keeps what did not load cleanly",
  unit: "iterations",
  sizes: { test: 20, ci: 100, large: 1000 },
  run: (options) => runCases(options, "iteration", async (n) => options.log(`iteration ${n}: ${await powerLossCase(n)}`)),
};

/** A page's titles in the order they were written, and how many of them were acknowledged. */
interface PageWrites {
  titles: string[];
  /** Titles[0 .. acked) were acknowledged as durable: the document holds titles[acked - 1] or a later one. */
  acked: number;
  /** Titles[0 .. committed) were committed (not necessarily synced). */
  committed: number;
  busy: Promise<unknown> | null;
}

/** Runs one case; returns a line saying what happened, or throws naming what failed. */
async function powerLossCase(n: number): Promise<string> {
  const random = createRandom(n);
  const model: CrashModel = random() < 0.5 ? "transactions" : "torn-writes";
  const checksums = random() < 0.5;
  const compaction = { quietMs: 1 + Math.floor(random() * 3), latestMs: 5 + Math.floor(random() * 20) };
  const cacheSize = random() < 0.3 ? 2 : 64;
  const reported: DamagedChunk[] = [];
  const disk = new PowerLossStorage({ checksums, onDamage: (chunk) => reported.push(chunk) });

  const before = await writeUntilCrash(new DocStore({ storage: disk, compaction, cacheSize }), disk, model, random);
  const { storage: survivor, report } = before.crash;
  const pages = before.pages;
  const ackedCount = [...pages.values()].reduce((sum, page) => sum + page.acked, 0);
  const setting = `${model}, ${checksums ? "checksums" : "no checksums"}`;

  // What the new store must make of the surviving chunks, worked out before it reads (and sets aside) any.
  const expected = expectedDocuments(survivor, checksums);
  const warnings = new Map<DocumentId, number>();
  const store = new DocStore({ storage: survivor, compaction, cacheSize, logger: countingUnreadable(warnings) });
  await checkAcknowledged(store, before.course, pages, "after the crash");

  for (const [id, doc] of expected) {
    const url = docUrlOf(id);
    const saved = await store.export(url).catch((error: unknown) => fail(`${url}: loading it throws ${String(error)}`));
    const heads = saved ? headsOf(saved) : "";
    check(heads === doc.heads, `${url} loads at heads ${heads}, its undamaged chunks at ${doc.heads} (${setting})`);
    await store.record(url).catch((error: unknown) => fail(`${url}: its record throws ${String(error)}`));
  }
  checkDamageReported(expected, checksums, reported, warnings, setting);

  // More changes and a close compact what loaded cleanly; what did not stays, every chunk of it.
  const degraded = [...expected].filter(([, doc]) => doc.degraded).map(([id]) => [id, survivor.storedKeys([id])] as const);
  const after = await changeEveryPage(store, pages, random);
  await sleep(compaction.quietMs + 5);
  await store.close();
  for (const [id, keys] of degraded) {
    const kept = new Set(survivor.storedKeys([id]).map(keyText));
    const gone = keys.filter((key) => !kept.has(keyText(key)));
    check(gone.length === 0, `${docUrlOf(id)} did not load cleanly, yet compaction deleted ${gone.length} of its chunks: ${gone.map(keyText).join(", ")} (${setting})`);
  }
  if (checksums) {
    const setAside = (await survivor.damagedChunks()).length;
    check(setAside === reported.length, `${reported.length} chunks reported damaged, ${setAside} still set aside`);
  }

  // The changes made after the crash read back from a third store.
  const third = new DocStore({ storage: survivor, cacheSize });
  try {
    for (const [url, title] of after) {
      const found = await third.find<"page">(url);
      check(found?.title === title, `${url}: written ${JSON.stringify(title)} after the crash, reads back ${JSON.stringify(found?.title)}`);
    }
  } finally {
    await third.close();
  }
  const damaged = report.torn.length + report.garbled.length;
  return `${setting}: ${ackedCount} acknowledged, ${before.compactions} chunks compacted away, ${report.unsynced} unsynced transactions (${report.kept} kept, ${report.lost} lost, ${report.cut} cut), ${damaged} chunks damaged, ${degraded.length} documents degraded`;
}

/** Creates a course and pages and changes them, some durably, until the seeded crash; returns what was acknowledged. */
async function writeUntilCrash(store: DocStore, disk: PowerLossStorage, model: CrashModel, random: () => number) {
  const pages = new Map<DocUrl, PageWrites>();
  const outstanding: Array<Promise<unknown>> = [];
  const course = await store.create("course", { name: "Power" }, { durable: true });
  const steps = 40 + Math.floor(random() * 80);
  const crashAt = Math.floor(steps / 3 + random() * ((2 * steps) / 3));
  // The last steps before the crash acknowledge nothing: their commits are all still unsynced.
  const unsyncedFrom = crashAt - 3 - Math.floor(random() * 10);

  const createPage = (durable: boolean) => {
    const title = `p${pages.size}.0`;
    const created = store.create("page", { course: course.url, title, body: "" }, { durable }).then((page) => {
      pages.set(page.url, { titles: [title], acked: durable ? 1 : 0, committed: 1, busy: null });
    });
    outstanding.push(created.catch(() => undefined));
    return created;
  };
  for (let i = 0; i < 3; i++) await createPage(random() < 0.5);

  for (let step = 0; step < crashAt; step++) {
    const roll = random();
    const acknowledging = step < unsyncedFrom;
    if (roll < 0.06) {
      void createPage(acknowledging && random() < 0.5).catch(() => undefined);
    } else if (roll < 0.1 && acknowledging) {
      // A barrier acknowledges what was committed when it was asked for.
      const committed = [...pages.values()].map((page) => [page, page.committed] as const);
      const barrier = store.durable().then(() => committed.forEach(([page, count]) => (page.acked = Math.max(page.acked, count))));
      outstanding.push(barrier.catch(() => undefined));
      if (random() < 0.5) await barrier;
    } else {
      const idle = [...pages].filter(([, page]) => !page.busy);
      const [url, page] = idle[Math.floor(random() * idle.length)] ?? [];
      if (url && page) {
        // One change at a time per page, so its titles land in the order written.
        const title = `${page.titles[0]!.split(".")[0]}.${page.titles.length}`;
        const index = page.titles.push(title);
        const durable = acknowledging && random() < 0.1;
        const changed = store.change<"page">(url, (draft) => (draft.title = title), { durable }).then(() => {
          page.committed = Math.max(page.committed, index);
          if (durable) page.acked = Math.max(page.acked, index);
        });
        page.busy = changed.finally(() => (page.busy = null)).catch(() => undefined);
        outstanding.push(page.busy);
        if (random() < 0.2) await page.busy;
      }
    }
    // Pauses let commits and compactions run, so the power can go in the middle of them.
    const pause = random();
    if (pause < 0.15) await sleep(Math.floor(random() * 5));
    else if (pause < 0.4) await new Promise((resolve) => setImmediate(resolve));
  }
  // A few turns of the event loop first: commits and compactions land, unsynced, and some are cut off.
  for (let turns = Math.floor(random() * 6); turns > 0; turns--) await new Promise((resolve) => setImmediate(resolve));
  const crash = disk.crash(random, model);
  await Promise.all(outstanding);
  // The old store's writes all fail now; closing stops its retries.
  await store.close().catch(() => undefined);
  return { crash, pages, course: course.url, compactions: disk.chunksRemoved };
}

/** Every acknowledged change is there, in the record's view and in the document itself. */
async function checkAcknowledged(store: DocStore, course: DocUrl, pages: Map<DocUrl, PageWrites>, when: string): Promise<void> {
  const listed = new Set(await store.urls(course));
  for (const [url, page] of pages) {
    if (page.acked === 0) continue;
    check(listed.has(url), `${url} was acknowledged but its course does not list it ${when}`);
    const fromRecord = (await store.find<"page">(url))?.title;
    const fromDocument = ((await store.snapshot(url, { fromDocument: true }))?.entity as { title?: string } | undefined)?.title;
    for (const [source, title] of [["record", fromRecord], ["document", fromDocument]] as const) {
      const at = page.titles.indexOf(String(title));
      check(at >= page.acked - 1, `${url}: acknowledged ${JSON.stringify(page.titles[page.acked - 1])}, its ${source} reads ${JSON.stringify(title)} ${when}`);
    }
  }
}

/** What loading a stored document must give: the heads of its undamaged chunks, and whether it is degraded. */
interface ExpectedDocument {
  heads: string;
  /** Damaged chunks among those stored under it. */
  damaged: StorageKey[];
  /** Not loaded cleanly: damaged chunks the loader sees, or changes waiting for ones that were lost or set aside. */
  degraded: boolean;
}

function expectedDocuments(storage: PowerLossStorage, checksums: boolean): Map<DocumentId, ExpectedDocument> {
  const ids = new Set(storage.storedKeys().map((key) => key[0] as DocumentId));
  const expected = new Map<DocumentId, ExpectedDocument>();
  for (const id of ids) {
    const chunks = storage.storedChunks([id]);
    let doc = A.init<unknown>();
    for (const chunk of chunks) if (!chunk.damaged) doc = A.loadIncremental(doc, chunk.data!);
    const waiting = A.getMissingDeps(doc, []).length > 0;
    const damaged = chunks.filter((chunk) => chunk.damaged).map((chunk) => chunk.key);
    // With checksums the storage sets damaged chunks aside (kept there, never deleted): the
    // loader never sees them, and the rest loads cleanly unless it waits for their changes.
    expected.set(id, { heads: [...A.getHeads(doc)].sort().join(","), damaged, degraded: waiting || (!checksums && damaged.length > 0) });
    A.free(doc);
  }
  return expected;
}

/** Every damaged chunk was reported once: by the storage with checksums, by the loader without. */
function checkDamageReported(expected: Map<DocumentId, ExpectedDocument>, checksums: boolean, reported: DamagedChunk[], warnings: Map<DocumentId, number>, setting: string): void {
  const damaged = [...expected.values()].flatMap((doc) => doc.damaged.map(keyText)).sort();
  if (checksums) {
    const seen = reported.map((chunk) => keyText(chunk.key)).sort();
    check(seen.join(" ") === damaged.join(" "), `damaged chunks ${damaged.join(", ") || "none"}, the storage reported ${seen.join(", ") || "none"} (${setting})`);
    return;
  }
  for (const [id, doc] of expected) {
    const warned = warnings.get(id) ?? 0;
    check(warned === doc.damaged.length, `${docUrlOf(id)} has ${doc.damaged.length} damaged chunks, the loader reported ${warned} (${setting})`);
  }
}

/** Changes each page that still reads a few times (enough to make it due for compaction); returns the last title of each. */
async function changeEveryPage(store: DocStore, pages: Map<DocUrl, PageWrites>, random: () => number): Promise<Map<DocUrl, string>> {
  const last = new Map<DocUrl, string>();
  for (const url of pages.keys()) {
    if (!(await store.find<"page">(url))) continue;
    const rounds = 4 + Math.floor(random() * 6);
    for (let round = 0; round < rounds; round++) {
      const title = `after.${round}`;
      await store.change<"page">(url, (draft) => (draft.title = title));
      last.set(url, title);
    }
  }
  return last;
}

/** Notes, per document, how many chunks the loader reports it could not read. */
function countingUnreadable(counts: Map<DocumentId, number>): Logger {
  return {
    debug() {},
    info() {},
    error() {},
    warn(obj: object) {
      const { doc, chunks } = obj as { doc?: DocumentId; chunks?: number };
      // The most at one load: a document evicted and loaded again reports its chunks again.
      if (doc !== undefined && typeof chunks === "number") counts.set(doc, Math.max(counts.get(doc) ?? 0, chunks));
    },
  };
}

function headsOf(saved: Uint8Array): string {
  const doc = A.load(saved);
  const heads = [...A.getHeads(doc)].sort().join(",");
  A.free(doc);
  return heads;
}

function keyText(key: StorageKey): string {
  return key.join("/");
}

function fail(message: string): never {
  throw new Error(message);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
