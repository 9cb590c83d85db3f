import { afterEach, describe, expect, it } from "vitest";
import { syncCanvas, syncDiscourse } from "../../src/connectors/connector-sync.js";
import { urlOf } from "../../src/connectors/discourse/discourse-mapping.js";
import { discourseTestNode } from "../../src/testing/discourse-node.js";
import { mirroredCourse } from "./mirror-fixture.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe("a Discourse create whose answer is lost", () => {
  it("is not sent again by the HTTP client, whose retry could come after Discourse's memo of identical creates lapsed", async () => {
    // No memo: as when throttled retries (429, Retry-After 42 s) outlast its 120 s.
    const node = await discourseTestNode({ fake: { settings: { createMemoMs: 0 } } });
    cleanups.push(node.close);
    await node.pull();
    const text = "Guard cells swelled once the slide was in the light again.";
    const reply = await node.engine.docs.create("post", { course: node.course, topic: urlOf(node.instance, "topic", 301), author: null, parent: null, message: text });
    node.discourse.faults.inject({ kind: "lose-answer", method: "POST", path: "/posts.json" });

    expect(await node.push()).toMatchObject({ created: 0, retrying: 1, failed: [] });
    expect(await node.push()).toMatchObject({ recovered: 1, failed: [] });
    const made = [...node.discourse.state.posts.values()].filter((p) => p.raw.includes(text));
    expect(made).toHaveLength(1);
    expect((await node.engine.docs.find<"post">(reply.url))!.external.discourse).toBe(String(made[0]!.id));
    expect(await node.outbox.counts()).toEqual([{ system: "discourse", status: "sent", count: 1 }]);
  });

  it("is not pulled as a document of its own meanwhile, so Canvas never gets a second copy of it", async () => {
    const { store, db, course, canvas, discourse, canvasSettings, discourseSettings } = await mirroredCourse(cleanups);

    const title = "Field notes from the pond walk";
    const topic = await store.create("discussion_topic", { course, title, message: "Post what you found under the lens.", published: true });
    discourse.faults.inject({ kind: "lose-answer", method: "POST", path: "/posts.json" });
    // Discourse makes the topic, its answer is lost; the pull after the push then lists it.
    expect((await syncDiscourse({ store, db, settings: discourseSettings })).pulled).toMatchObject({ deferred: 1 });
    const copies = async () => (await store.list(course, "discussion_topic")).filter((t) => t.title === title);
    expect(await copies()).toHaveLength(1);
    for (let round = 0; round < 2; round++) {
      await syncCanvas({ store, db, settings: canvasSettings });
      await syncDiscourse({ store, db, settings: discourseSettings });
    }

    const inCanvas = canvas.state.topics.filter((t) => t.title === title);
    const inDiscourse = [...discourse.state.topics.values()].filter((t) => t.title === title);
    expect(inCanvas).toHaveLength(1);
    expect(inDiscourse).toHaveLength(1);
    expect((await copies()).map((t) => [t.url, t.external])).toEqual([[topic.url, { canvas: String(inCanvas[0]!.id), discourse: String(inDiscourse[0]!.id) }]]);
  });
});
