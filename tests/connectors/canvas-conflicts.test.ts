import { afterEach, describe, expect, it } from "vitest";
import { urlOf } from "../../src/connectors/canvas/canvas-mapping.js";
import type { ConflictStrategy } from "../../src/connectors/connector-tables.js";
import { setStrategy } from "../../src/connectors/sync-base.js";
import { canvasTestNode } from "../../src/testing/canvas-node.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const DESCRIPTION = "<p>Focus the compound microscope on the onion-skin slide and describe what you see.</p><p>Use <strong>at least</strong> three observations.</p>";
const OURS = { title: "Lab 1 (here)", description: DESCRIPTION.replace("compound", "light") };
const THEIRS = { title: "Lab 1 (Canvas)", description: DESCRIPTION.replace("three", "five") };
const MERGED = DESCRIPTION.replace("compound", "light").replace("three", "five");

/**
 * Lab 1 edited on both sides since the last sync: here (title, first sentence) and in Canvas,
 * behind the connector's back (title, second sentence), Canvas's edit `canvasAheadMs` after ours.
 */
async function clash(strategy: ConflictStrategy, canvasAheadMs = 60_000) {
  const node = await canvasTestNode();
  cleanups.push(node.close);
  await node.pull();
  const { canvas, engine, instance, db } = node;
  expect(canvas.state.assignments.find((a) => a.id === 31001)!.description).toBe(DESCRIPTION);
  await setStrategy(db, urlOf(instance, "course", "4201")!, "assignment", strategy);
  const url = urlOf(instance, "assignment", 31001)!;
  const edited = await engine.docs.change<"assignment">(url, (d) => Object.assign(d, OURS));
  const remote = canvas.state.assignments.find((a) => a.id === 31001)!;
  Object.assign(remote, { name: THEIRS.title, description: THEIRS.description, updated_at: new Date(Date.parse(edited.updatedAt) + canvasAheadMs).toISOString().replace(/\.\d{3}Z$/, "Z") });
  const conflicts = () => db.selectFrom("remote_conflicts").select(["doc_url", "field", "strategy", "resolution"]).orderBy("field").execute();
  const settled = async () => ({ here: await engine.docs.find<"assignment">(url), there: canvas.state.assignments.find((a) => a.id === 31001)! });
  return { ...node, url, conflicts, settled };
}

describe("a clash with Canvas is settled by the course's strategy for the kind, and recorded", () => {
  it.each([
    ["prefer_canvas", THEIRS.title, THEIRS.description, 60_000],
    ["prefer_discourse", OURS.title, OURS.description, 60_000],
    ["prefer_recent", THEIRS.title, THEIRS.description, 60_000],
    ["prefer_recent", OURS.title, OURS.description, -60_000],
    ["merge_prefer_canvas", THEIRS.title, MERGED, 60_000],
    ["merge_prefer_discourse", OURS.title, MERGED, 60_000],
  ] as const)("%s: both sides end with title %j", async (strategy, title, description, canvasAheadMs) => {
    const { push, pull, url, conflicts, settled, canvas } = await clash(strategy, canvasAheadMs);
    expect(await push()).toMatchObject({ conflicts: 1, failed: [] });
    const { here, there } = await settled();
    expect(here).toMatchObject({ title, description });
    expect(there).toMatchObject({ name: title, description });
    const recorded = await conflicts();
    expect(recorded.map((c) => c.field)).toEqual(["description", "title"]);
    for (const row of recorded) expect(row).toMatchObject({ doc_url: url, strategy });
    if (strategy.startsWith("merge_")) expect(recorded[0]!.resolution).toMatch(/merged/);

    // Settled: the next sync finds both sides in step.
    const puts = canvas.requests.filter((r) => r.method === "PUT").length;
    expect(await pull()).toMatchObject({ updated: 0, failed: [] });
    expect(await push()).toMatchObject({ sent: 0, conflicts: 0 });
    expect(canvas.requests.filter((r) => r.method === "PUT")).toHaveLength(puts);
    expect(await conflicts()).toHaveLength(2);
  });

  it("settles a clash a pull finds first: the winning local edit is queued and reaches Canvas with the next push", async () => {
    const { push, pull, conflicts, settled, outbox } = await clash("merge_prefer_discourse");
    expect(await pull()).toMatchObject({ updated: 1, failed: [] });
    expect((await conflicts()).map((c) => c.field)).toEqual(["description", "title"]);
    expect((await settled()).here).toMatchObject({ title: OURS.title, description: MERGED });
    expect((await outbox.counts()).find((c) => c.status === "pending")?.count).toBe(1);
    expect(await push()).toMatchObject({ updated: 1, conflicts: 0, failed: [] });
    expect((await settled()).there).toMatchObject({ name: OURS.title, description: MERGED });
  });

  it("never lets a pull overwrite an edit made here and not sent yet", async () => {
    const node = await canvasTestNode();
    cleanups.push(node.close);
    await node.pull();
    const url = urlOf(node.instance, "page", 81001)!;
    await node.engine.docs.change<"page">(url, (d) => void (d.title = "Welcome (draft)"));
    await node.pull();
    expect((await node.engine.docs.find<"page">(url))!.title).toBe("Welcome (draft)");
    expect(await node.push()).toMatchObject({ updated: 1, failed: [] });
    expect(node.canvas.state.pages.find((p) => p.page_id === 81001)!.title).toBe("Welcome (draft)");
  });
});
