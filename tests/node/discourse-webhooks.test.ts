import { EventEmitter, once } from "node:events";
import { writeFileSync } from "node:fs";
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { writeConnectorSettings, type ConnectorSettings } from "../../src/connectors/connector-config.js";
import { connectorDb } from "../../src/connectors/connector-tables.js";
import { discourseInstance, urlOf } from "../../src/connectors/discourse/discourse-mapping.js";
import type { DocUrl } from "../../src/crdt/ids.js";
import { Engine } from "../../src/engine.js";
import { SyncNode } from "../../src/node/sync-node.js";
import { FakeDiscourse, signDiscourseWebhook, type DiscourseWebhookOptions } from "../../src/testing/fake-discourse/index.js";
import { makeTempDir } from "../../src/testing/temp-dir.js";
import type { Logger } from "../../src/util/logger.js";

const SECRET = "the-webhook-secret-set-in-discourse";
/** A reply of topic 301 in the fake's fixtures. */
const POST_ID = 1003;

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Log lines as JSON text, to look for credentials in them. */
function captureLogs(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const log = (level: string) => (obj: object, msg?: string) => void lines.push(JSON.stringify({ level, ...obj, msg }));
  return { logger: { debug: log("debug"), info: log("info"), warn: log("warn"), error: log("error") }, lines };
}

/** A data directory with a course in it, and the settings of `connectors.json` written for it. */
async function dataDirWith(settings: (course: DocUrl) => ConnectorSettings | null) {
  const temp = makeTempDir("ordo-webhooks-");
  cleanups.push(temp.remove);
  const engine = await Engine.open({ dataDir: temp.dir, create: true });
  const course = (await engine.docs.create("course", { name: "BIO 101", courseCode: "BIO101" } as never)).url;
  await engine.close();
  const written = settings(course);
  if (written) writeConnectorSettings(temp.dir, written);
  return { dir: temp.dir, course };
}

async function startNode(dir: string, logger?: Logger) {
  // Interval 0: only webhooks (and the test) start syncs, so every pull a test sees is one it caused.
  const node = await SyncNode.start({ dataDir: dir, listen: { port: 0 }, discovery: false, connectors: { intervalMs: 0, debounceMs: 20 }, logger });
  cleanups.push(() => node.close());
  return { node, webhookUrl: `${node.url!.replace(/^ws/, "http")}/webhooks/discourse` };
}

describe("Discourse webhooks on a node", () => {
  /**
   * A node connected to a fake forum, first pulled in full. With `deliver`, the fake sends its
   * webhooks to the node (it learns the node's URL once the node listens); without, a test
   * sends deliveries by hand.
   */
  async function setup(options: { deliver?: Omit<DiscourseWebhookOptions, "url" | "secret"> } = {}) {
    const hook: DiscourseWebhookOptions = { url: "http://127.0.0.1:9/", secret: SECRET, ...options.deliver };
    const discourse = await FakeDiscourse.start(options.deliver ? { webhook: hook } : {});
    cleanups.push(() => discourse.close());
    const { dir } = await dataDirWith((course) => ({
      discourse: { url: discourse.url, apiKey: discourse.apiKey, username: discourse.username, categoryId: "12", course, webhookSecret: SECRET },
    }));
    const logs = captureLogs();
    const { node, webhookUrl } = await startNode(dir, logs.logger);
    hook.url = webhookUrl;
    const first = await node.connectors!.sync("discourse");
    expect(first).toMatchObject({ ok: true, result: { pulled: { failed: [] } } });
    await node.engine.whenProjected();

    const postUrl = urlOf(discourseInstance(discourse.url), "post", POST_ID)!;
    /** The post's text in the node's SQL, once every delivery is answered and every sync it asked for is done. */
    const settledMessage = async () => {
      await discourse.webhooks?.flush();
      await node.connectors!.whenIdle();
      await node.engine.whenProjected();
      const row = await node.engine.db.selectFrom("posts").select("message").where("doc_url", "=", postUrl).executeTakeFirst();
      return row?.message;
    };
    const post = (body: string, headers: Record<string, string>) =>
      fetch(webhookUrl, { method: "POST", headers: { "content-type": "application/json", ...headers }, body }).then(async (res) => ({ status: res.status, json: (await res.json()) as unknown }));
    const eventIds = async () => (await connectorDb(node.engine.db).selectFrom("webhook_events").select("event_id").orderBy("event_id").execute()).map((r) => r.event_id);
    /** Requests the node made to the forum so far: each sync reads the category again. */
    const forumReads = () => discourse.requests.filter((r) => r.path.startsWith("/c/12")).length;
    return { discourse, node, postUrl, settledMessage, post, eventIds, forumReads, logs };
  }

  /** A post_edited delivery as Discourse sends it, for the fake's post `POST_ID`. */
  function editedEvent(id: string, raw: string) {
    const body = JSON.stringify({ post: { id: POST_ID, topic_id: 301, post_number: 3, raw, category_id: 12 } });
    const headers = { "x-discourse-event-id": id, "x-discourse-event-type": "post", "x-discourse-event": "post_edited" };
    return { body, headers, signed: { ...headers, "x-discourse-event-signature": signDiscourseWebhook(SECRET, body) } };
  }

  it("takes a signed event and brings the edited post's new text into the node's documents and SQL", async () => {
    const { discourse, node, postUrl, settledMessage, eventIds, logs } = await setup({ deliver: {} });
    const text = "Edited on the forum: osmosis moves water, not the solute.";
    expect(await settledMessage()).not.toBe(text);
    discourse.state.editPost(POST_ID, { raw: text, editor_id: 32 });

    expect(await settledMessage()).toBe(text);
    expect(discourse.webhooks!.deliveries.map((d) => [d.event, d.status])).toEqual([["post_edited", 200]]);
    expect((await node.engine.docs.find<"post">(postUrl))?.message).toBe(text);
    expect(await eventIds()).toEqual([String(discourse.webhooks!.deliveries[0]!.eventId)]);
    for (const line of logs.lines) {
      expect(line).not.toContain(discourse.apiKey);
      expect(line).not.toContain(SECRET);
    }
  });

  it("refuses a wrong signature, a missing one and a body changed after signing with 401, and changes nothing", async () => {
    const { discourse, post, settledMessage, eventIds, forumReads } = await setup();
    const before = await settledMessage();
    const text = "An edit that only a signed webhook may announce here.";
    discourse.state.editPost(POST_ID, { raw: text, editor_id: 32 });
    const reads = forumReads();

    const event = editedEvent("7001", text);
    const refused = [
      await post(event.body, { ...event.headers, "x-discourse-event-signature": signDiscourseWebhook("a guessed secret", event.body) }),
      await post(event.body, event.headers),
      await post(event.body.replace(`"id":${POST_ID}`, '"id":1004'), event.signed),
    ];
    expect(refused.map((r) => r.status)).toEqual([401, 401, 401]);
    expect(await settledMessage()).toBe(before);
    expect(await eventIds()).toEqual([]);
    expect(forumReads()).toBe(reads);

    // The same delivery, signed as it should be, does change the node: the refusals above were no accident.
    expect((await post(event.body, event.signed)).status).toBe(200);
    expect(await settledMessage()).toBe(text);
    expect(forumReads()).toBeGreaterThan(reads);
  });

  it("takes an event id once: the same delivery again answers duplicate and starts no pull", async () => {
    const { discourse, post, settledMessage, eventIds, forumReads } = await setup();
    const text = "An edit whose webhook Discourse delivered twice.";
    discourse.state.editPost(POST_ID, { raw: text, editor_id: 32 });
    const event = editedEvent("7002", text);

    expect(await post(event.body, event.signed)).toEqual({ status: 200, json: { ok: true } });
    expect(await settledMessage()).toBe(text);
    const reads = forumReads();
    expect(await post(event.body, event.signed)).toEqual({ status: 200, json: { ok: true, duplicate: true } });
    await settledMessage();
    expect(forumReads()).toBe(reads);
    expect(await eventIds()).toEqual(["7002"]);
  });

  it("ends with the latest text when two edits of one post arrive in reverse order", async () => {
    const { discourse, settledMessage, eventIds } = await setup({ deliver: { reorder: true, delayMs: 5 } });
    const older = "The first edit of this reply, delivered last.";
    const newer = "The second and latest edit of this reply, delivered first.";
    discourse.state.editPost(POST_ID, { raw: older, editor_id: 32 });
    discourse.state.editPost(POST_ID, { raw: newer, editor_id: 32 });

    expect(await settledMessage()).toBe(newer);
    // The deliveries did arrive swapped: the older edit's body came last, and was taken.
    const deliveries = discourse.webhooks!.deliveries;
    expect(deliveries.map((d) => (JSON.parse(d.body) as { post: { raw: string } }).post.raw)).toEqual([newer, older]);
    expect(deliveries.map((d) => d.status)).toEqual([200, 200]);
    expect(await eventIds()).toHaveLength(2);
  });

  it("refuses every delivery while no webhook secret is configured", async () => {
    const discourse = await FakeDiscourse.start();
    cleanups.push(() => discourse.close());
    const { dir } = await dataDirWith((course) => ({ discourse: { url: discourse.url, apiKey: discourse.apiKey, username: discourse.username, categoryId: "12", course } }));
    const { webhookUrl } = await startNode(dir);
    const event = editedEvent("7003", "Signed with a secret this node does not have.");
    const res = await fetch(webhookUrl, { method: "POST", headers: event.signed, body: event.body });
    expect(res.status).toBe(401);
  });

  it("answers 413 to a body past the limit, declared or streamed, and 405 to a GET", async () => {
    const { node, eventIds } = await setup();
    const url = `${node.url!.replace(/^ws/, "http")}/webhooks/discourse`;
    const huge = JSON.stringify({ post: { id: POST_ID, raw: "x".repeat(1024 * 1024) } });
    const signed = { "x-discourse-event-signature": signDiscourseWebhook(SECRET, huge), "x-discourse-event-id": "7004", "x-discourse-event-type": "post", "x-discourse-event": "post_edited" };
    expect((await fetch(url, { method: "POST", headers: signed, body: huge })).status).toBe(413);
    // Without a Content-Length: counted while it arrives.
    const chunk = new TextEncoder().encode(huge.slice(0, 100_000));
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 11; i++) controller.enqueue(chunk);
        controller.close();
      },
    });
    expect((await fetch(url, { method: "POST", headers: signed, body: stream, duplex: "half" } as RequestInit)).status).toBe(413);
    expect(await eventIds()).toEqual([]);
    expect((await fetch(url)).status).toBe(405);
  });

  it("logs a failing sync without the credentials and keeps serving", async () => {
    const discourse = await FakeDiscourse.start();
    cleanups.push(() => discourse.close());
    const wrongKey = "a-wrong-api-key-that-must-never-be-logged-0123456789";
    const { dir } = await dataDirWith((course) => ({ discourse: { url: discourse.url, apiKey: wrongKey, username: discourse.username, categoryId: "12", course, webhookSecret: SECRET } }));
    const logs = captureLogs();
    const { node } = await startNode(dir, logs.logger);
    const report = await node.connectors!.sync("discourse");
    expect(report.ok && report.result.pulled.failed.length).toBeGreaterThan(0);
    expect(logs.lines.some((line) => line.includes("connector sync finished with failures"))).toBe(true);
    for (const line of logs.lines) {
      expect(line).not.toContain(wrongKey);
      expect(line).not.toContain(SECRET);
    }
    expect((await fetch(`${node.url!.replace(/^ws/, "http")}/healthz`)).status).toBe(200);
  });
});

describe("stopping a node with connectors", () => {
  it("cuts a sync under way short instead of waiting for a forum that does not answer", async () => {
    const requests: ServerResponse[] = [];
    const arrived = new EventEmitter();
    const silent = createServer((_req, res) => {
      requests.push(res);
      arrived.emit("request");
    });
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise<void>((resolve) => {
      silent.closeAllConnections();
      silent.close(() => resolve());
    }));
    const forum = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    const { dir } = await dataDirWith((course) => ({ discourse: { url: forum, apiKey: "key", username: "system", categoryId: "12", course } }));
    const { node } = await startNode(dir);
    const firstRequest = once(arrived, "request");
    const report = node.connectors!.sync("discourse");
    await firstRequest;
    await node.close();
    // Each call was aborted, and none was retried after the stop: the sync ended with what it had.
    expect((await report).ok).toBe(true);
    expect(requests.length).toBeLessThanOrEqual(2);
  });
});

describe("a node without connectors", () => {
  it("starts, serves, and answers 404 to Discourse webhooks", async () => {
    const { dir } = await dataDirWith(() => null);
    const { node, webhookUrl } = await startNode(dir);
    expect(node.connectors).toBeNull();
    const health = await fetch(`${node.url!.replace(/^ws/, "http")}/healthz`);
    expect(health.status).toBe(200);
    const event = JSON.stringify({ ping: "OK" });
    const res = await fetch(webhookUrl, { method: "POST", headers: { "x-discourse-event-signature": signDiscourseWebhook(SECRET, event), "x-discourse-event-id": "1" }, body: event });
    expect(res.status).toBe(404);
  });

  it("answers 404 to Discourse webhooks when only Canvas is connected", async () => {
    const { dir } = await dataDirWith(() => ({ canvas: { url: "http://127.0.0.1:9", token: "canvas-token", courseId: "4201" } }));
    const { node, webhookUrl } = await startNode(dir);
    expect(node.connectors?.systems).toEqual(["canvas"]);
    expect((await fetch(webhookUrl, { method: "POST", body: "{}" })).status).toBe(404);
  });

  it("runs without connectors when connectors.json cannot be read, and says why", async () => {
    const { dir } = await dataDirWith(() => null);
    writeFileSync(join(dir, "connectors.json"), '{"discourse": {"apiKey": "half-written-secret', { mode: 0o600 });
    const logs = captureLogs();
    const { node } = await startNode(dir, logs.logger);
    expect(node.connectors).toBeNull();
    expect(logs.lines.some((line) => line.includes("connector settings unreadable"))).toBe(true);
    expect(logs.lines.join("\n")).not.toContain("half-written-secret");
  });
});
