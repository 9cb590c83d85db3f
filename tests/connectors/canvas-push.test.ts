import { afterEach, describe, expect, it } from "vitest";
import { urlOf } from "../../src/connectors/canvas/canvas-mapping.js";
import { canvasTestNode } from "../../src/testing/canvas-node.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup() {
  const node = await canvasTestNode();
  cleanups.push(node.close);
  await node.pull();
  return node;
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
