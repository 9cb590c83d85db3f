import { connectorDb } from "../connectors/connector-tables.js";
import { discourseClient } from "../connectors/discourse/discourse-client.js";
import { discourseInstance } from "../connectors/discourse/discourse-mapping.js";
import { pullDiscourseCategory } from "../connectors/discourse/discourse-pull.js";
import { pushDiscourseChanges } from "../connectors/discourse/discourse-push.js";
import { Outbox } from "../connectors/outbox.js";
import type { DocUrl } from "../crdt/ids.js";
import { Engine } from "../engine.js";
import { FakeDiscourse, type FakeDiscourseOptions } from "./fake-discourse/index.js";
import { makeTempDir } from "./temp-dir.js";

/** A write request the connector sent, with its JSON body. */
export interface SentRequest {
  method: string;
  path: string;
  body: unknown;
}

export interface DiscourseTestNodeOptions {
  fake?: Omit<FakeDiscourseOptions, "clock">;
  /** The user the API key acts as; `system` (staff) by default. */
  username?: string;
  /** Open an existing node instead of making one (a node a child process left behind). */
  dataDir?: string;
  course?: DocUrl;
  fakeDiscourse?: FakeDiscourse;
}

/**
 * A node whose course is connected to category 12 of a fake Discourse, for connector tests.
 * The node, the fake and the outbox share one clock (real time plus what `tick` added), so
 * "more recent" means the same thing on both sides. `sent` keeps every write request the
 * connector made, with its body; `push`, `pull` and `sync` run the real connector.
 */
export async function discourseTestNode(options: DiscourseTestNodeOptions = {}) {
  let offset = 0;
  const clock = (): Date => new Date(Date.now() + offset);
  const discourse = options.fakeDiscourse ?? (await FakeDiscourse.start({ ...options.fake, clock: () => clock().getTime() }));
  const temp = options.dataDir === undefined ? makeTempDir() : null;
  const engine = await Engine.open({ dataDir: options.dataDir ?? temp!.dir, create: true, clock });
  const course = options.course ?? (await engine.docs.create("course", { name: "BIO 101", courseCode: "BIO101" } as never)).url;
  const instance = discourseInstance(discourse.url);
  const db = connectorDb(engine.db);
  const outbox = new Outbox(db, clock);
  const sent: SentRequest[] = [];
  const recordingFetch: typeof fetch = async (input, init) => {
    const method = init?.method ?? "GET";
    if (method !== "GET") sent.push({ method, path: new URL(String(input)).pathname, body: typeof init?.body === "string" ? JSON.parse(init.body) : null });
    return fetch(input, init);
  };
  const client = discourseClient({ url: discourse.url, apiKey: () => discourse.apiKey, username: options.username ?? discourse.username, fetch: recordingFetch, sleep: async () => undefined });
  let categoryId = "12";
  const push = () => pushDiscourseChanges({ client, instance, store: engine.docs, db, outbox, course, categoryId, clock });
  const pull = () => pullDiscourseCategory({ client, instance, store: engine.docs, db, categoryId, course, outbox, clock });
  return {
    discourse,
    engine,
    course,
    instance,
    db,
    outbox,
    sent,
    push,
    pull,
    sync: async () => ({ pushed: await push(), pulled: await pull() }),
    /** Connects the course to another category, as `ordo connect discourse` would. */
    connectCategory: (id: string) => void (categoryId = id),
    tick: (ms: number) => void (offset += ms),
    clock,
    close: async () => {
      await engine.close();
      if (!options.fakeDiscourse) await discourse.close();
      temp?.remove();
    },
  };
}

export type DiscourseTestNode = Awaited<ReturnType<typeof discourseTestNode>>;
