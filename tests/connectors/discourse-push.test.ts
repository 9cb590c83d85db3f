import { spawn } from "node:child_process";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { connectorDb } from "../../src/connectors/connector-tables.js";
import { discourseClient } from "../../src/connectors/discourse/discourse-client.js";
import { discourseInstance, urlOf } from "../../src/connectors/discourse/discourse-mapping.js";
import { pullDiscourseCategory } from "../../src/connectors/discourse/discourse-pull.js";
import { pushDiscourseReplies } from "../../src/connectors/discourse/discourse-push.js";
import { Outbox } from "../../src/connectors/outbox.js";
import { newDocUrl } from "../../src/crdt/ids.js";
import { Engine } from "../../src/engine.js";
import { FakeDiscourse } from "../../src/testing/fake-discourse/index.js";
import { makeTempDir } from "../../src/testing/temp-dir.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const course = newDocUrl();

/** A node that pulled category 12, with one reply written here to topic 301. */
async function nodeWithReply(discourse: FakeDiscourse, dataDir: string, message: string) {
  const engine = await Engine.open({ dataDir, create: true });
  const db = connectorDb(engine.db);
  const client = discourseClient({ url: discourse.url, apiKey: () => discourse.apiKey, username: discourse.username, sleep: async () => undefined });
  const instance = discourseInstance(discourse.url);
  await pullDiscourseCategory({ client, instance, store: engine.docs, db, categoryId: "12", course });
  const reply = await engine.docs.create("post", { course, topic: urlOf(instance, "topic", 301), author: null, parent: null, message });
  const push = () => pushDiscourseReplies({ client, store: engine.docs, db, outbox: new Outbox(db), course });
  return { engine, reply, push };
}

const posts = (discourse: FakeDiscourse) => discourse.requests.filter((r) => r.method === "POST" && r.path.startsWith("/posts")).length;

describe("replies written here reach Discourse exactly once", () => {
  it("sends a new reply once, and a pull brings it back as the same document, without the mark", async () => {
    const discourse = await FakeDiscourse.start();
    cleanups.push(() => discourse.close());
    const temp = makeTempDir();
    cleanups.push(temp.remove);
    const { engine, reply, push } = await nodeWithReply(discourse, temp.dir, "Onion cells are rectangular, like bricks.");
    cleanups.push(() => engine.close());
    expect(await push()).toMatchObject({ created: 1, failed: [] });
    expect(await push()).toMatchObject({ created: 0 });
    expect(posts(discourse)).toBe(1);
    const remoteId = (await engine.docs.find<"post">(reply.url))!.external.discourse!;
    expect(discourse.state.posts.get(Number(remoteId))?.raw).toContain("Onion cells are rectangular, like bricks.");
    // The next pull updates the reply's own document: no second copy, and the mark stays out of the text.
    const before = (await engine.docs.records({ kind: "post" })).length;
    await pullDiscourseCategory({ client: discourseClient({ url: discourse.url, apiKey: () => discourse.apiKey, username: discourse.username }), instance: discourseInstance(discourse.url), store: engine.docs, db: connectorDb(engine.db), categoryId: "12", course });
    expect((await engine.docs.records({ kind: "post" })).length).toBe(before);
    expect((await engine.docs.find<"post">(reply.url))!.message).toBe("Onion cells are rectangular, like bricks.");
  });

  it("after a crash between sending and recording, finds the post it made instead of making a second", async () => {
    const discourse = await FakeDiscourse.start();
    cleanups.push(() => discourse.close());
    const temp = makeTempDir();
    cleanups.push(temp.remove);
    const first = await nodeWithReply(discourse, temp.dir, "Chloroplasts were green dots near the walls.");
    await first.engine.close();

    const child = spawn(process.execPath, ["--import", "tsx", join(import.meta.dirname, "../fixtures/discourse-push-child.ts"), temp.dir, discourse.url, discourse.apiKey, discourse.username, course], { stdio: ["ignore", "pipe", "inherit"] });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (chunk: Buffer) => chunk.toString().includes("sent") && resolve());
      child.once("exit", (code) => reject(new Error(`the child exited (${code}) before sending`)));
    });
    child.kill("SIGKILL");
    await new Promise((resolve) => child.once("exit", resolve));
    expect(posts(discourse)).toBe(1);

    const engine = await Engine.open({ dataDir: temp.dir });
    cleanups.push(() => engine.close());
    const db = connectorDb(engine.db);
    const client = discourseClient({ url: discourse.url, apiKey: () => discourse.apiKey, username: discourse.username, sleep: async () => undefined });
    const result = await pushDiscourseReplies({ client, store: engine.docs, db, outbox: new Outbox(db), course });
    expect(result).toMatchObject({ created: 0, recovered: 1, failed: [] });
    expect(posts(discourse)).toBe(1);
    const made = [...discourse.state.posts.values()].filter((p) => p.raw.includes("Chloroplasts were green dots"));
    expect(made).toHaveLength(1);
    expect((await engine.docs.find<"post">(first.reply.url))!.external.discourse).toBe(String(made[0]!.id));
  });
});
