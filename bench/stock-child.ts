import { existsSync, readFileSync, writeFileSync } from "node:fs";
import * as A from "@automerge/automerge";
import { Repo, type AutomergeUrl, type DocHandle } from "@automerge/automerge-repo";
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs";
import BetterSqlite3 from "better-sqlite3";
import { Kysely, SqliteDialect, type Insertable } from "kysely";
import type { DocUrl } from "../src/crdt/ids.js";
import { initialRoot, readEntity } from "../src/crdt/schema/document.js";
import { isKind } from "../src/crdt/schema/kinds.js";
import { OWNED_TABLES, type Database, type OwnedTable } from "../src/projection/database.js";
import { openProjectionDb } from "../src/projection/projection-db.js";
import { projectSnapshot } from "../src/projection/snapshot-projector.js";
import { diskBytes, emptyFiles, readTask, rssMb, runChild, since, startRssSampler } from "./child-kit.js";
import { generateCorpus, inputOf } from "./lms-corpus.js";
import { shutdown } from "./stock-kit.js";

/**
 * Stock automerge-repo's side of each figure: a `Repo` over `NodeFSStorageAdapter`, no
 * network, as an application would use it. Run by `bench/run.ts`, one task per fresh process.
 */
export type StockTask =
  /** Creates corpus documents [from, to) and appends their URLs to `urlsFile` (a large store is built in parts). */
  | { task: "create"; dir: string; urlsFile: string; count: number; from: number; to: number; batch: number; preGrowMb: number }
  | { task: "project"; dir: string; urlsFile: string; projectionPath: string; deadlineMs: number; batch: number }
  | { task: "open"; dir: string; urlsFile: string; deadlineMs: number; concurrency: number }
  | { task: "rss"; dir: string; urlsFile: string; deadlineMs: number; concurrency: number };

type Root = Record<string, unknown>;

function openRepo(dir: string): Repo {
  return new Repo({ storage: new NodeFSStorageAdapter(dir), network: [] });
}

function readUrls(file: string): AutomergeUrl[] {
  return JSON.parse(readFileSync(file, "utf8")) as AutomergeUrl[];
}


/**
 * Finds documents `concurrency` at a time until all are ready or the deadline passes.
 * Stock has no index: answering anything about the store means having every document in memory.
 */
async function findAll(repo: Repo, urls: readonly AutomergeUrl[], concurrency: number, deadline: number): Promise<Array<DocHandle<Root>>> {
  const handles: Array<DocHandle<Root>> = [];
  for (let from = 0; from < urls.length && performance.now() < deadline; from += concurrency) {
    handles.push(...(await Promise.all(urls.slice(from, from + concurrency).map((url) => repo.find<Root>(url)))));
  }
  return handles;
}

function text(value: unknown): unknown {
  return value instanceof A.ImmutableString ? value.val : value;
}

runChild(async () => {
  const task = readTask<StockTask>();
  switch (task.task) {
    case "create": {
      if (task.preGrowMb > 0) {
        // The HAZARDS workaround: grow Automerge's wasm memory once instead of in thousands of
        // small steps that each cost Node a full GC. Loading bytes that are no document copies
        // them into wasm memory (growing it) and fails at once on the header.
        try {
          A.load(new Uint8Array(task.preGrowMb * 1024 * 1024));
        } catch {
          // Expected: the bytes only serve to grow the memory.
        }
      }
      const corpus = generateCorpus(task.count);
      const urls: AutomergeUrl[] = task.from > 0 && existsSync(task.urlsFile) ? readUrls(task.urlsFile) : [];
      const urlOf = (index: number) => urls[index]! as DocUrl;
      const repo = openRepo(task.dir);
      const now = () => new Date().toISOString();
      const start = performance.now();
      for (let from = task.from; from < task.to; from += task.batch) {
        for (let index = from; index < Math.min(task.to, from + task.batch); index++) {
          const doc = corpus[index]!;
          const { course, external, ...fields } = inputOf(doc, urlOf);
          // The same initial document our store writes, built by the same schema code. A
          // course names itself, which stock cannot know before it exists: null there (4 to 20 documents).
          const root = initialRoot(doc.kind, course ?? null, fields, now(), external);
          urls[index] = repo.create<Root>(root).url;
        }
        // Let the repo's debounced saves run between batches, as our side yields between its batches.
        await new Promise((resolve) => setImmediate(resolve));
      }
      await repo.flush();
      const ms = since(start);
      const emptyAfterFlush = emptyFiles(task.dir);
      // Untimed: in 2.5.6 flush() can resolve while a throttled save of the same document is
      // still rewriting its snapshot (both write the same file; writeFile truncates first), so
      // exiting right away leaves empty snapshot files that load as {}. Let those saves land.
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      await shutdown(repo);
      writeFileSync(task.urlsFile, JSON.stringify(urls));
      return { docs: task.to - task.from, ms, diskBytes: diskBytes(task.dir), emptyAfterFlush, emptyFiles: emptyFiles(task.dir), rssMb: process.memoryUsage.rss() / (1024 * 1024) };
    }
    case "project": {
      // The schema comes from our migrations (an equivalent table), written by plain kysely as an app would.
      await (await openProjectionDb({ path: task.projectionPath })).close();
      const sqlite = new BetterSqlite3(task.projectionPath);
      sqlite.pragma("journal_mode = WAL");
      sqlite.pragma("synchronous = NORMAL");
      const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
      const urls = readUrls(task.urlsFile);
      const repo = openRepo(task.dir);
      const start = performance.now();
      const deadline = start + task.deadlineMs;
      let done = 0;
      let unreadable = 0;
      for (let from = 0; from < urls.length && performance.now() < deadline; from += task.batch) {
        // One transaction per batch, as our runner does: the comparison is about reading and
        // inserting, not about committing every row on its own.
        await db.transaction().execute(async (trx) => {
          for (const url of urls.slice(from, from + task.batch)) {
            if (performance.now() >= deadline) break;
            const handle = await repo.find<Root>(url);
            const doc = handle.doc();
            const kind = text(doc.kind);
            // A document that did not survive its save (see "create") has no kind: count it, skip it.
            if (!isKind(kind)) {
              unreadable++;
              continue;
            }
            const rows = projectSnapshot({ url, kind, heads: "", entity: readEntity(url, doc), conflicts: {} });
            for (const table of Object.keys(OWNED_TABLES) as OwnedTable[]) {
              for (const row of rows[table] ?? []) {
                await trx.insertInto(table).values(row as Insertable<Database[OwnedTable]> as never).execute();
              }
            }
            done++;
          }
        });
      }
      const ms = since(start);
      const rssMb = process.memoryUsage.rss() / (1024 * 1024);
      await db.destroy();
      await shutdown(repo);
      return { ms, projected: done, unreadable, total: urls.length, finished: done + unreadable === urls.length, rssMb };
    }
    case "open": {
      const start = performance.now();
      const urls = readUrls(task.urlsFile);
      const repo = openRepo(task.dir);
      const handles = await findAll(repo, urls, task.concurrency, start + task.deadlineMs);
      const finished = handles.length === urls.length;
      // The query our side answers from SQL: a course's assignments with a due date, by due date then position.
      const course = urls[0];
      const rows = handles
        .map((h) => h.doc())
        .filter((d) => text(d.kind) === "assignment" && text(d.course) === course && d.dueAt != null)
        .sort((a, b) => String(text(a.dueAt)).localeCompare(String(text(b.dueAt))) || Number(a.position) - Number(b.position));
      const ms = since(start);
      await shutdown(repo);
      return { ms, rows: rows.length, found: handles.length, total: urls.length, finished, processMs: Math.round(performance.now()) };
    }
    case "rss": {
      const sampler = startRssSampler();
      const urls = readUrls(task.urlsFile);
      const stages: Record<string, number> = { baseline: rssMb() };
      const start = performance.now();
      const repo = openRepo(task.dir);
      const handles = await findAll(repo, urls, task.concurrency, start + task.deadlineMs);
      const findMs = since(start);
      stages.finds = rssMb();
      // The same gradebook our side runs in SQL: submissions per student and their mean score.
      const scores = new Map<string, number>();
      const docs = handles.map((h) => h.doc());
      for (const d of docs) if (text(d.kind) === "grade") scores.set(String(text(d.submission)), Number(d.score));
      const students = new Map<string, { submissions: number; sum: number; graded: number }>();
      for (const h of handles) {
        const d = h.doc();
        if (text(d.kind) !== "submission") continue;
        const entry = students.get(String(text(d.student))) ?? { submissions: 0, sum: 0, graded: 0 };
        entry.submissions++;
        const score = scores.get(h.url);
        if (score !== undefined) {
          entry.sum += score;
          entry.graded++;
        }
        students.set(String(text(d.student)), entry);
      }
      const queryMs = since(start) - findMs;
      stages.query = rssMb();
      const peakRssMb = sampler.peakMb();
      await shutdown(repo);
      return { peakRssMb, stages, findMs, queryMs, found: handles.length, total: urls.length, finished: handles.length === urls.length, students: students.size };
    }
  }
});
