import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { connectorDb } from "../../src/connectors/connector-tables.js";
import { DiscourseWebhookReceiver, parseDiscourseWebhook, verifyDiscourseSignature, type DiscourseWebhookEvent, type WebhookHeaders } from "../../src/connectors/discourse/discourse-webhook.js";
import { openProjectionDb } from "../../src/projection/projection-db.js";
import { signDiscourseWebhook } from "../../src/testing/fake-discourse/index.js";
import { makeTempDir } from "../../src/testing/temp-dir.js";

/** The contract's recorded delivery: a real HMAC over `body_raw` with the secret it names. */
const fixture = JSON.parse(readFileSync(new URL("../fixtures/lms/discourse/webhook_post_edited.json", import.meta.url), "utf8")) as {
  secret: string;
  headers: Record<string, string>;
  body_raw: string;
};
const bytes = (text: string) => Buffer.from(text, "utf8");
const lowerCase = (headers: Record<string, string>): WebhookHeaders => Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));

describe("verifying a Discourse webhook signature", () => {
  const signature = fixture.headers["X-Discourse-Event-Signature"];

  it("accepts the recorded delivery's signature over its raw bytes", () => {
    expect(verifyDiscourseSignature(fixture.secret, bytes(fixture.body_raw), signature)).toBe(true);
    expect(verifyDiscourseSignature(fixture.secret, bytes(fixture.body_raw), signature!.toUpperCase().replace("SHA256=", "sha256="))).toBe(true);
  });

  it("refuses a body changed after signing, even by a re-serialization that means the same", () => {
    expect(verifyDiscourseSignature(fixture.secret, bytes(fixture.body_raw.replace("nursing", "Nursing")), signature)).toBe(false);
    expect(verifyDiscourseSignature(fixture.secret, bytes(JSON.stringify(JSON.parse(fixture.body_raw), null, 1)), signature)).toBe(false);
  });

  it("refuses another secret, a missing signature and malformed ones", () => {
    const body = bytes(fixture.body_raw);
    expect(verifyDiscourseSignature("another secret", body, signature)).toBe(false);
    expect(verifyDiscourseSignature(fixture.secret, body, undefined)).toBe(false);
    expect(verifyDiscourseSignature("", body, signDiscourseWebhook("", fixture.body_raw))).toBe(false);
    const hex = signature!.slice("sha256=".length);
    for (const bad of ["", hex, `sha1=${hex}`, `sha256=${hex.slice(2)}`, `sha256=${hex}00`, `sha256=${hex.slice(0, -1)}g`, `sha256= ${hex}`]) {
      expect(verifyDiscourseSignature(fixture.secret, body, bad), bad).toBe(false);
    }
  });
});

describe("parsing a Discourse webhook", () => {
  it("reads the event's id, type and name, and the topic and post it names", () => {
    const event = parseDiscourseWebhook(lowerCase(fixture.headers), bytes(fixture.body_raw));
    expect(event).toEqual({ id: "8812", type: "post", event: "post_edited", topicIds: ["301"], postIds: ["1002"] });
    const topic = parseDiscourseWebhook({ "x-discourse-event-id": "9", "x-discourse-event-type": "topic", "x-discourse-event": "topic_edited" }, bytes('{"topic":{"id":302}}'));
    expect(topic).toMatchObject({ topicIds: ["302"], postIds: [] });
  });

  it("refuses a missing event id, an odd event name and a body that is no JSON object", () => {
    const headers = lowerCase(fixture.headers);
    const { ["x-discourse-event-id"]: _omitted, ...withoutId } = headers;
    expect(() => parseDiscourseWebhook(withoutId, bytes(fixture.body_raw))).toThrow(/x-discourse-event-id/);
    expect(() => parseDiscourseWebhook({ ...headers, "x-discourse-event": "post edited; drop" }, bytes(fixture.body_raw))).toThrow(/x-discourse-event/);
    expect(() => parseDiscourseWebhook(headers, bytes("[1,2]"))).toThrow(/JSON object/);
    expect(() => parseDiscourseWebhook(headers, bytes("{"))).toThrow(/not JSON/);
  });
});

describe("the webhook receiver", () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function setup() {
    const temp = makeTempDir("ordo-webhook-");
    const projection = await openProjectionDb({ path: `${temp.dir}/projection.sqlite` });
    cleanups.push(async () => {
      await projection.close();
      temp.remove();
    });
    const db = connectorDb(projection.db);
    let now = Date.parse("2025-01-22T12:00:00Z");
    const rereads: DiscourseWebhookEvent[] = [];
    const receiver = new DiscourseWebhookReceiver({ db, secret: fixture.secret, clock: () => new Date(now), reread: (event) => rereads.push(event) });
    const deliver = (body: string, headers: Record<string, string> = {}) =>
      receiver.receive({ ...lowerCase(fixture.headers), "x-discourse-event-signature": signDiscourseWebhook(fixture.secret, body), ...headers }, bytes(body));
    const events = () => db.selectFrom("webhook_events").select(["system", "event_id"]).orderBy("event_id").execute();
    return { receiver, deliver, events, rereads, tick: (ms: number) => (now += ms) };
  }

  it("records a signed event once and asks for one re-read; the same id again does nothing", async () => {
    const { receiver, events, rereads } = await setup();
    const first = await receiver.receive(lowerCase(fixture.headers), bytes(fixture.body_raw));
    expect(first).toMatchObject({ outcome: "taken", reread: true, event: { id: "8812", topicIds: ["301"] } });
    const again = await receiver.receive(lowerCase(fixture.headers), bytes(fixture.body_raw));
    expect(again.outcome).toBe("duplicate");
    expect(await events()).toEqual([{ system: "discourse", event_id: "8812" }]);
    expect(rereads.map((e) => e.id)).toEqual(["8812"]);
  });

  it("refuses a wrong signature without recording anything or asking for a re-read", async () => {
    const { receiver, events, rereads } = await setup();
    const receipt = await receiver.receive({ ...lowerCase(fixture.headers), "x-discourse-event-signature": signDiscourseWebhook("guess", fixture.body_raw) }, bytes(fixture.body_raw));
    expect(receipt).toMatchObject({ outcome: "refused", problem: "signature" });
    expect(await events()).toEqual([]);
    expect(rereads).toEqual([]);
  });

  it("takes a ping without asking for a re-read", async () => {
    const { deliver, rereads, events } = await setup();
    expect(await deliver('{"ping":"OK"}', { "x-discourse-event-id": "1", "x-discourse-event-type": "ping", "x-discourse-event": "ping" })).toMatchObject({ outcome: "taken", reread: false });
    expect(rereads).toEqual([]);
    expect(await events()).toHaveLength(1);
  });

  it("forgets event ids after the retention, long after Discourse's last retry", async () => {
    const { deliver, events, tick } = await setup();
    await deliver(fixture.body_raw, { "x-discourse-event-id": "1" });
    tick(31 * 24 * 3_600_000);
    await deliver(fixture.body_raw, { "x-discourse-event-id": "2" });
    expect((await events()).map((e) => e.event_id)).toEqual(["2"]);
  });
});
