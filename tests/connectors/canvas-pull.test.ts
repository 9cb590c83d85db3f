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
  return node;
}

describe("pulling a Canvas course", () => {
  it("brings the course in as documents and SQL rows, and a second pull changes nothing", async () => {
    const { engine, instance, pull } = await setup();
    const first = await pull();
    expect(first.failed).toEqual([]);
    expect(first.created).toBeGreaterThan(20);
    await engine.whenProjected();
    const course = urlOf(instance, "course", "4201")!;
    const titles = await engine.db.selectFrom("assignments").select("title").where("course_url", "=", course).orderBy("title").execute();
    expect(titles.length).toBeGreaterThan(0);
    expect(await engine.db.selectFrom("posts").select("doc_url").execute()).not.toHaveLength(0);
    expect(await engine.db.selectFrom("pages").select("body").where("slug", "=", "welcome-to-bio-101").executeTakeFirst()).toMatchObject({ body: expect.stringContaining("<") });

    const second = await pull();
    expect(second).toMatchObject({ created: 0, updated: 0, deleted: 0, failed: [] });
    expect(second.unchanged).toBe(first.created + first.updated + first.unchanged);
  });

  it("waits out throttling and reads the threads from the entry lists while /view is being built", async () => {
    const { canvas, pull } = await setup();
    canvas.faults.inject("GET /courses/4201/assignments", "throttle-403", 2);
    canvas.faults.inject("GET /courses/4201/discussion_topics/41001/view", 503, 5);
    const result = await pull();
    expect(result.failed).toEqual([]);
    expect(result.created).toBeGreaterThan(20);
  });

  it("takes an object gone from a full listing as deleted, and keeps everything when a listing fails", async () => {
    const { canvas, engine, instance, pull } = await setup();
    await pull();
    const [gone] = canvas.state.assignments.splice(0, 1);
    const url = urlOf(instance, "assignment", String(gone!.id))!;
    canvas.faults.inject("GET /courses/4201/pages", 500, 10);
    const result = await pull();
    // The assignment, and its submissions, which Canvas no longer lists either; nothing else.
    const deleted = (await engine.docs.records({ includeDeleted: true })).filter((r) => r.deleted);
    expect(result.deleted).toBe(deleted.length);
    for (const record of deleted) {
      const entity = await engine.docs.find<"submission">(`automerge:${record.id}` as never, { includeDeleted: true });
      expect(record.kind === "assignment" ? entity!.url : entity!.assignment).toBe(url);
    }
    expect(result.incomplete).toEqual(["page"]);
    expect(await engine.docs.find(url)).toBeUndefined();
    expect((await engine.docs.find(url, { includeDeleted: true }))?.tombstone).not.toBeNull();
    // The pages a failed listing could not show are still there.
    expect(await engine.docs.list(urlOf(instance, "course", "4201")!, "page")).not.toHaveLength(0);
  });

  it("takes no topic as deleted while either of the two listings topics come from failed", async () => {
    const { canvas, engine, instance, pull } = await setup();
    await pull();
    const course = urlOf(instance, "course", "4201")!;
    const topics = (await engine.docs.list(course, "discussion_topic")).length;
    // The plain topic listing fails for good; the announcements listing, read next, works.
    canvas.faults.inject("GET /courses/4201/discussion_topics", 500, 5);
    const result = await pull();
    expect(result).toMatchObject({ deleted: 0, incomplete: ["discussion_topic"] });
    expect(await engine.docs.list(course, "discussion_topic")).toHaveLength(topics);
  });

  it("keeps a page's body when the page cannot be read, and reports it", async () => {
    const { canvas, engine, instance, pull } = await setup();
    await pull();
    const url = urlOf(instance, "page", 81001)!;
    const body = (await engine.docs.find<"page">(url))!.body;
    expect(body.length).toBeGreaterThan(0);
    canvas.faults.inject("GET /courses/4201/pages/page_id:81001", 500, 5);
    const result = await pull();
    expect(result.failed).toEqual([{ what: "page 81001", error: expect.stringContaining("500") }]);
    expect(result.deleted).toBe(0);
    expect((await engine.docs.find<"page">(url))!.body).toBe(body);
  });
});
