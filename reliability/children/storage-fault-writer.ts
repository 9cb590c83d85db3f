/**
 * The node the storage-faults suite watches: a SyncNode (HTTP on 127.0.0.1) whose document
 * storage fails 5% of its writes (ENOSPC, EIO, SQLITE_BUSY). It talks to the suite in lines:
 *
 *   out `listening <http url>`        the suite may poll /healthz from now on
 *   out `report <json>`               the writes are done; the last ones hit a full disk and
 *                                      are still uncommitted; every change was read back
 *   in  `faults-off`                   the disk recovers; out `faults-off`
 *   in  `close`                        a clean shutdown; out `closed`, exit 0
 *
 * A write that rejects with a storage error is still applied (it waits in memory for a
 * retry), so it counts in the expected state; any other failure ends the process with 1.
 */
import { createInterface } from "node:readline";
import { externalDocUrl, type DocUrl } from "../../src/crdt/ids.js";
import { SyncNode } from "../../src/node/sync-node.js";
import { FaultyStorage } from "../../src/testing/faulty-storage.js";
import { createRandom } from "../../src/util/random.js";

/** The share of writes that fail while the disk is "flaky". */
const FAULT_RATE = 0.05;

/** What every page should hold in the end, by URL. */
export interface ExpectedPage {
  title: string;
  body: string;
  deleted: boolean;
}

export interface WriterReport {
  course: { url: DocUrl; name: string };
  pages: Record<DocUrl, ExpectedPage>;
  writes: number;
  /** Writes whose promise rejected with a storage error (their changes were kept). */
  rejected: number;
  injected: Record<string, number>;
  /** Reads that did not show the change last made: each names the document and what differed. */
  unreadable: string[];
  writesFailing: boolean;
}

const [dir, seedText, writesText] = process.argv.slice(2);
if (!dir || !seedText || !writesText) throw new Error("usage: storage-fault-writer <data directory> <seed> <writes>");
const seed = Number(seedText);
const random = createRandom(seed * 7919 + 1);
let faulty: FaultyStorage | undefined;
const node = await SyncNode.start({
  dataDir: dir,
  create: true,
  listen: { port: 0, host: "127.0.0.1" },
  discovery: false,
  connectors: false,
  // A small cache: documents are evicted and loaded again from storage plus the uncommitted writes.
  engine: { cacheSize: 8, wrapStorage: (storage) => (faulty = new FaultyStorage(storage, { rate: FAULT_RATE, seed })) },
});
const storage = faulty!;
const store = node.engine.docs;
process.stdout.write(`listening ${node.url!.replace(/^ws/, "http")}\n`);

const STORAGE_CODES = new Set(["ORDO_STORAGE", "ENOSPC", "EIO", "SQLITE_BUSY"]);
let writes = 0;
let rejected = 0;

/** Runs one write; a storage failure is counted (the change is kept), anything else is fatal. */
async function write(run: () => Promise<unknown>): Promise<void> {
  writes++;
  try {
    await run();
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code !== "string" || !STORAGE_CODES.has(code)) throw error;
    rejected++;
  }
}

const identity = (id: string) => ({ system: "reliability:storage-faults", id: `${seed}/${id}` });
const course = { url: externalDocUrl("course", identity("course")), name: `Course ${seed}` };
await write(() => store.create("course", { name: course.name }, { identity: identity("course") }));
const pages = new Map<DocUrl, ExpectedPage>();
const live = () => [...pages].filter(([, page]) => !page.deleted).map(([url]) => url);
const pick = (urls: readonly DocUrl[]) => urls[Math.floor(random() * urls.length)]!;

async function createPage(n: number): Promise<void> {
  const url = externalDocUrl("page", identity(`page/${n}`));
  const page = { title: `Page ${n}`, body: "", deleted: false };
  pages.set(url, page);
  await write(() => store.create("page", { course: course.url, title: page.title, body: "" }, { identity: identity(`page/${n}`), durable: random() < 0.1 }));
}

/** One step: a new page, a change to one page, changes to several in one tick, a rename or a deletion. */
async function step(n: number): Promise<void> {
  const roll = random();
  const urls = live();
  if (urls.length < 3 || roll < 0.12) return createPage(n);
  if (roll < 0.15 && urls.length > 5) {
    const url = pick(urls);
    pages.get(url)!.deleted = true;
    return write(() => store.delete(url));
  }
  if (roll < 0.2) {
    course.name = `Course ${seed}, week ${n}`;
    return write(() => store.change<"course">(course.url, (d) => (d.name = course.name)));
  }
  // Distinct pages, so the outcome does not depend on which of them is applied first.
  const chosen = [...new Set(Array.from({ length: roll < 0.4 ? 3 : 1 }, () => pick(urls)))];
  const durable = random() < 0.1;
  await Promise.all(
    chosen.map((url) => {
      const page = pages.get(url)!;
      if (random() < 0.2) {
        page.title = `Page ${n}`;
        return write(() => store.change<"page">(url, (d) => (d.title = page.title), { durable }));
      }
      page.body += `${n};`;
      return write(() => store.change<"page">(url, (d) => (d.body = page.body), { durable }));
    }),
  );
}

const total = Number(writesText);
for (let n = 0; n < total; n++) await step(n);
// Then the disk is full for a while: these changes stay uncommitted, and must still read back.
storage.setRate(1);
for (let n = total; n < total + 8; n++) await step(n);

const unreadable: string[] = [];
const stored = await store.find<"course">(course.url);
if (stored?.name !== course.name) unreadable.push(`${course.url}: name ${JSON.stringify(stored?.name)}, expected ${JSON.stringify(course.name)}`);
for (const [url, page] of pages) {
  const entity = await store.find<"page">(url, { includeDeleted: true });
  const found = entity && { title: entity.title, body: entity.body, deleted: entity.tombstone !== null };
  if (JSON.stringify(found) !== JSON.stringify(page)) unreadable.push(`${url}: read ${JSON.stringify(found)}, expected ${JSON.stringify(page)}`);
}
const listed = (await store.urls(course.url, "page")).sort();
if (JSON.stringify(listed) !== JSON.stringify(live().sort())) unreadable.push(`the course lists ${listed.length} pages, expected ${live().length}`);

const report: WriterReport = { course, pages: Object.fromEntries(pages), writes, rejected, injected: storage.injected, unreadable, writesFailing: node.engine.writesFailing };
process.stdout.write(`report ${JSON.stringify(report)}\n`);

for await (const line of createInterface({ input: process.stdin })) {
  if (line === "faults-off") {
    storage.setRate(0);
    process.stdout.write("faults-off\n");
  } else if (line === "close") {
    await node.close();
    process.stdout.write("closed\n");
    process.exit(0);
  }
}
