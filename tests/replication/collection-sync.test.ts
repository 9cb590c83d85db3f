import { afterEach, describe, expect, it } from "vitest";
import { docUrlOf, documentIdOf, newDocUrl, type DocumentId } from "../../src/crdt/ids.js";
import { CloseCode } from "../../src/net/close-codes.js";
import type { DocMessage } from "../../src/net/peer-link.js";
import type { Principal } from "../../src/net/principal.js";
import { canRead } from "../../src/replication/access-policy.js";
import { BUCKETS, bucketOf, decodeBatch, decodeSummary, differingBuckets, digestOf, encodeBatches, encodeSummary, entryHash, type Summary } from "../../src/replication/collection-codec.js";
import { memoryLinkPair } from "../../src/testing/memory-link.js";
import { demoUser, nodePrincipal, principal } from "../../src/testing/principals.js";
import { replicaNode } from "../../src/testing/replica-node.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function node(identity: Principal, seed = false) {
  const replica = await replicaNode(identity, seed);
  cleanups.push(replica.close);
  return replica;
}

const ID: DocumentId = documentIdOf(newDocUrl());
const ID2: DocumentId = documentIdOf(newDocUrl());

describe("the collection payloads", () => {
  it("round-trip summaries and batches, splitting batches by size", () => {
    const entries = [{ id: ID, hash: entryHash(ID, "abc") }];
    expect(decodeSummary(encodeSummary({ kind: "entries", entries }))).toEqual({ kind: "entries", entries: new Map([[ID, entryHash(ID, "abc")]]) });
    expect(entryHash(ID, "abc")).not.toBe(entryHash(ID, "abd"));
    const heads = "a".repeat(64) + "," + "b".repeat(64);
    expect(decodeSummary(encodeSummary({ kind: "heads", heads: [{ id: ID, heads }, { id: ID2, heads: "" }] }))).toEqual({ kind: "heads", heads: new Map([[ID, heads], [ID2, ""]]) });
    const digest = digestOf(entries);
    expect(decodeSummary(encodeSummary({ kind: "digest", digest }))).toEqual({ kind: "digest", digest });
    const docs = [1, 2, 3].map((n) => ({ id: ID, heads: n === 2 ? "" : "c".repeat(64), data: new Uint8Array(600).fill(n) }));
    const batches = encodeBatches(docs, 1_000);
    expect(batches).toHaveLength(3);
    expect(batches.flatMap((b) => decodeBatch(b)).map((d) => [d.data[0], d.heads])).toEqual(docs.map((d) => [d.data[0], d.heads]));
  });

  it("digests the same entries alike in any order, and tells which buckets differ", () => {
    const ids = Array.from({ length: 500 }, () => documentIdOf(newDocUrl()));
    const entries = ids.map((id) => ({ id, hash: entryHash(id, "h1") }));
    const ours = digestOf(entries);
    expect(differingBuckets(ours, digestOf([...entries].reverse()))).toEqual(new Set());
    // Ids spread over the buckets.
    expect(new Set(ids.map(bucketOf)).size).toBeGreaterThan(BUCKETS / 2);
    const changed = entries.map((e, i) => (i === 7 ? { id: e.id, hash: entryHash(e.id, "h2") } : e));
    expect(differingBuckets(ours, digestOf(changed))).toEqual(new Set([bucketOf(ids[7]!)]));
    expect(differingBuckets(ours, digestOf(entries.slice(1)))).toEqual(new Set([bucketOf(ids[0]!)]));
  });

  it("refuses a truncated entry, a length past the end and an id that is not one", () => {
    const [batch] = encodeBatches([{ id: ID, heads: "", data: new Uint8Array([1, 2, 3]) }], 1 << 20);
    expect(() => decodeBatch(batch!.subarray(0, batch!.length - 1))).toThrow(/runs past the end/);
    const summary = encodeSummary({ kind: "entries", entries: [{ id: ID, hash: entryHash(ID, "h") }] });
    expect(() => decodeSummary(summary.subarray(0, 10))).toThrow(/runs past the end/);
    const forged = Buffer.from(summary);
    forged[4] = "0".charCodeAt(0);
    expect(() => decodeSummary(forged)).toThrow(/not a document id/);
    expect(() => decodeSummary(new Uint8Array([2, 0]))).toThrow(/impossible length/);
    expect(() => decodeSummary(new Uint8Array([1, 0, 0]))).toThrow(/wrong size/);
    expect(() => decodeSummary(new Uint8Array())).toThrow(/unknown summary/);
  });
});

describe("collection sync over a link", () => {
  it("names in a summary only what the receiver may read", async () => {
    const teacher = await node(nodePrincipal("teacher-node"), true);
    const course = teacher.course!;
    const studentA = demoUser("student", 0);
    const student = await node(principal(studentA, "student", [course]));
    const { atA, atB } = memoryLinkPair({ peerId: "student-a", principal: student.replicator.identity }, { peerId: "teacher", principal: teacher.replicator.identity });
    const heard: DocMessage[] = [];
    atA.on("message", (message) => heard.push(message));
    student.replicator.addLink(atA);
    teacher.replicator.addLink(atB);
    // The student's node is empty, so the digests differ and the teacher's node lists its entries.
    const listed = () => heard.map((m) => (m.type === "ordo-summary" ? decodeSummary(m.data) : null)).find((s): s is Extract<Summary, { kind: "entries" }> => s?.kind === "entries");
    const deadline = Date.now() + 10_000;
    while (!listed() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    const named = [...listed()!.entries.keys()];
    const all = await teacher.engine.docs.records({ includeDeleted: true });
    const readable = new Set(all.filter((r) => canRead(student.replicator.identity, r, teacher.replicator.coursesOf)).map((r) => r.id));
    expect(named.length).toBeGreaterThan(10);
    expect(named.filter((id) => !readable.has(id))).toEqual([]);
    // Other students' work exists on the teacher's node, and is not named.
    expect(all.some((r) => r.kind === "submission" && r.owner !== studentA)).toBe(true);
  });

  it("closes the link of a peer that sends a whole document it may not write, and stores none of it", async () => {
    const teacher = await node(nodePrincipal("teacher-node"), true);
    const course = teacher.course!;
    const student = await node(principal(demoUser("student", 0), "student", [course]));
    const assignment = (await teacher.engine.docs.records({ kind: "assignment" }))[0]!;
    const url = docUrlOf(assignment.id);
    const before = assignment.heads;
    // A tampered copy: the student's store rewrites the assignment, then sends it whole.
    await student.engine.docs.receive(url, (await teacher.engine.docs.export(url))!);
    await student.engine.docs.change<"assignment">(url, (draft) => void (draft.title = "Everyone gets 10/10"));
    const { atA, atB } = memoryLinkPair({ peerId: "student-a", principal: student.replicator.identity }, { peerId: "teacher", principal: teacher.replicator.identity });
    const closed = new Promise<number>((resolve) => atB.once("close", ({ code }) => resolve(code)));
    teacher.replicator.addLink(atB);
    const [batch] = encodeBatches([{ id: assignment.id, heads: "", data: (await student.engine.docs.export(url))! }], 1 << 20);
    atA.send({ type: "ordo-summary", senderId: "student-a", targetId: "teacher", data: encodeSummary({ kind: "digest", digest: digestOf([]) }) });
    atA.send({ type: "ordo-docs", senderId: "student-a", targetId: "teacher", data: batch! });
    expect(await closed).toBe(CloseCode.forbiddenWrite);
    expect((await teacher.engine.docs.record(url))!.heads).toBe(before);
  });

  it("syncs document by document with an Ordo peer that speaks another version of collection sync", async () => {
    const teacher = await node(nodePrincipal("teacher-node"), true);
    const other = await node(nodePrincipal("other-node"));
    const older = { ordoSeq: true, ordoCollection: 1 };
    const { atA, atB } = memoryLinkPair({ peerId: "other", principal: other.replicator.identity, metadata: older }, { peerId: "teacher", principal: teacher.replicator.identity, metadata: older });
    const heard: DocMessage[] = [];
    atA.on("message", (message) => heard.push(message));
    other.replicator.addLink(atA);
    teacher.replicator.addLink(atB);
    const headsOf = async (n: typeof teacher) => new Map((await n.engine.docs.records()).map((r) => [r.id, r.heads]));
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && JSON.stringify([...(await headsOf(other))].sort()) !== JSON.stringify([...(await headsOf(teacher))].sort())) await new Promise((resolve) => setTimeout(resolve, 50));
    expect([...(await headsOf(other))].sort()).toEqual([...(await headsOf(teacher))].sort());
    expect(heard.filter((m) => m.type === "ordo-summary" || m.type === "ordo-docs")).toEqual([]);
    expect(heard.filter((m) => m.type === "sync").length).toBeGreaterThan(10);
  });

  it("closes the link of a peer that sends an unreadable batch, and nothing else", async () => {
    const teacher = await node(nodePrincipal("teacher-node"), true);
    const { atA, atB } = memoryLinkPair({ peerId: "other", principal: nodePrincipal("other-node") }, { peerId: "teacher", principal: teacher.replicator.identity });
    const closed = new Promise<{ code: number; reason: string }>((resolve) => atB.once("close", resolve));
    teacher.replicator.addLink(atB);
    atA.send({ type: "ordo-docs", senderId: "other", targetId: "teacher", data: new Uint8Array([5, 1, 2]) });
    expect(await closed).toEqual({ code: CloseCode.malformedMessage, reason: "unreadable collection message" });
    const documents = (await teacher.engine.docs.records()).length;
    expect(documents).toBeGreaterThan(10);
  });
});
