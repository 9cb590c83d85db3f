import { afterEach, describe, expect, it } from "vitest";
import { urlOf } from "../../src/connectors/canvas/canvas-mapping.js";
import { canvasInstant } from "../../src/connectors/canvas/canvas-time.js";
import { mappedUrl } from "../../src/connectors/remote-records.js";
import type { DocUrl } from "../../src/crdt/ids.js";
import { canvasTestNode } from "../../src/testing/canvas-node.js";
import { LOCAL_WORK, madeInCanvas, writeLocalWork } from "../../src/testing/canvas-local-work.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup() {
  const node = await canvasTestNode();
  cleanups.push(node.close);
  await node.pull();
  const course = urlOf(node.instance, "course", "4201")!;
  /** Every document's heads: a sync that changes nothing leaves them all as they were. */
  const heads = async () => new Map((await node.engine.docs.records()).map((r) => [r.id, r.heads]));
  return { ...node, course, heads };
}

describe("pushing local work to Canvas", () => {
  it("creates each kind once, maps it to its document, and a second sync sends nothing and changes nothing", async () => {
    const { canvas, engine, instance, db, push, pull, heads } = await setup();
    const urls = new Map<string, DocUrl>();
    for (const work of LOCAL_WORK) urls.set(work, await writeLocalWork(engine.docs, instance, work, "tulip"));
    // A grade given here to a student Canvas has no grade for yet.
    const placeholder = canvas.state.submissions.find((s) => s.assignment_id === 31001 && s.score === null) ?? canvas.state.submissions.find((s) => s.score === null)!;
    const grade = await engine.docs.create("grade", {
      course: urlOf(instance, "course", "4201"),
      submission: urlOf(instance, "submission", placeholder.id),
      assignment: urlOf(instance, "assignment", placeholder.assignment_id),
      student: urlOf(instance, "user", placeholder.user_id),
      score: 7,
    });

    expect(await push()).toMatchObject({ created: 6, sent: 6, failed: [], deferred: 0 });
    for (const work of LOCAL_WORK) {
      const made = madeInCanvas(canvas.state, work, "tulip");
      expect(made, work).toHaveLength(1);
      const doc = (await engine.docs.find(urls.get(work)!))!;
      expect(doc.external.canvas).toBe(made[0]);
    }
    expect(canvas.state.submissions.find((s) => s.id === placeholder.id)!.score).toBe(7);
    expect((await engine.docs.find(grade.url))!.external.canvas).toBe(String(placeholder.id));
    // Canvas stores HTML; the document keeps the markdown it was written in.
    const assignment = canvas.state.assignments.find((a) => a.name === "Lab tulip")!;
    expect(assignment.description).toBe("<p>Measure the <strong>tulip</strong> leaf.</p>");
    expect((await engine.docs.find<"assignment">(urls.get("assignment")!))!.description).toBe("Measure the **tulip** leaf.");
    // The reply is threaded under the entry its document answers.
    const [entryId] = madeInCanvas(canvas.state, "entry", "tulip");
    expect(canvas.state.entries.get(41001)!.find((e) => String(e.id) === entryId)!.parent_id).toBe(61001);
    // A new page takes the slug Canvas gave it.
    expect((await engine.docs.find<"page">(urls.get("page")!))!.slug).toBe("notes-tulip");

    // The pull that ends this sync brings only what Canvas made of the work: the grade's
    // submission now graded, the new assignment's submission placeholders.
    expect(await pull()).toMatchObject({ failed: [] });
    const requests = canvas.requests.length;
    const before = await heads();
    expect(await push()).toMatchObject({ sent: 0, created: 0, updated: 0 });
    expect(await pull()).toMatchObject({ created: 0, updated: 0, failed: [] });
    expect(await push()).toMatchObject({ sent: 0 });
    expect(canvas.requests.slice(requests).filter((r) => r.method !== "GET")).toEqual([]);
    expect(await heads()).toEqual(before);
    // The pull found each object under the document it was made as.
    expect(await mappedUrl(db, "canvas", "page", madeInCanvas(canvas.state, "page", "tulip")[0]!)).toBe(urls.get("page"));
  });

  it("sends an edit of each kind, only the fields changed, and nothing echoes back", async () => {
    const { canvas, engine, instance, push, pull, heads } = await setup();
    const change = <K extends Parameters<typeof engine.docs.change>[0]>(url: K, fn: (draft: Record<string, unknown>) => void) => engine.docs.change(url, fn as never);
    await change(urlOf(instance, "assignment", 31001)!, (d) => void (d.title = "Lab 1: onion skin"));
    await change(urlOf(instance, "page", 81001)!, (d) => Object.assign(d, { title: "Welcome to Biology", body: "Welcome. Read the **syllabus** first." }));
    await change(urlOf(instance, "discussion_topic", 41002)!, (d) => void (d.message = "Ask about osmosis here."));
    await change(urlOf(instance, "entry", 61001)!, (d) => void (d.message = "<p>Hi, I'm Priya (edited).</p>"));
    const graded = canvas.state.submissions.find((s) => s.score !== null)!;
    await change(urlOf(instance, "grade", graded.id)!, (d) => void (d.score = 4.5));

    expect(await push()).toMatchObject({ updated: 5, sent: 5, conflicts: 0, failed: [] });
    expect(canvas.state.assignments.find((a) => a.id === 31001)!.name).toBe("Lab 1: onion skin");
    expect(canvas.state.pages.find((p) => p.page_id === 81001)).toMatchObject({ title: "Welcome to Biology", body: "<p>Welcome. Read the <strong>syllabus</strong> first.</p>" });
    // Renamed, the page has a new slug in Canvas, and the document takes it.
    expect((await engine.docs.find<"page">(urlOf(instance, "page", 81001)!))!.slug).toBe("welcome-to-biology");
    expect(canvas.state.topics.find((t) => t.id === 41002)!.message).toBe("<p>Ask about osmosis here.</p>");
    expect(canvas.state.entries.get(41001)!.find((e) => e.id === 61001)!.message).toBe("<p>Hi, I'm Priya (edited).</p>");
    expect(canvas.state.submissions.find((s) => s.id === graded.id)!.score).toBe(4.5);
    const puts = canvas.requests.filter((r) => r.method === "PUT");
    expect(puts).toHaveLength(5);

    const before = await heads();
    expect(await pull()).toMatchObject({ updated: 0, failed: [] });
    expect(await push()).toMatchObject({ sent: 0 });
    expect(await heads()).toEqual(before);
    expect(canvas.requests.filter((r) => r.method === "PUT")).toHaveLength(5);
  });

  it("creates an assignment with its submission types, text entry when none were chosen, and sends a change of them", async () => {
    const { canvas, engine, instance, course, push, pull } = await setup();
    await writeLocalWork(engine.docs, instance, "assignment", "plain");
    const upload = await engine.docs.create("assignment", { course, title: "Lab upload", published: true, submissionTypes: ["online_upload", "online_url"] });
    await engine.docs.change<"assignment">(urlOf(instance, "assignment", 31002)!, (d) => void (d.submissionTypes = ["online_upload", "on_paper"]));

    expect(await push()).toMatchObject({ created: 2, updated: 1, failed: [] });
    expect(canvas.state.assignments.find((a) => a.name === "Lab plain")!.submission_types).toEqual(["online_text_entry"]);
    expect(canvas.state.assignments.find((a) => a.name === "Lab upload")!.submission_types).toEqual(["online_upload", "online_url"]);
    expect(canvas.state.assignments.find((a) => a.id === 31002)!.submission_types).toEqual(["online_upload", "on_paper"]);

    // Pulled back, Canvas's lists are the documents' own: nothing changes, nothing is sent again.
    expect(await pull()).toMatchObject({ failed: [] });
    expect((await engine.docs.find<"assignment">(upload.url))!.submissionTypes).toEqual(["online_upload", "online_url"]);
    expect(await push()).toMatchObject({ sent: 0 });
  });

  it("sends a due date written as the course's wall time as that instant, whatever the token user's zone, and it comes back the same", async () => {
    const { canvas, engine, instance, push, pull } = await setup();
    // Canvas would read a time without an offset in the teacher's own zone, not the course's.
    canvas.state.users.find((u) => u.id === 7001)!.time_zone = "Asia/Tokyo";
    const url = await writeLocalWork(engine.docs, instance, "assignment", "clock");
    await engine.docs.change<"assignment">(url, (d) => void (d.dueAt = "2025-01-28T23:59:00"));
    await engine.docs.change<"assignment">(urlOf(instance, "assignment", 31001)!, (d) => void (d.lockAt = "2025-02-04T23:59:00-06:00"));
    expect(await push()).toMatchObject({ created: 1, updated: 1, failed: [] });
    expect(canvas.state.assignments.find((a) => a.name === "Lab clock")!.due_at).toBe("2025-01-29T05:59:00Z");
    expect(canvas.state.assignments.find((a) => a.id === 31001)!.lock_at).toBe("2025-02-05T05:59:00Z");

    // The documents keep the times as written, which Canvas now holds as the same instants.
    await pull();
    expect((await engine.docs.find<"assignment">(url))!.dueAt).toBe("2025-01-28T23:59:00");
    expect(canvasInstant((await engine.docs.find<"assignment">(url))!.dueAt, "America/Chicago")).toBe(canvas.state.assignments.find((a) => a.name === "Lab clock")!.due_at);
    expect(Date.parse((await engine.docs.find<"assignment">(urlOf(instance, "assignment", 31001)!))!.lockAt!)).toBe(Date.parse("2025-02-05T05:59:00Z"));
    expect(await push()).toMatchObject({ sent: 0 });
  });

  it("makes a Discourse topic and its replies Canvas discussion objects, threaded, and the pull updates the same documents", async () => {
    const { canvas, engine, course, push, pull, heads } = await setup();
    const topic = await engine.docs.create("discussion_topic", { course, title: "Microscope tips", message: "Use the **fine** focus last.", external: { discourse: "303" } });
    const reply = await engine.docs.create("post", { course, topic: topic.url, parent: null, message: "Clean the lens first.", external: { discourse: "1008" } });
    const nested = await engine.docs.create("post", { course, topic: topic.url, parent: reply.url, message: "With *lens paper*, not a tissue.", external: { discourse: "1009" } });

    expect(await push()).toMatchObject({ created: 3, failed: [], deferred: 0 });
    const made = canvas.state.topics.find((t) => t.title === "Microscope tips")!;
    expect(made.message).toBe("<p>Use the <strong>fine</strong> focus last.</p>");
    const entries = canvas.state.entries.get(made.id)!;
    const top = entries.find((e) => e.message === "<p>Clean the lens first.</p>")!;
    expect(top.parent_id).toBeNull();
    expect(entries.find((e) => e.message === "<p>With <em>lens paper</em>, not a tissue.</p>")!.parent_id).toBe(top.id);
    for (const doc of [topic, reply, nested]) expect((await engine.docs.find(doc.url))!.external).toMatchObject({ discourse: doc.external.discourse, canvas: expect.any(String) });

    const posts = (await engine.docs.records({ kind: "post" })).length;
    const before = await heads();
    expect(await pull()).toMatchObject({ created: 0, updated: 0, failed: [] });
    expect(await heads()).toEqual(before);
    expect((await engine.docs.find<"discussion_topic">(topic.url))!.message).toBe("Use the **fine** focus last.");
    expect(await push()).toMatchObject({ sent: 0 });

    // A reply written in Canvas to the mirrored topic joins the topic's own document.
    canvas.state.entries.get(made.id)!.push({ id: 990001, user_id: 7101, parent_id: top.id, created_at: "2025-01-22T12:00:00Z", updated_at: "2025-01-22T12:00:00Z", message: "<p>Thanks!</p>" });
    expect(await pull()).toMatchObject({ created: 1, failed: [] });
    expect((await engine.docs.records({ kind: "post" })).length).toBe(posts + 1);
    const thanks = (await engine.docs.list(course, "post")).find((p) => p.message === "<p>Thanks!</p>")!;
    expect(thanks).toMatchObject({ topic: topic.url, parent: reply.url });
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

  it("does not send again what Canvas refused until the document is edited", async () => {
    const { canvas, engine, course, push } = await setup();
    const blank = await engine.docs.create("assignment", { course, title: "" });
    const first = await push();
    expect(first.failed).toEqual([{ url: blank.url, error: expect.stringContaining("invalid") }]);
    expect(await push()).toMatchObject({ sent: 0, failed: [] });
    await engine.docs.change<"assignment">(blank.url, (d) => void (d.title = "Lab with a name"));
    expect(await push()).toMatchObject({ created: 1, failed: [] });
    expect(canvas.state.assignments.filter((a) => a.name === "Lab with a name")).toHaveLength(1);
  });
});

describe("an object deleted in Canvas while a change made here was on its way", () => {
  it("deletes the document here too, records the lost change as a conflict, and sends nothing again", async () => {
    const { canvas, engine, instance, db, push } = await setup();
    const url = urlOf(instance, "assignment", 31001)!;
    await engine.docs.change<"assignment">(url, (draft) => {
      draft.title = "Lab 1: Microscopes (revised)";
    });
    canvas.state.assignments.splice(canvas.state.assignments.findIndex((a) => a.id === 31001), 1);

    expect(await push()).toMatchObject({ deleted: 1, failed: [], retrying: 0 });
    expect(await engine.docs.find(url)).toBeUndefined();
    const conflicts = await db.selectFrom("remote_conflicts").selectAll().where("doc_url", "=", url).execute();
    expect(conflicts).toEqual([expect.objectContaining({ system: "canvas", field: "(object)", remote_value: "deleted" })]);
    expect(await db.selectFrom("outbox").select("status").where("doc_url", "=", url).execute()).toEqual([{ status: "conflict" }]);
    const requests = canvas.requests.length;
    expect(await push()).toMatchObject({ deleted: 0, sent: 0, failed: [] });
    expect(canvas.requests.slice(requests).filter((r) => r.method !== "GET")).toEqual([]);
  });
});
