import { afterEach, describe, expect, it } from "vitest";
import { canvasClient } from "../../src/connectors/canvas/canvas-client.js";
import { canvasInstance, urlOf } from "../../src/connectors/canvas/canvas-mapping.js";
import { pullCanvasCourse } from "../../src/connectors/canvas/canvas-pull.js";
import { pushCanvasChanges } from "../../src/connectors/canvas/canvas-push.js";
import { connectorDb } from "../../src/connectors/connector-tables.js";
import { Outbox } from "../../src/connectors/outbox.js";
import { Engine } from "../../src/engine.js";
import { FakeCanvas } from "../../src/testing/fake-canvas/index.js";
import { makeTempDir } from "../../src/testing/temp-dir.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup() {
  let now = Date.parse("2025-01-22T12:00:00Z");
  const canvas = await FakeCanvas.start({ clock: () => now });
  cleanups.push(() => canvas.close());
  const temp = makeTempDir();
  const engine = await Engine.open({ dataDir: temp.dir, create: true });
  cleanups.push(async () => {
    await engine.close();
    temp.remove();
  });
  const instance = canvasInstance(canvas.url);
  const client = canvasClient({ url: canvas.url, token: () => canvas.token, sleep: async () => undefined });
  const db = connectorDb(engine.db);
  const outbox = new Outbox(db);
  const pull = () => pullCanvasCourse({ client, instance, store: engine.docs, db, courseId: "4201" });
  const push = () => pushCanvasChanges({ client, store: engine.docs, db, outbox, courseId: "4201" });
  await pull();
  return { canvas, engine, instance, db, outbox, pull, push, tick: (ms: number) => (now += ms) };
}

describe("pushing local work to Canvas", () => {
  it("sends a changed grade and a changed assignment, once, and nothing that came from Canvas", async () => {
    const { canvas, engine, instance, push, pull } = await setup();
    expect(await push()).toMatchObject({ sent: 0, failed: [] });

    const graded = canvas.state.submissions.find((s) => s.score !== null)!;
    const gradeUrl = urlOf(instance, "grade", String(graded.id))!;
    await engine.docs.change<"grade">(gradeUrl, (draft) => {
      draft.score = 4.5;
    });
    const assignment = canvas.state.assignments[0]!;
    const assignmentUrl = urlOf(instance, "assignment", String(assignment.id))!;
    await engine.docs.change<"assignment">(assignmentUrl, (draft) => {
      draft.title = "Lab 1, renamed in class";
    });

    expect(await push()).toMatchObject({ sent: 2, conflicts: 0, failed: [] });
    expect(canvas.state.submissions.find((s) => s.id === graded.id)!.score).toBe(4.5);
    expect(canvas.state.assignments.find((a) => a.id === assignment.id)!.name).toBe("Lab 1, renamed in class");
    // Sent once; a pull of what was sent echoes nothing back.
    expect(await push()).toMatchObject({ sent: 0 });
    await pull();
    expect(await push()).toMatchObject({ sent: 0 });
  });

  it("records a conflict, and overwrites nothing, when Canvas changed the assignment too", async () => {
    const { canvas, engine, instance, db, push, tick } = await setup();
    const assignment = canvas.state.assignments[0]!;
    const url = urlOf(instance, "assignment", String(assignment.id))!;
    await engine.docs.change<"assignment">(url, (draft) => {
      draft.title = "Changed here";
    });
    tick(60_000);
    assignment.name = "Changed in Canvas";
    assignment.updated_at = new Date(Date.parse("2025-01-22T12:01:00Z")).toISOString().replace(".000", "");
    expect(await push()).toMatchObject({ sent: 0, conflicts: 1 });
    expect(canvas.state.assignments[0]!.name).toBe("Changed in Canvas");
    expect(await db.selectFrom("remote_conflicts").select(["doc_url", "field"]).execute()).toEqual([{ doc_url: url, field: "assignment" }]);
  });

  it("keeps the change pending, to be retried later, while Canvas is down", async () => {
    const { canvas, engine, instance, outbox, push } = await setup();
    const url = urlOf(instance, "assignment", String(canvas.state.assignments[0]!.id))!;
    await engine.docs.change<"assignment">(url, (draft) => {
      draft.title = "Sent after the outage";
    });
    canvas.faults.inject("*", 500, 100);
    expect(await push()).toMatchObject({ sent: 0, retrying: 1 });
    canvas.faults.clear();
    const [entry] = await outbox.due("canvas");
    expect(entry).toBeUndefined();
    expect((await outbox.counts()).find((c) => c.status === "pending")?.count).toBe(1);
  });
});
