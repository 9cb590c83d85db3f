import { readFileSync, writeFileSync } from "node:fs";
import { sql } from "kysely";
import { Engine } from "../src/engine.js";
import { externalDocUrl, type DocUrl } from "../src/crdt/ids.js";
import { assignmentsDue } from "../src/projection/queries.js";
import { diskBytes, readTask, rssMb, runChild, sampleIndices, since, startRssSampler } from "./child-kit.js";
import { generateCorpus, inputOf } from "./lms-corpus.js";

/** Our engine's side of each figure; run by `bench/run.ts`, one task per fresh process. */
export type OursTask =
  | { task: "create"; dataDir: string; count: number; batch: number; urlsFile: string }
  | { task: "rebuild"; dataDir: string }
  | { task: "open"; dataDir: string }
  | { task: "rss"; dataDir: string; urlsFile: string; finds: number };

/**
 * Bench documents are imports with an identity, so their URLs follow from the corpus index:
 * a grade can name the submission created in the same batch, and later processes find any
 * document without a list of URLs.
 */
function urlOf(kind: string, index: number): DocUrl {
  return externalDocUrl(kind, { system: "ordo-bench", id: String(index) });
}

runChild(async () => {
  const task = readTask<OursTask>();
  switch (task.task) {
    case "create": {
      const corpus = generateCorpus(task.count);
      const url = (index: number) => urlOf(corpus[index]!.kind, index);
      const engine = await Engine.open({ dataDir: task.dataDir, create: true });
      const start = performance.now();
      for (let from = 0; from < corpus.length; from += task.batch) {
        const batch = corpus.slice(from, from + task.batch);
        // One tick's creates share one transaction (the store's group commit).
        await Promise.all(batch.map((doc, i) => engine.docs.create(doc.kind, inputOf(doc, url), { identity: { system: "ordo-bench", id: String(from + i) } })));
      }
      await engine.docs.durable();
      const createMs = since(start);
      await engine.whenProjected();
      const projectedMs = since(start);
      await engine.close();
      writeFileSync(task.urlsFile, JSON.stringify(corpus.map((_, i) => url(i))));
      return { docs: corpus.length, createMs, projectedMs, diskBytes: diskBytes(task.dataDir) };
    }
    case "rebuild": {
      const engine = await Engine.open({ dataDir: task.dataDir });
      const start = performance.now();
      const result = await engine.rebuild();
      const ms = since(start);
      const rss = process.memoryUsage.rss() / (1024 * 1024);
      await engine.close();
      return { ms, projected: result.projected, ignored: result.ignored, missing: result.missing, rssMb: rss };
    }
    case "open": {
      // Modules are loaded by now: the figure is the engine's own start, not Node's.
      const start = performance.now();
      const engine = await Engine.open({ dataDir: task.dataDir });
      const rows = await assignmentsDue(engine.db, urlOf("course", 0));
      const ms = since(start);
      await engine.close();
      return { ms, rows: rows.length, processMs: Math.round(performance.now()) };
    }
    case "rss": {
      const sampler = startRssSampler();
      const urls = JSON.parse(readFileSync(task.urlsFile, "utf8")) as DocUrl[];
      // Stages show what is Node, tsx and the loaded modules, and what the engine adds.
      const stages: Record<string, number> = { baseline: rssMb() };
      const start = performance.now();
      const engine = await Engine.open({ dataDir: task.dataDir });
      const openMs = since(start);
      stages.open = rssMb();
      // A gradebook over every course: reads every submission and grade row.
      const gradebook = await engine.db
        .selectFrom("submissions as s")
        .leftJoin("grades as g", "g.submission_url", "s.doc_url")
        .select(["s.student_url", sql<number>`count(*)`.as("submissions"), sql<number | null>`avg(g.score)`.as("mean")])
        .groupBy("s.student_url")
        .execute();
      const queryMs = since(start) - openMs;
      stages.query = rssMb();
      const findStart = performance.now();
      let found = 0;
      for (const index of sampleIndices(urls.length, task.finds)) {
        if (await engine.docs.find(urls[index]!)) found++;
      }
      const findMs = since(findStart);
      stages.finds = rssMb();
      const peakRssMb = sampler.peakMb();
      await engine.close();
      return { peakRssMb, stages, openMs, queryMs, findMs, found, students: gradebook.length, diskBytes: diskBytes(task.dataDir) };
    }
  }
});
