import * as A from "@automerge/automerge";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { DocStore } from "../../src/crdt/doc-store.js";
import { openSqliteStorage } from "../../src/crdt/sqlite-storage-adapter.js";
import { docUrlOf, type DocUrl } from "../../src/crdt/ids.js";
import { CloseCode } from "../../src/net/close-codes.js";
import type { SyncNode } from "../../src/node/sync-node.js";
import { TestClassroom, eventually } from "../../src/testing/classroom.js";
import { FaultProxy, type ProxyDirection, type ProxyFault } from "../../src/testing/fault-proxy.js";
import { demoUser } from "../../src/testing/principals.js";
import { makeTempDir } from "../../src/testing/temp-dir.js";
import { captureLogger } from "../net/net-helpers.js";

let classroom: TestClassroom | undefined;
let proxy: FaultProxy | undefined;
afterEach(async () => {
  await classroom?.stop();
  await proxy?.close();
  classroom = undefined;
  proxy = undefined;
});

/** What differs between the student's node and the authority: heads per document, or documents missing. */
async function divergence(student: SyncNode, authority: SyncNode): Promise<string[]> {
  const problems: string[] = [];
  const held = await student.engine.docs.records({ includeDeleted: true });
  for (const record of held) {
    const theirs = await authority.engine.docs.record(docUrlOf(record.id));
    if (theirs?.heads !== record.heads) problems.push(`${record.kind} ${record.id}: student at ${record.heads}, authority at ${theirs?.heads}`);
  }
  const ids = new Set(held.map((record) => record.id));
  for (const record of await authority.engine.docs.records({ includeDeleted: true })) {
    if (student.replicator.mayHold(record) && !ids.has(record.id)) problems.push(`${record.kind} ${record.id}: missing at the student`);
  }
  return problems;
}

async function expectConverged(student: SyncNode, authority: SyncNode, what: string): Promise<void> {
  let problems: string[] = [];
  try {
    await eventually(async () => (problems = await divergence(student, authority)).length === 0, what);
  } catch {
    expect(problems, what).toEqual([]);
  }
}

/** Resolves once no message has crossed the proxy for `ms`: the last exchange is over. */
async function quiet(proxy: FaultProxy, ms: number): Promise<void> {
  let last = Date.now();
  const note = () => (last = Date.now());
  proxy.on("message", note);
  while (Date.now() - last < ms) await new Promise((resolve) => setTimeout(resolve, 50));
  proxy.off("message", note);
}

/** Like `eventually`, but says whether `check` came to hold instead of failing. */
async function holdsWithin(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  return eventually(check, "", timeoutMs).then(
    () => true,
    () => false,
  );
}

async function titleIn(node: SyncNode, url: DocUrl): Promise<string | null | undefined> {
  await node.engine.whenProjected();
  return (await node.engine.db.selectFrom("assignments").select("title").where("doc_url", "=", url).executeTakeFirst())?.title;
}

async function bodyIn(node: SyncNode, url: DocUrl): Promise<string | null | undefined> {
  await node.engine.whenProjected();
  return (await node.engine.db.selectFrom("submissions").select("body").where("doc_url", "=", url).executeTakeFirst())?.body;
}

/**
 * An authority node and a student's node that reaches it only through a `FaultProxy`, in
 * sync: a published assignment the teacher edits and the student's own submission.
 */
async function setup() {
  classroom = await TestClassroom.start();
  const authority = classroom.authority;
  proxy = await FaultProxy.start(authority.url!);
  const logger = captureLogger();
  const student = await classroom.join(demoUser("student", 0), "student", { relay: proxy.url, logger });
  const store = authority.engine.docs;
  const records = await store.records();
  let assignment: DocUrl | undefined;
  for (const record of records.filter((r) => r.kind === "assignment")) {
    if ((await store.find<"assignment">(docUrlOf(record.id)))?.published) assignment = docUrlOf(record.id);
  }
  const submission = docUrlOf(records.find((r) => r.kind === "submission" && r.owner === demoUser("student", 0))!.id);
  await expectConverged(student, authority, "the student's node in sync before any fault");
  return { authority, student, proxy, logger, assignment: assignment!, submission };
}

const CASES: Array<[ProxyFault, ProxyDirection]> = [
  ["drop", "up"],
  ["drop", "down"],
  ["duplicate", "up"],
  ["duplicate", "down"],
  ["reorder", "up"],
  ["reorder", "down"],
];

describe("a transport that loses, duplicates or reorders a message", () => {
  it.each(CASES)("a %s %s becomes a disconnect and a clean resync, never divergence", async (fault, direction) => {
    const { authority, student, proxy, logger, assignment, submission } = await setup();
    const outOfSequence = () => proxy.closes.some((close) => close.code === CloseCode.outOfSequence);

    // Both sides keep editing: a lost message shows only when the next one arrives.
    proxy.inject(direction, fault);
    for (let round = 1; round <= 10 && !outOfSequence(); round += 1) {
      const title = `Lab 1, revision ${round}`;
      const body = `Draft ${round}: plants need light.`;
      await Promise.all([
        authority.engine.docs.change<"assignment">(assignment, (draft) => {
          draft.title = title;
        }),
        student.engine.docs.change<"submission">(submission, (draft) => {
          draft.body = body;
        }),
      ]);
      // Either this round's edits crossed, or the link broke over the fault.
      await holdsWithin(
        async () => outOfSequence() || ((await student.engine.docs.find<"assignment">(assignment))?.title === title && (await authority.engine.docs.find<"submission">(submission))?.body === body),
        3_000,
      );
    }

    // The receiving end noticed and closed with outOfSequence; the proxy carried the code across.
    await eventually(() => proxy.closes.filter((close) => close.connection === 1).length === 2, "both sockets of the faulty connection closed");
    const receiver = direction === "up" ? "upstream" : "client";
    expect(proxy.closes[0]).toMatchObject({ connection: 1, side: receiver, code: CloseCode.outOfSequence });
    expect(proxy.closes.filter((close) => close.connection === 1).map((close) => close.code)).toEqual([CloseCode.outOfSequence, CloseCode.outOfSequence]);
    await eventually(() => logger.lines.some((line) => line.includes('"msg":"peer disconnected"') && line.includes(`"code":${CloseCode.outOfSequence}`)), "the student's node sees the link closed out of sequence");

    // The dialer comes back by itself, through the proxy, which now passes messages faithfully.
    await eventually(() => proxy.connections >= 2 && student.status().peers.some((peer) => peer.connected), "the student's node reconnected");

    await authority.engine.docs.change<"assignment">(assignment, (draft) => {
      draft.title = "Lab 1, final";
    });
    await student.engine.docs.change<"submission">(submission, (draft) => {
      draft.body = "Final: plants need light and water.";
    });
    await expectConverged(student, authority, "equal heads on every document the student holds");
    for (const node of [authority, student]) {
      expect(await titleIn(node, assignment)).toBe("Lab 1, final");
      expect(await bodyIn(node, submission)).toBe("Final: plants need light and water.");
    }
    // One fault, one disconnect: the resync itself never ran out of sequence.
    expect(proxy.closes.filter((close) => close.code === CloseCode.outOfSequence).length).toBe(2);
    expect(proxy.closes.filter((close) => close.connection > 1)).toEqual([]);
  });

  it("notices the last message of a burst lost, with nothing after it, and resyncs", async () => {
    const { authority, student, proxy, submission } = await setup();
    await quiet(proxy, 1_500);
    // The student's one edit goes out as a single message, which is lost; the student then falls silent.
    proxy.inject("up", "drop");
    await student.engine.docs.change<"submission">(submission, (draft) => {
      draft.body = "Written just before the line dropped a message.";
    });
    // The count of messages sent, which follows once the student is quiet, gives the loss away.
    await eventually(() => proxy.closes.some((close) => close.connection === 1 && close.code === CloseCode.outOfSequence), "the link closed for the lost message");
    await expectConverged(student, authority, "equal heads after the resync");
    expect(await bodyIn(authority, submission)).toBe("Written just before the line dropped a message.");
  });
});

/**
 * On a faithful transport a sync message can still carry a change without the change it
 * depends on: Automerge's sync protocol leaves out changes the peer's Bloom filter claims to
 * have, and about 1% of those claims are false. Automerge queues such a change and asks for
 * the missing one (`need`). A store that dropped the queued change, while the sender's sync
 * state counts it as sent, would `need` it for ever and never get it: an endless exchange of
 * empty sync messages until the link reconnects (it showed as the student's catalog partition
 * stuck at different heads in a few percent of this file's setups).
 */
describe("a change that arrives before the change it depends on", () => {
  /** A store over SQLite in a fresh directory, closed and removed after `work`. */
  async function withStore(work: (store: DocStore) => Promise<void>): Promise<void> {
    const temp = makeTempDir("ordo-queued-");
    const storage = openSqliteStorage({ path: join(temp.dir, "store.sqlite") });
    const store = new DocStore({ storage });
    try {
      await work(store);
    } finally {
      await store.close();
      await storage.close();
      temp.remove();
    }
  }

  /** Two sync messages: the later change first, then the one it depends on. */
  function outOfOrder(first: A.Doc<unknown>, second: A.Doc<unknown>, firstChange: Uint8Array, secondChange: Uint8Array): Uint8Array[] {
    return [
      A.encodeSyncMessage({ heads: A.getHeads(second), need: [], have: [], changes: [secondChange] }),
      A.encodeSyncMessage({ heads: A.getHeads(first), need: [], have: [], changes: [firstChange] }),
    ];
  }

  async function receiveAll(store: DocStore, url: DocUrl, messages: Uint8Array[]): Promise<void> {
    let state = A.initSyncState();
    for (const message of messages) ({ state } = await store.receiveSyncMessage(url, state, message));
  }

  it("waits in the store until that change arrives, as in plain Automerge", async () => {
    await withStore(async (store) => {
      const course = await store.create("course", { name: "Biology", courseCode: "BIO" });
      // A peer's copy with two changes of its own, the second depending on the first.
      const first = A.change(A.load<Record<string, unknown>>((await store.export(course.url))!), (doc) => {
        doc.name = new A.ImmutableString("Biology 1");
      });
      const firstChange = A.getLastLocalChange(first)!;
      const second = A.change(A.clone(first), (doc) => {
        doc.name = new A.ImmutableString("Biology 2");
      });
      await receiveAll(store, course.url, outOfOrder(first, second, firstChange, A.getLastLocalChange(second)!));
      expect((await store.record(course.url))?.heads).toBe([...A.getHeads(second)].sort().join(","));
      expect((await store.find<"course">(course.url))?.name).toBe("Biology 2");
    });
  });
});
