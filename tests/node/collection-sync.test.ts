import { afterEach, describe, expect, it } from "vitest";
import type { DocRecord } from "../../src/crdt/doc-storage.js";
import type { SyncNode } from "../../src/node/sync-node.js";
import type { PeerStatus } from "../../src/replication/replicator.js";
import { TestClassroom, eventually } from "../../src/testing/classroom.js";
import { demoUser } from "../../src/testing/principals.js";
import { tcpProxy, type TcpProxy } from "../../src/testing/tcp-proxy.js";
import { documentIdOf } from "../../src/crdt/ids.js";
import { dumpTables } from "../../src/projection/table-dump.js";
import { decodeBatch, decodeSummary } from "../../src/replication/collection-codec.js";
import { changesCarried, serverMessages } from "../../src/testing/ws-capture.js";
import type { ClientOrServerMessage } from "../../src/net/wire.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A relay holding a demo course, and a teacher's node dialling it through a proxy that can cut the line. */
async function setup(): Promise<{ classroom: TestClassroom; relay: SyncNode; node: SyncNode; proxy: TcpProxy; cut: () => Promise<void>; offline: () => Promise<void> }> {
  const classroom = await TestClassroom.start({ mode: "relay", demo: { students: 6, assignments: 5, topics: 2, postsPerTopic: 6 } });
  cleanups.push(() => classroom.stop());
  const proxy = await tcpProxy(Number(new URL(classroom.authority.url!).port));
  cleanups.push(() => proxy.close());
  const node = await classroom.join(demoUser("teacher", 0), "teacher", { relay: `ws://127.0.0.1:${proxy.port}` });
  const events: PeerStatus[] = [];
  node.replicator.on("peer-status", (status) => events.push(status));
  /** Cuts the line and waits until the node has seen it go (it may be back before a poll would notice). */
  const cut = async () => {
    proxy.cut();
    await eventually(() => events.some((e) => !e.connected), "the node seeing the cut");
  };
  /** Cuts the line and keeps it down until `proxy.online()`: what changes meanwhile is offline work. */
  const offline = async () => {
    proxy.offline();
    await cut();
  };
  return { classroom, relay: classroom.authority, node, proxy, cut, offline };
}

const inSync = (node: SyncNode) => () => node.status().peers.length === 1 && node.status().peers[0]!.connected && node.status().inSync;

/** Heads of every document, by id. */
async function heads(node: SyncNode): Promise<Map<string, string>> {
  return new Map((await node.engine.docs.records({ includeDeleted: true })).map((r: DocRecord) => [r.id, r.heads]));
}

async function expectConverged(relay: SyncNode, node: SyncNode): Promise<void> {
  const mine = await heads(node);
  const theirs = await heads(relay);
  // A teacher may read every document of the course: the node holds them all, at the relay's heads.
  expect(mine.size).toBeGreaterThan(100);
  expect(mine).toEqual(theirs);
  await node.engine.whenProjected();
  await relay.engine.whenProjected();
  // The same projection, table by table and row by row.
  expect(await dumpTables(node.engine.db)).toBe(await dumpTables(relay.engine.db));
}

const docMessages = (messages: readonly ClientOrServerMessage[]) => messages.filter((m) => m.type === "sync" || m.type === "request" || m.type === "ordo-docs" || m.type === "ordo-summary" || m.type === "ordo-offered");

describe("collection sync between Ordo nodes", () => {
  it("brings a fresh node the whole course in a few frames of whole documents, not a session per document", async () => {
    const { relay, node, proxy } = await setup();
    await eventually(inSync(node), "the first sync");
    await expectConverged(relay, node);
    const messages = docMessages(serverMessages(proxy.received()));
    const documents = (await heads(node)).size;
    expect(messages.filter((m) => m.type === "ordo-docs").length).toBeGreaterThan(0);
    // A summary, the documents, and the offer: nowhere near one message per document.
    expect(messages.length).toBeLessThan(documents / 10);
    expect(changesCarried(messages).length).toBeGreaterThan(documents);
  });

  it("reconnects with nothing new in one exchange of summaries, whatever the number of documents", async () => {
    const { relay, node, proxy, cut } = await setup();
    await eventually(inSync(node), "the first sync");
    const first = proxy.received().length;
    await cut();
    await eventually(inSync(node), "in sync again");
    const second = docMessages(serverMessages(proxy.received().subarray(first)));
    expect(second.map((m) => m.type)).toEqual(["ordo-summary", "ordo-offered"]);
    await expectConverged(relay, node);
  });

  it("reconnects after changes on both sides with the changes in a collection frame, and no sync session", async () => {
    const { relay, node, proxy, offline } = await setup();
    await eventually(inSync(node), "the first sync");
    const first = proxy.received().length;
    await offline();
    const [mine, theirs] = [(await node.engine.docs.records({ kind: "assignment" }))[0]!, (await relay.engine.docs.records({ kind: "page" }))[0]!];
    await node.engine.docs.change<"assignment">(`automerge:${mine.id}` as never, (draft) => void (draft.title = "Changed offline on the node"));
    await relay.engine.docs.change<"page">(`automerge:${theirs.id}` as never, (draft) => void (draft.title = "Changed on the relay meanwhile"));
    proxy.online();
    await eventually(inSync(node), "in sync again");
    await eventually(async () => (await heads(node)).get(theirs.id) === (await heads(relay)).get(theirs.id), "the relay's change on the node");
    await eventually(async () => (await heads(node)).get(mine.id) === (await heads(relay)).get(mine.id), "the node's change on the relay");
    const second = docMessages(serverMessages(proxy.received().subarray(first)));
    expect(second.filter((m) => m.type === "sync" || m.type === "request")).toEqual([]);
    // The relay listed its heads for both documents, and sent its change to the one it changed.
    const listed = second.flatMap((m) => (m.type === "ordo-summary" ? [decodeSummary(m.data)] : [])).flatMap((s) => (s.kind === "heads" ? [...s.heads.keys()] : []));
    expect(listed.sort()).toEqual([mine.id, theirs.id].sort());
    expect(second.flatMap((m) => (m.type === "ordo-docs" ? decodeBatch(m.data).map((d) => d.id) : []))).toEqual([theirs.id]);
    await expectConverged(relay, node);
  });

  it("reconnects after changes to one document on both sides with a sync session for that document only", async () => {
    const { relay, node, proxy, offline } = await setup();
    await eventually(inSync(node), "the first sync");
    const first = proxy.received().length;
    await offline();
    const page = (await relay.engine.docs.records({ kind: "page" }))[0]!;
    const url = `automerge:${page.id}` as never;
    await node.engine.docs.change<"page">(url, (draft) => void (draft.title = "Retitled on the node"));
    await relay.engine.docs.change<"page">(url, (draft) => void (draft.body = "Rewritten on the relay"));
    proxy.online();
    await eventually(inSync(node), "in sync again");
    await eventually(async () => (await heads(node)).get(page.id) === (await heads(relay)).get(page.id), "both changes on both sides");
    const entity = await node.engine.docs.find<"page">(url);
    expect([entity?.title, entity?.body]).toEqual(["Retitled on the node", "Rewritten on the relay"]);
    const second = docMessages(serverMessages(proxy.received().subarray(first)));
    const sessions = new Set(second.flatMap((m) => (m.type === "sync" ? [m.documentId] : [])));
    expect([...sessions]).toEqual([page.id]);
    await expectConverged(relay, node);
  });

  it("sends a change made on a node in sync to its Ordo peer as a collection frame, with no sync session", async () => {
    const { classroom, relay, node, proxy } = await setup();
    await eventually(inSync(node), "the first sync");
    const first = proxy.received().length;
    const page = (await relay.engine.docs.records({ kind: "page" }))[0]!;
    const url = `automerge:${page.id}` as never;
    await relay.engine.docs.change<"page">(url, (draft) => void (draft.title = "Changed live on the relay"));
    const created = await relay.engine.docs.create("page", { course: classroom.course, title: "Written live on the relay", body: "" });
    await eventually(async () => (await node.engine.docs.find<"page">(url))?.title === "Changed live on the relay", "the change on the node");
    await eventually(async () => (await node.engine.docs.find<"page">(created.url))?.title === "Written live on the relay", "the new page on the node");
    const later = docMessages(serverMessages(proxy.received().subarray(first)));
    expect(later.filter((m) => m.type === "sync" || m.type === "request")).toEqual([]);
    const sent = later.flatMap((m) => (m.type === "ordo-docs" ? decodeBatch(m.data).map((d) => d.id) : []));
    expect(sent).toEqual(expect.arrayContaining([page.id, documentIdOf(created.url)]));
    await eventually(inSync(node), "in sync after the changes");
    await expectConverged(relay, node);
  });

  it("converges after the line is cut in the middle of the first sync", async () => {
    const { relay, node, proxy, cut } = await setup();
    await eventually(() => serverMessages(proxy.received()).some((m) => m.type === "ordo-summary"), "the relay's summary");
    await cut();
    await eventually(inSync(node), "in sync after the cut");
    await expectConverged(relay, node);
  });
});
