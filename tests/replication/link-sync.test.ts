import { afterEach, describe, expect, it } from "vitest";
import { docUrlOf } from "../../src/crdt/ids.js";
import { CloseCode } from "../../src/net/close-codes.js";
import type { Principal } from "../../src/net/principal.js";
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

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("replication over a link", () => {
  it("gives a student what they may read and nothing else", async () => {
    const teacher = await node(nodePrincipal("teacher-node"), true);
    const course = teacher.course!;
    const studentA = demoUser("student", 0);
    const student = await node(principal(studentA, "student", [course]));
    const { atA, atB } = memoryLinkPair({ peerId: "student-a", principal: student.replicator.identity }, { peerId: "teacher", principal: teacher.replicator.identity });
    student.replicator.addLink(atA);
    teacher.replicator.addLink(atB);
    await until(() => teacher.replicator.peers().every((p) => p.inSync) && student.replicator.peers().every((p) => p.inSync), "sync");
    await until(async () => (await student.engine.docs.records()).length > 0, "documents");

    const expected = (await teacher.engine.docs.records({ includeDeleted: true })).filter((r) => teacher.replicator.mayHold(r) && (r.audience === "course" || r.audience === `student:${studentA}` || r.kind === "user"));
    const got = await student.engine.docs.records({ includeDeleted: true });
    const gotIds = new Set(got.map((r) => r.id));
    for (const record of got) {
      expect(record.audience === "course" || record.audience === `student:${studentA}` || (record.kind === "user" && record.course === null), `${record.kind} ${record.audience}`).toBe(true);
    }
    const submissions = got.filter((r) => r.kind === "submission");
    expect(submissions.length).toBeGreaterThan(0);
    expect(submissions.every((r) => r.owner === studentA)).toBe(true);
    expect(got.some((r) => r.kind === "assignment")).toBe(true);
    // The unpublished assignment stays with the staff.
    expect(got.filter((r) => r.kind === "assignment")).toHaveLength(1);
    expect(expected.filter((r) => r.kind !== "user" && !gotIds.has(r.id)).map((r) => r.kind)).toEqual([]);
  });

  it("closes the link of a student who sends changes to an assignment, and applies none", async () => {
    const teacher = await node(nodePrincipal("teacher-node"), true);
    const course = teacher.course!;
    const studentA = demoUser("student", 0);
    const student = await node(principal(studentA, "student", [course]));
    const first = memoryLinkPair({ peerId: "student-a", principal: student.replicator.identity }, { peerId: "teacher", principal: teacher.replicator.identity });
    student.replicator.addLink(first.atA);
    teacher.replicator.addLink(first.atB);
    await until(() => teacher.replicator.peers().every((p) => p.inSync) && student.replicator.peers().every((p) => p.inSync), "sync");
    const assignment = (await student.engine.docs.records({ kind: "assignment" }))[0]!;
    const url = docUrlOf(assignment.id);
    const before = (await teacher.engine.docs.record(url))!.heads;
    // The student's own engine writes it anyway (a tampered node); its replicator is honest
    // and never sends it (read-only sync state), so send it the way a hostile peer would.
    await student.engine.docs.change<"assignment">(url, (draft) => {
      draft.title = "Everyone gets 10/10";
    });
    first.atA.close(CloseCode.normal, "test");
    const second = memoryLinkPair({ peerId: "student-a", principal: student.replicator.identity }, { peerId: "teacher", principal: teacher.replicator.identity });
    const closed = new Promise<number>((resolve) => second.atB.once("close", ({ code }) => resolve(code)));
    teacher.replicator.addLink(second.atB);
    const data = await student.engine.docs.export(url);
    const A = await import("@automerge/automerge");
    const [, message] = A.generateSyncMessage(A.load(data!), { ...A.initSyncState() });
    // A first message has no changes; answer the teacher's reply with everything.
    const full = A.encodeSyncMessage({ heads: A.getHeads(A.load(data!)), need: [], have: [], changes: A.getAllChanges(A.load(data!)) });
    second.atA.send({ type: "sync", senderId: "student-a", targetId: "teacher", documentId: assignment.id, data: message ?? full });
    second.atA.send({ type: "sync", senderId: "student-a", targetId: "teacher", documentId: assignment.id, data: full });
    expect(await closed).toBe(CloseCode.forbiddenWrite);
    expect((await teacher.engine.docs.record(url))!.heads).toBe(before);
  });

  it("after one refusal, an honest node stops offering a document it may no longer write", async () => {
    const teacher = await node(nodePrincipal("teacher-node"), true);
    const course = teacher.course!;
    const [studentA, studentB] = [demoUser("student", 0), demoUser("student", 1)];
    const student = await node(principal(studentA, "student", [course]));
    const pair = () => memoryLinkPair({ peerId: "student-a", principal: student.replicator.identity }, { peerId: "teacher", principal: teacher.replicator.identity });
    const connect = () => {
      const { atA, atB } = pair();
      student.replicator.addLink(atA);
      teacher.replicator.addLink(atB);
      return new Promise<number>((resolve) => atA.once("close", ({ code }) => resolve(code)));
    };
    const first = connect();
    await until(() => teacher.replicator.peers().every((p) => p.inSync) && student.replicator.peers().every((p) => p.inSync), "first sync");
    const submission = docUrlOf((await student.engine.docs.records({ kind: "submission" }))[0]!.id);
    // The teacher gives the submission to another student while A is editing it.
    await student.engine.docs.change<"submission">(submission, (draft) => {
      draft.body = "edited offline";
    });
    await teacher.engine.docs.change<"submission">(submission, (draft) => {
      draft.student = studentB;
    });
    // (The first link saw both changes; its ending is what counts.)
    expect(await first).toBe(CloseCode.forbiddenWrite);
    // The next connection stays up: A's node no longer offers it.
    const second = connect();
    await until(() => teacher.replicator.peers().some((p) => p.connected && p.inSync) && student.replicator.peers().some((p) => p.connected && p.inSync), "second sync");
    const outcome = await Promise.race([second, new Promise<string>((resolve) => setTimeout(() => resolve("still open"), 1000))]);
    expect(outcome).toBe("still open");
    expect((await teacher.engine.docs.find<"submission">(submission))!.body).not.toBe("edited offline");
  });

  it("keeps a new quarantined document from staff without closing the link", async () => {
    const teacher = await node(nodePrincipal("teacher-node"), true);
    const relay = await node(nodePrincipal("relay"));
    const { atA, atB } = memoryLinkPair({ peerId: "relay", principal: relay.replicator.identity }, { peerId: "teacher", principal: teacher.replicator.identity });
    const closed: number[] = [];
    atA.once("close", ({ code }) => closed.push(code));
    relay.replicator.addLink(atA);
    teacher.replicator.addLink(atB);
    await until(() => relay.replicator.peers().every((p) => p.inSync) && teacher.replicator.peers().every((p) => p.inSync), "sync");
    // A page of a schema this node does not know yet (from a newer node): kept, quarantined.
    const A = await import("@automerge/automerge");
    const future = A.from({ kind: new A.ImmutableString("page"), schemaVersion: 99, course: new A.ImmutableString(teacher.course!), title: new A.ImmutableString("From the future") });
    const url = (await import("../../src/crdt/ids.js")).newDocUrl();
    await teacher.engine.docs.receive(url, A.save(future));
    await until(async () => (await relay.engine.docs.record(url))?.status === "invalid", "the quarantined page at the relay");
    expect(closed).toEqual([]);
  });
});
