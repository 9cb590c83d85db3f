import { spawn } from "node:child_process";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { canvasClient } from "../../src/connectors/canvas/canvas-client.js";
import { canvasInstance, urlOf } from "../../src/connectors/canvas/canvas-mapping.js";
import { pullCanvasCourse } from "../../src/connectors/canvas/canvas-pull.js";
import { pushCanvasChanges } from "../../src/connectors/canvas/canvas-push.js";
import { connectorDb } from "../../src/connectors/connector-tables.js";
import { Outbox } from "../../src/connectors/outbox.js";
import { mappedUrl } from "../../src/connectors/remote-records.js";
import type { DocUrl } from "../../src/crdt/ids.js";
import { Engine } from "../../src/engine.js";
import { LOCAL_WORK, madeInCanvas, writeLocalWork, type LocalWork } from "../../src/testing/canvas-local-work.js";
import { FakeCanvas } from "../../src/testing/fake-canvas/index.js";
import { makeTempDir } from "../../src/testing/temp-dir.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const REMOTE_TYPE: Record<LocalWork, string> = { assignment: "assignment", page: "page", topic: "discussion_topic", announcement: "discussion_topic", entry: "entry" };

/** A fake Canvas, and a node's directory that pulled course 4201; `open` opens the node (again). */
async function setup() {
  const canvas = await FakeCanvas.start({ clock: () => Date.parse("2025-01-22T12:00:00Z") });
  cleanups.push(() => canvas.close());
  const temp = makeTempDir();
  cleanups.push(temp.remove);
  const instance = canvasInstance(canvas.url);
  const client = canvasClient({ url: canvas.url, token: () => canvas.token, sleep: async () => undefined });
  const open = async () => {
    const engine = await Engine.open({ dataDir: temp.dir, create: true });
    const db = connectorDb(engine.db);
    return {
      engine,
      db,
      push: () => pushCanvasChanges({ client, store: engine.docs, db, outbox: new Outbox(db), courseId: "4201" }),
      pull: () => pullCanvasCourse({ client, instance, store: engine.docs, db, courseId: "4201" }),
    };
  };
  const first = await open();
  await first.pull();
  const posts = () => canvas.requests.filter((r) => r.method === "POST").length;
  return { canvas, instance, dir: temp.dir, open, first, posts };
}

/** A push whose creates Canvas carries out, each answer lost to a server error (`status`). */
function pushWithAnswersLost(canvas: FakeCanvas, node: { engine: Engine; db: ReturnType<typeof connectorDb> }, status: number) {
  const realFetch = globalThis.fetch;
  const client = canvasClient({
    url: canvas.url,
    token: () => canvas.token,
    sleep: async () => undefined,
    fetch: async (input, init) => {
      const response = await realFetch(input, init);
      return init?.method === "POST" ? new Response("", { status }) : response;
    },
  });
  return pushCanvasChanges({ client, store: node.engine.docs, db: node.db, outbox: new Outbox(node.db), courseId: "4201" });
}

describe("a create reaches Canvas exactly once", () => {
  it.each(LOCAL_WORK)("a %s: killed between sending and recording, the restarted push finds the one it made", async (work) => {
    const { canvas, instance, dir, open, first, posts } = await setup();
    const url = await writeLocalWork(first.engine.docs, instance, work, "onion");
    await first.engine.close();

    const child = spawn(process.execPath, ["--import", "tsx", join(import.meta.dirname, "../fixtures/canvas-push-child.ts"), dir, canvas.url, canvas.token, "4201"], { stdio: ["ignore", "pipe", "inherit"] });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (chunk: Buffer) => chunk.toString().includes("sent") && resolve());
      child.once("exit", (code) => reject(new Error(`the child exited (${code}) before sending`)));
    });
    child.kill("SIGKILL");
    await new Promise((resolve) => child.once("exit", resolve));
    expect(posts()).toBe(1);
    const [made] = madeInCanvas(canvas.state, work, "onion");
    expect(made).toBeDefined();

    const node = await open();
    cleanups.push(() => node.engine.close());
    expect(await node.push()).toMatchObject({ recovered: 1, created: 0, sent: 0, failed: [] });
    expect(posts()).toBe(1);
    expect(madeInCanvas(canvas.state, work, "onion")).toEqual([made]);
    expect((await node.engine.docs.find(url))!.external.canvas).toBe(made);
    expect(await mappedUrl(node.db, "canvas", REMOTE_TYPE[work], made!)).toBe(url);

    // Settled for good: nothing is sent again, and the pull updates the same document.
    expect(await node.push()).toMatchObject({ sent: 0, recovered: 0 });
    // (A published assignment gains Canvas's submission placeholders: those are new documents.)
    const kind = (await node.engine.docs.find(url))!.kind;
    const documents = (await node.engine.docs.records({ kind })).length;
    expect(await node.pull()).toMatchObject({ failed: [] });
    expect((await node.engine.docs.records({ kind })).length).toBe(documents);
    expect(await node.push()).toMatchObject({ sent: 0 });
    expect(posts()).toBe(1);
  });

  it("sends again a create whose connection dropped before Canvas read it, and makes one object", async () => {
    const { canvas, instance, first, posts } = await setup();
    cleanups.push(() => first.engine.close());
    const url = await writeLocalWork(first.engine.docs, instance, "assignment", "cork");
    canvas.faults.inject("POST /courses/4201/assignments", "drop-connection", 1);
    // The client does not repeat a create on its own: the outcome is unknown, the entry stays in doubt.
    expect(await first.push()).toMatchObject({ created: 0, retrying: 1 });
    expect(await new Outbox(first.db).inDoubt("canvas")).toHaveLength(1);
    expect(madeInCanvas(canvas.state, "assignment", "cork")).toEqual([]);

    expect(await first.push()).toMatchObject({ created: 1, recovered: 0, failed: [] });
    const made = madeInCanvas(canvas.state, "assignment", "cork");
    expect(made).toHaveLength(1);
    expect((await first.engine.docs.find(url))!.external.canvas).toBe(made[0]);
    expect(posts()).toBe(2);
  });

  it("finds a create whose answer was lost to a server error after Canvas made it", async () => {
    const { canvas, instance, first } = await setup();
    cleanups.push(() => first.engine.close());
    const url = await writeLocalWork(first.engine.docs, instance, "page", "fern");
    // Canvas makes the page, then the answer is a 500.
    expect(await pushWithAnswersLost(canvas, first, 500)).toMatchObject({ created: 0, retrying: 1 });
    expect(madeInCanvas(canvas.state, "page", "fern")).toHaveLength(1);

    expect(await first.push()).toMatchObject({ recovered: 1, created: 0 });
    const made = madeInCanvas(canvas.state, "page", "fern");
    expect(made).toHaveLength(1);
    expect((await first.engine.docs.find(url as DocUrl))!.external.canvas).toBe(made[0]);
    expect(urlOf(instance, "page", made[0]!)).not.toBe(url);
  });

  it("recognises its own reply, not a classmate's with the same words, when settling a lost answer", async () => {
    const { canvas, instance, first } = await setup();
    cleanups.push(() => first.engine.close());
    const topic = urlOf(instance, "discussion_topic", 41001)!;
    const reply = await first.engine.docs.create("post", { course: urlOf(instance, "course", "4201"), topic, message: "Thanks, that helps!" });
    expect(await pushWithAnswersLost(canvas, first, 502)).toMatchObject({ retrying: 1 });
    // A student writes the same words just after.
    const student = await fetch(`${canvas.url}/api/v1/courses/4201/discussion_topics/41001/entries`, { method: "POST", headers: { authorization: `Bearer ${canvas.tokenFor(7101)}`, "content-type": "application/x-www-form-urlencoded" }, body: "message=Thanks%2C%20that%20helps!" });
    const theirs = String(((await student.json()) as { id: string | number }).id);

    expect(await first.push()).toMatchObject({ recovered: 1, created: 0, failed: [] });
    const mine = (await first.engine.docs.find<"post">(reply.url))!.external.canvas;
    expect(mine).toBeDefined();
    expect(mine).not.toBe(theirs);
  });

  it("makes one object when two pushes run at once", async () => {
    const { canvas, instance, first, posts } = await setup();
    cleanups.push(() => first.engine.close());
    await writeLocalWork(first.engine.docs, instance, "assignment", "birch");
    await writeLocalWork(first.engine.docs, instance, "entry", "birch");
    const results = await Promise.all([first.push(), first.push()]);
    expect(results.map((r) => r.created).reduce((a, b) => a + b)).toBe(2);
    expect(madeInCanvas(canvas.state, "assignment", "birch")).toHaveLength(1);
    expect(madeInCanvas(canvas.state, "entry", "birch")).toHaveLength(1);
    expect(posts()).toBe(2);
  });

  it("leaves what an unsettled create may have made to the push, when a pull runs first, and makes one object", async () => {
    const { canvas, instance, first, posts } = await setup();
    cleanups.push(() => first.engine.close());
    await writeLocalWork(first.engine.docs, instance, "assignment", "moss");
    // Canvas makes the assignment and the answer is lost; then the listing cannot be read to settle it.
    expect(await pushWithAnswersLost(canvas, first, 502)).toMatchObject({ created: 0, retrying: 1 });
    canvas.faults.inject("GET /courses/4201/assignments", 500, 5);
    expect(await first.push()).toMatchObject({ recovered: 0, created: 0, retrying: 1 });
    expect(madeInCanvas(canvas.state, "assignment", "moss")).toHaveLength(1);
    const assignments = (await first.engine.docs.records({ kind: "assignment" })).length;

    // The pull reads the listing again and sees the new assignment: not made a second document.
    expect(await first.pull()).toMatchObject({ deferred: 1, failed: [] });
    expect((await first.engine.docs.records({ kind: "assignment" })).length).toBe(assignments);
    expect(await first.push()).toMatchObject({ recovered: 1, created: 0, failed: [] });
    expect(await first.push()).toMatchObject({ sent: 0 });
    expect(madeInCanvas(canvas.state, "assignment", "moss")).toHaveLength(1);
    expect(posts()).toBe(1);
    expect(await first.pull()).toMatchObject({ deferred: 0, created: 0, failed: [] });
    expect((await first.engine.docs.records({ kind: "assignment" })).length).toBe(assignments);
  });
});
