import BetterSqlite3 from "better-sqlite3";
import { Kysely, sql, SqliteDialect } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { newDocUrl } from "../../src/crdt/ids.js";
import type { DocSnapshot } from "../../src/crdt/snapshot.js";
import type { Database } from "../../src/projection/database.js";
import { ProjectionError } from "../../src/projection/projection-errors.js";
import { createProjectionRunner, type ProjectionRunnerOptions } from "../../src/projection/projection-runner.js";
import { dumpTables } from "../../src/projection/table-dump.js";
import { evolve, makeCourseWorld, makeSnapshot, MemorySource, openTempProjection, tombstoned } from "./fixtures.js";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function setup(options: ProjectionRunnerOptions = {}) {
  const projection = await openTempProjection();
  cleanups.push(() => projection.cleanup());
  let tick = 0;
  const runner = createProjectionRunner(projection.db, {
    now: () => `2024-01-01T00:00:${String(tick++ % 60).padStart(2, "0")}.000Z`,
    ...options,
  });
  return { db: projection.db, runner };
}

async function count(db: Kysely<Database>, table: keyof Database): Promise<number> {
  const { rows } = await sql<{ n: number }>`SELECT count(*) AS n FROM ${sql.table(table)}`.execute(db);
  return rows[0]?.n ?? 0;
}

/** Rows any table holds for a document, doc_heads excluded. */
async function rowsOwnedBy(db: Kysely<Database>, url: string): Promise<number> {
  let total = 0;
  for (const [table, column] of [
    ["courses", "doc_url"],
    ["users", "doc_url"],
    ["enrollments", "doc_url"],
    ["modules", "doc_url"],
    ["module_items", "module_url"],
    ["assignments", "doc_url"],
    ["submissions", "doc_url"],
    ["grades", "doc_url"],
    ["discussion_topics", "doc_url"],
    ["posts", "doc_url"],
    ["pages", "doc_url"],
    ["conflicts", "doc_url"],
    ["search_rows", "doc_url"],
    ["search", "doc_url"],
  ] as const) {
    const { rows } = await sql<{ n: number }>`SELECT count(*) AS n FROM ${sql.table(table)} WHERE ${sql.ref(column)} = ${url}`.execute(db);
    total += rows[0]?.n ?? 0;
  }
  return total;
}

/** FTS5's own consistency check of the index against `search_rows`; throws if they differ. */
async function checkSearchIndex(db: Kysely<Database>): Promise<void> {
  await sql`INSERT INTO search (search, rank) VALUES ('integrity-check', 1)`.execute(db);
}

async function headsOf(db: Kysely<Database>, url: string) {
  return db.selectFrom("doc_heads").select(["kind", "heads", "status", "projected_at"]).where("doc_url", "=", url as never).executeTakeFirst();
}

describe("apply", () => {
  it("projects a batch of every kind and records each document's heads", async () => {
    const { db, runner } = await setup();
    const world = makeCourseWorld();
    expect(await runner.apply(world.all)).toEqual({ projected: world.all.length, deleted: 0, invalid: 0, removed: 0 });
    expect(await count(db, "doc_heads")).toBe(world.all.length);
    expect(await count(db, "module_items")).toBe(3);
    expect(await count(db, "assignments")).toBe(1);
    expect(await headsOf(db, world.assignment.url)).toEqual({
      kind: "assignment",
      heads: world.assignment.heads,
      status: "projected",
      projected_at: "2024-01-01T00:00:00.000Z",
    });
  });

  it("is idempotent: applying the same snapshots again changes no projected row", async () => {
    const { db, runner } = await setup();
    const world = makeCourseWorld();
    await runner.apply(world.all);
    const first = await dumpTables(db);
    await runner.apply(world.all);
    await runner.apply([...world.all].reverse());
    expect(await dumpTables(db)).toBe(first);
    await checkSearchIndex(db);
  });

  it("replaces a changed document's rows: a module with 3 items then 2 keeps 2 item rows", async () => {
    const { db, runner } = await setup();
    const { module } = makeCourseWorld();
    await runner.apply([module]);
    expect(await count(db, "module_items")).toBe(3);
    const shorter = evolve(module, { name: "Week one", items: module.entity.items.slice(1) });
    await runner.apply([shorter]);
    const items = await db.selectFrom("module_items").select(["position", "item_id"]).orderBy("position").execute();
    expect(items).toEqual([
      { position: 0, item_id: "i2" },
      { position: 1, item_id: "i3" },
    ]);
    expect((await db.selectFrom("modules").select("name").executeTakeFirst())?.name).toBe("Week one");
    expect((await headsOf(db, module.url))?.heads).toBe(shorter.heads);
  });

  it("drops every row of a document's earlier kind when the same document projects as another kind", async () => {
    const { db, runner } = await setup();
    const { module } = makeCourseWorld();
    const conflicted = { ...module, conflicts: { name: ["Week 1", "Week one"] } };
    await runner.apply([conflicted]);
    expect(await count(db, "module_items")).toBe(3);
    expect(await count(db, "conflicts")).toBe(1);
    // The same URL, later a page: its module, items, search row and conflict must all go.
    const page = makeSnapshot("page", { title: "Was a module" }, { url: module.url });
    await runner.apply([page]);
    expect(await count(db, "modules")).toBe(0);
    expect(await count(db, "module_items")).toBe(0);
    expect(await count(db, "conflicts")).toBe(0);
    expect(await db.selectFrom("search_rows").select(["kind", "title"]).where("doc_url", "=", module.url).execute()).toEqual([{ kind: "page", title: "Was a module" }]);
    const fresh = await setup();
    await fresh.runner.apply([page]);
    expect(await dumpTables(db)).toBe(await dumpTables(fresh.db));
  });

  it("drops conflicts rows once a field is no longer conflicted", async () => {
    const { db, runner } = await setup();
    const page = makeSnapshot("page", { title: "B" }, { conflicts: { title: ["A", "B"] } });
    await runner.apply([page]);
    expect(await count(db, "conflicts")).toBe(1);
    await runner.apply([evolve({ ...page, conflicts: {} }, {})]);
    expect(await count(db, "conflicts")).toBe(0);
  });

  it("leaves no rows for a deleted document, only a doc_heads entry marked deleted", async () => {
    const { db, runner } = await setup();
    const { module } = makeCourseWorld();
    const page = makeSnapshot("page", { title: "Syllabus", body: "chapters" }, { conflicts: { body: ["a", "b"] } });
    await runner.apply([module, page]);
    expect(await rowsOwnedBy(db, module.url)).toBeGreaterThan(0);
    const gone = [tombstoned(module), tombstoned(page)];
    expect(await runner.apply(gone)).toEqual({ projected: 0, deleted: 2, invalid: 0, removed: 0 });
    expect(await rowsOwnedBy(db, module.url)).toBe(0);
    expect(await rowsOwnedBy(db, page.url)).toBe(0);
    expect(await count(db, "module_items")).toBe(0);
    expect(await headsOf(db, page.url)).toMatchObject({ status: "deleted", heads: gone[1]!.heads, kind: "page" });
  });

  it("marks invalid documents, dropping their rows, and forgets removed ones entirely", async () => {
    const { db, runner } = await setup();
    const page = makeSnapshot("page", { title: "x" });
    const other = makeSnapshot("page", { title: "y" });
    await runner.apply([page, other]);
    const result = await runner.apply([
      { url: page.url, kind: "page", heads: "bad", status: "invalid" },
      { url: other.url, status: "removed" },
    ]);
    expect(result).toEqual({ projected: 0, deleted: 0, invalid: 1, removed: 1 });
    expect(await headsOf(db, page.url)).toMatchObject({ status: "invalid", heads: "bad" });
    expect(await headsOf(db, other.url)).toBeUndefined();
    expect(await rowsOwnedBy(db, page.url)).toBe(0);
    expect(await rowsOwnedBy(db, other.url)).toBe(0);
  });

  it("takes the last change when a batch names a document twice", async () => {
    const { db, runner } = await setup();
    const v1 = makeSnapshot("page", { title: "one" });
    const v2 = evolve(v1, { title: "two" });
    expect(await runner.apply([v2, v1])).toMatchObject({ projected: 1 });
    expect((await db.selectFrom("pages").select("title").executeTakeFirst())?.title).toBe("one");
    expect((await headsOf(db, v1.url))?.heads).toBe(v1.heads);
  });

  it("changes nothing when one document of the batch fails to insert", async () => {
    const { db, runner } = await setup();
    const good = makeSnapshot("page", { title: "fine" });
    await runner.apply([good]);
    const before = await dumpTables(db);
    // A position that is not a number: the STRICT table refuses it, and the whole batch rolls back.
    const bad = makeSnapshot("assignment", { position: "first" as unknown as number });
    const error = await runner.apply([evolve(good, { title: "changed" }), bad]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProjectionError);
    expect((error as ProjectionError).code).toBe("ORDO_PROJECTION");
    expect(String((error as ProjectionError).cause)).toMatch(/position/);
    expect(await dumpTables(db)).toBe(before);
  });

  it("refuses a snapshot of a kind it cannot project, before writing anything", async () => {
    const { db, runner } = await setup();
    const odd = { ...makeSnapshot("page"), kind: "catalog" } as unknown as DocSnapshot;
    const fine = makeSnapshot("page");
    await expect(runner.apply([fine, odd])).rejects.toBeInstanceOf(ProjectionError);
    expect(await count(db, "doc_heads")).toBe(0);
  });

  it("splits large batches into statements within the parameter budget, with the same result", async () => {
    const projection = await openTempProjection();
    cleanups.push(() => projection.cleanup());
    // A second connection to the same file, logging the parameters of every statement.
    const parameterCounts: number[] = [];
    let assignmentInserts = 0;
    const logged = new Kysely<Database>({
      dialect: new SqliteDialect({ database: new BetterSqlite3(projection.path) }),
      log: (event) => {
        parameterCounts.push(event.query.parameters.length);
        if (event.query.sql.startsWith('insert into "assignments"')) assignmentInserts += 1;
      },
    });
    cleanups.push(() => logged.destroy());
    const small = createProjectionRunner(logged, { maxParameters: 40 });
    const large = await setup();
    const docs = [...Array.from({ length: 30 }, (_, i) => makeSnapshot("assignment", { title: `A${i}`, position: i })), makeCourseWorld().module];

    await small.apply(docs);
    await large.runner.apply(docs);
    expect(Math.max(...parameterCounts)).toBeLessThanOrEqual(40);
    // An assignment row has 16 columns: two rows per statement fit in 40 parameters.
    expect(assignmentInserts).toBe(15);
    expect(await count(projection.db, "assignments")).toBe(30);
    expect(await dumpTables(projection.db)).toBe(await dumpTables(large.db));

    await small.apply(docs.map((d) => tombstoned(d)));
    expect(await count(projection.db, "assignments")).toBe(0);
    expect(await count(projection.db, "module_items")).toBe(0);
  });
});

describe("catchUp", () => {
  it("projects everything the first time and skips unchanged documents the next", async () => {
    const { runner } = await setup();
    const world = makeCourseWorld();
    const source = new MemorySource(world.all);
    const first = await runner.catchUp(source);
    expect(first).toMatchObject({ listed: world.all.length, projected: world.all.length, skipped: 0 });
    expect(source.snapshotCalls).toBe(world.all.length);

    source.put(evolve(world.assignment, { title: "Renamed" }));
    const second = await runner.catchUp(source);
    expect(second).toMatchObject({ listed: world.all.length, projected: 1, skipped: world.all.length - 1, removed: 0 });
    expect(source.snapshotCalls).toBe(world.all.length + 1);
  });

  it("marks deleted and invalid documents without asking for their snapshots, and ignores catalogs", async () => {
    const { db, runner } = await setup();
    const page = makeSnapshot("page", { title: "x" });
    const bad = newDocUrl();
    const source = new MemorySource([tombstoned(page)]);
    source.putInvalid(bad, "assignment");
    source.putCatalog();
    const result = await runner.catchUp(source);
    expect(result).toMatchObject({ listed: 3, deleted: 1, invalid: 1, ignored: 1, projected: 0 });
    expect(source.snapshotCalls).toBe(0);
    expect(await headsOf(db, bad)).toMatchObject({ status: "invalid", kind: "assignment" });
    expect(await count(db, "doc_heads")).toBe(2);
    expect((await runner.catchUp(source)).skipped).toBe(2);
  });

  it("removes the rows of documents the source no longer holds", async () => {
    const { db, runner } = await setup();
    const world = makeCourseWorld();
    const source = new MemorySource(world.all);
    await runner.catchUp(source);
    source.remove(world.module.url);
    const result = await runner.catchUp(source);
    expect(result).toMatchObject({ removed: 1, skipped: world.all.length - 1 });
    expect(await rowsOwnedBy(db, world.module.url)).toBe(0);
    expect(await headsOf(db, world.module.url)).toBeUndefined();
  });

  it("re-projects a document whose status changed even when its heads did not", async () => {
    const { db, runner } = await setup();
    const page = makeSnapshot("page", { title: "x" });
    const source = new MemorySource([page]);
    await runner.catchUp(source);
    source.putInvalid(page.url, "page", page.heads);
    expect(await runner.catchUp(source)).toMatchObject({ invalid: 1, skipped: 0 });
    expect(await rowsOwnedBy(db, page.url)).toBe(0);
  });

  it("counts documents that vanish between list and snapshot as missing, and retries them later", async () => {
    const { runner } = await setup();
    const page = makeSnapshot("page");
    const source = new MemorySource([page]);
    const vanishing = { list: () => source.list(), snapshot: async () => undefined };
    expect(await runner.catchUp(vanishing)).toMatchObject({ missing: 1, projected: 0 });
    expect(await runner.catchUp(source)).toMatchObject({ projected: 1, skipped: 0 });
  });

  it("resumes after a crash: committed batches stay, the rest is projected on the next run", async () => {
    const { db, runner } = await setup();
    const docs = Array.from({ length: 25 }, (_, i) => makeSnapshot("assignment", { title: `Essay ${i}` }));
    const source = new MemorySource(docs);
    source.failAfter = 12;
    const progress: number[] = [];
    await expect(runner.catchUp(source, { batchSize: 5, onProgress: (p) => progress.push(p.done) })).rejects.toThrow("simulated crash");
    expect(progress).toEqual([5, 10]);
    expect(await count(db, "doc_heads")).toBe(10);
    expect(await count(db, "assignments")).toBe(10);

    source.failAfter = Infinity;
    const resumed = await runner.catchUp(source, { batchSize: 5 });
    expect(resumed).toMatchObject({ skipped: 10, projected: 15 });

    const reference = await setup();
    await reference.runner.apply(docs);
    expect(await dumpTables(db)).toBe(await dumpTables(reference.db));
  });

  it("reports progress per committed batch", async () => {
    const { runner } = await setup();
    const source = new MemorySource(Array.from({ length: 7 }, () => makeSnapshot("page")));
    const seen: Array<{ done: number; total: number }> = [];
    await runner.catchUp(source, { batchSize: 3, onProgress: (p) => seen.push(p) });
    expect(seen).toEqual([
      { done: 3, total: 7 },
      { done: 6, total: 7 },
      { done: 7, total: 7 },
    ]);
  });
});

describe("rebuild and convergence", () => {
  /** A history: documents created, changed, deleted, invalidated, removed. */
  function makeHistory() {
    const world = makeCourseWorld();
    const steps: DocSnapshot[][] = [world.all];
    const renamed = evolve(world.assignment, { title: "Cell essay (revised)", pointsPossible: 20 });
    const shorter = evolve(world.module, { items: world.module.entity.items.slice(0, 2) });
    const extra = makeSnapshot("page", { title: "Extra", body: "to be deleted" }, { course: world.course.url });
    steps.push([renamed, shorter, extra]);
    steps.push([tombstoned(extra), evolve(world.topic, { locked: true }, {})]);
    const final = new Map<string, DocSnapshot>();
    for (const step of steps) for (const snapshot of step) final.set(snapshot.url, snapshot);
    return { steps, final: [...final.values()] };
  }

  it("rebuild gives exactly the dump of the incremental path", async () => {
    const { steps, final } = makeHistory();
    const incremental = await setup();
    for (const step of steps) await incremental.runner.apply(step);

    const source = new MemorySource(final);
    const rebuilt = await setup();
    await rebuilt.runner.apply([makeSnapshot("page", { title: "stale, not in the source" })]);
    const result = await rebuilt.runner.rebuild(source, { batchSize: 4 });
    expect(result.projected + result.deleted).toBe(final.length);
    expect(await dumpTables(rebuilt.db)).toBe(await dumpTables(incremental.db));

    // Rebuilding in place over the incremental database gives the same again.
    await incremental.runner.rebuild(source);
    expect(await dumpTables(incremental.db)).toBe(await dumpTables(rebuilt.db));
    await checkSearchIndex(incremental.db);
    await checkSearchIndex(rebuilt.db);
  });

  it("two runners fed the same final snapshots in different orders hold identical tables", async () => {
    const { steps, final } = makeHistory();
    const a = await setup();
    const b = await setup();
    await a.runner.apply(final);
    // b first sees stale states, then the final ones reversed in small batches.
    await b.runner.apply(steps[0]!);
    for (let i = final.length; i > 0; i -= 3) await b.runner.apply(final.slice(Math.max(0, i - 3), i).reverse());
    // b also saw a document a never did, which then left its store.
    const stray = makeSnapshot("page", { title: "stray" });
    await b.runner.apply([stray]);
    await b.runner.apply([{ url: stray.url, status: "removed" }]);
    expect(await dumpTables(b.db)).toBe(await dumpTables(a.db));
  });

  it("dumps every column of every projected table except doc_heads.projected_at", async () => {
    const { db, runner } = await setup();
    await runner.apply(makeCourseWorld().all.map((s, i) => (i === 0 ? { ...s, conflicts: { name: ["a", "b"] } } : s)));
    const dump = await dumpTables(db);
    const sections = new Map<string, string[]>();
    let current = "";
    for (const line of dump.trimEnd().split("\n")) {
      if (line.startsWith("# ")) sections.set((current = line.slice(2)), []);
      else sections.get(current)?.push(line);
    }
    const { rows: tables } = await sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'kysely_%' AND name NOT LIKE 'search_%' AND name NOT LIKE 'sqlite_%' AND name != 'projection_state' AND name NOT IN ('remote_ids', 'outbox', 'remote_sync', 'remote_conflicts', 'conflict_strategies', 'webhook_events')`.execute(db);
    expect([...sections.keys()].sort()).toEqual(tables.map((t) => t.name).sort());
    for (const { name } of tables) {
      const lines = sections.get(name) ?? [];
      expect(lines.length, name).toBeGreaterThan(0);
      const { rows: columns } = await sql<{ name: string }>`SELECT name FROM pragma_table_info(${name})`.execute(db);
      const expected = columns.map((c) => c.name).filter((c) => !(name === "doc_heads" && c === "projected_at"));
      expect(Object.keys(JSON.parse(lines[0]!) as object).sort(), name).toEqual(expected.sort());
    }
    expect(dump).not.toContain("2024-01-01T00:00:00.000Z");
  });
});
