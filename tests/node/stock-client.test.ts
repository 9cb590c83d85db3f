import * as A from "@automerge/automerge";
import { Repo, type DocHandle, type StorageId } from "@automerge/automerge-repo";
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";
import { WebSocket } from "ws";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { docUrlOf, newDocUrl, type DocUrl } from "../../src/crdt/ids.js";
import { TestClassroom, eventually } from "../../src/testing/classroom.js";
import { demoUser } from "../../src/testing/principals.js";

type Doc = Record<string, unknown>;

/**
 * A stock automerge-repo client, as an app built on the library would run one: a `Repo` with
 * no storage and the stock WebSocket adapter, given nothing but a URL (so the token rides in
 * `?token=`).
 */
interface StockClient {
  repo: Repo;
  adapter: WebSocketClientAdapter;
  close(): Promise<void>;
}

function openStockClient(url: string, token: string): StockClient {
  // A long retry interval: a test that ends the session must not race the adapter's redial.
  const adapter = new WebSocketClientAdapter(`${url}/?token=${encodeURIComponent(token)}`, 60_000);
  // Gossiping on, so that the client also sends `remote-subscription-change` when asked to.
  const repo = new Repo({ network: [adapter], enableRemoteHeadsGossiping: true });
  const close = async () => {
    const socket = adapter.socket;
    // The adapter rethrows socket errors other than ECONNREFUSED, and disconnect() removes its
    // listeners before the close handshake ends: keep one that swallows them (HAZARDS).
    socket?.on("error", () => undefined);
    const closed = socket && socket.readyState !== socket.CLOSED ? new Promise<void>((resolve) => socket.once("close", () => resolve())) : Promise.resolve();
    try {
      // shutdown() disconnects the adapter, then flushes (a no-op without storage). With
      // storage it throws "DocHandle is not ready" once a find ended unavailable (HAZARDS).
      await repo.shutdown();
    } catch {
      if (adapter.socket) adapter.disconnect();
    }
    await closed;
  };
  return { repo, adapter, close };
}

describe.each(["relay", "node"] as const)("a stock automerge-repo client on a %s", (mode) => {
  let classroom: TestClassroom;
  let published: DocUrl;
  let ownSubmission: DocUrl;
  let othersSubmission: DocUrl;
  const clients: StockClient[] = [];

  beforeAll(async () => {
    classroom = await TestClassroom.start({ mode });
    const store = classroom.authority.engine.docs;
    const records = await store.records();
    for (const record of records.filter((r) => r.kind === "assignment")) {
      if ((await store.find<"assignment">(docUrlOf(record.id)))?.published) published = docUrlOf(record.id);
    }
    expect(published).toBeDefined();
    const submissionOf = (student: DocUrl) => docUrlOf(records.find((r) => r.kind === "submission" && r.owner === student)!.id);
    ownSubmission = submissionOf(demoUser("student", 0));
    othersSubmission = submissionOf(demoUser("student", 1));
  });
  afterEach(async () => {
    for (const client of clients.splice(0)) await client.close();
  });
  afterAll(async () => {
    await classroom.stop();
  });

  function setup(): StockClient {
    const client = openStockClient(classroom.authority.url!, classroom.token(demoUser("student", 0), "student"));
    clients.push(client);
    return client;
  }

  /** The authority's heads for a document, as automerge-repo lists them. */
  async function authorityHeads(url: DocUrl): Promise<string[]> {
    const record = await classroom.authority.engine.docs.record(url);
    return record ? record.heads.split(",") : [];
  }

  const sortedHeads = (handle: DocHandle<Doc>) => [...A.getHeads(handle.doc())].sort();

  it("syncs a document the student may read, with the node's content", async () => {
    const { repo } = setup();
    const handle = await repo.find<Doc>(published);
    await eventually(async () => sortedHeads(handle).join(",") === (await authorityHeads(published)).join(","), "the stock client at the node's heads");
    const entity = await classroom.authority.engine.docs.find<"assignment">(published);
    expect(String(handle.doc().title)).toBe(entity!.title);
    expect(handle.doc().published).toBe(true);
  });

  it("sends an edit of the student's own submission to the node's store and SQL projection", async () => {
    const { repo } = setup();
    const handle = await repo.find<Doc>(ownSubmission);
    const body = `Written in a stock client on a ${mode}: plants need light.`;
    handle.change((doc) => {
      doc.body = body;
    });
    const engine = classroom.authority.engine;
    await eventually(async () => (await engine.docs.find<"submission">(ownSubmission))?.body === body, "the edit in the node's store");
    await engine.whenProjected();
    const row = await engine.db.selectFrom("submissions").select(["body", "student_url"]).where("doc_url", "=", ownSubmission).executeTakeFirst();
    expect(row).toEqual({ body, student_url: demoUser("student", 0) });
    // Both ends converge on the same history, the client's change included.
    await eventually(async () => sortedHeads(handle).join(",") === (await authorityHeads(ownSubmission)).join(","), "equal heads after the edit");
  });

  it("keeps the session after ephemeral and remote-subscription-change messages, which the node ignores", async () => {
    const { repo, adapter } = setup();
    const sent: string[] = [];
    const send = adapter.send.bind(adapter);
    adapter.send = (message) => {
      sent.push(message.type);
      send(message);
    };
    const handle = await repo.find<Doc>(ownSubmission);
    handle.broadcast({ cursor: 3 });
    repo.subscribeToRemotes(["some-other-storage-id" as StorageId]);
    expect(sent).toEqual(expect.arrayContaining(["ephemeral", "remote-subscription-change"]));
    const body = `After an ephemeral message on a ${mode}.`;
    handle.change((doc) => {
      doc.body = body;
    });
    await eventually(async () => (await classroom.authority.engine.docs.find<"submission">(ownSubmission))?.body === body, "an edit after the ephemeral message");
  });

  it("is refused another student's submission, exactly as a document that does not exist", async () => {
    const { repo, adapter } = setup();
    // Connected first, so "unavailable" is the node's answer and not the absence of peers.
    await repo.find<Doc>(published);
    const nonexistent = newDocUrl();
    // automerge-repo 2.5.6: find() rejects once every peer answered doc-unavailable.
    await expect(repo.find<Doc>(othersSubmission)).rejects.toThrow(/is unavailable/);
    await expect(repo.find<Doc>(nonexistent)).rejects.toThrow(/is unavailable/);
    for (const url of [othersSubmission, nonexistent]) {
      const handle = repo.handles[url.slice("automerge:".length) as keyof typeof repo.handles];
      expect({ url, state: handle?.state }).toEqual({ url, state: "unavailable" });
    }
    // A refusal is an answer, not a disconnect: the session goes on.
    expect(adapter.socket?.readyState).toBe(WebSocket.OPEN);
    // And the node's copy of the other submission is untouched by the attempt.
    expect((await classroom.authority.engine.docs.find<"submission">(othersSubmission))?.student).toBe(demoUser("student", 1));
  });
});
