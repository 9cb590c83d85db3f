import { afterEach, describe, expect, it } from "vitest";
import { docUrlOf, type DocUrl } from "../../src/crdt/ids.js";
import { SyncNode } from "../../src/node/sync-node.js";
import { TestClassroom, eventually } from "../../src/testing/classroom.js";
import { demoUser } from "../../src/testing/principals.js";

let classroom: TestClassroom | undefined;
afterEach(async () => {
  await classroom?.stop();
  classroom = undefined;
});

async function titleOf(node: SyncNode, url: DocUrl): Promise<string | undefined> {
  const row = await node.engine.db.selectFrom("assignments").select("title").where("doc_url", "=", url).executeTakeFirst();
  return row?.title ?? undefined;
}

describe("a relay", () => {
  it("syncs two nodes that never meet, and again after the relay restarts", async () => {
    classroom = await TestClassroom.start({ mode: "relay" });
    const relay = classroom.authority;
    const relayUrl = relay.url!;
    const teacher = await classroom.join(demoUser("teacher", 0), "teacher", { relay: relayUrl });
    const student = await classroom.join(demoUser("student", 0), "student", { relay: relayUrl });
    await eventually(() => teacher.status().inSync && student.status().inSync && teacher.status().peers.length === 1 && student.status().peers.length === 1, "both nodes in sync with the relay");

    const assignment = docUrlOf((await student.engine.docs.records({ kind: "assignment" }))[0]!.id);
    await teacher.engine.docs.change<"assignment">(assignment, (draft) => {
      draft.title = "Lab 1, revised";
    });
    await eventually(async () => (await titleOf(student, assignment)) === "Lab 1, revised", "the teacher's edit at the student's, through the relay");
    expect(student.status().peers.map((peer) => peer.role)).toEqual(["node"]);
    await eventually(() => student.documentStatus(assignment).relay === "in-sync", "the assignment in sync with the relay");

    // The relay goes away and comes back on the same port with the same store.
    const dataDir = relay.engine.dataDir;
    const port = Number(new URL(relayUrl).port);
    await relay.close();
    classroom.nodes.splice(classroom.nodes.indexOf(relay), 1);
    await eventually(() => !student.status().peers.some((peer) => peer.connected), "the student sees the relay gone");
    expect(student.documentStatus(assignment).relay).toBe("offline");
    await teacher.engine.docs.change<"assignment">(assignment, (draft) => {
      draft.title = "Lab 1, made while the relay was down";
    });
    const restarted = await SyncNode.start({ dataDir, mode: "relay", listen: { port }, discovery: false });
    classroom.nodes.push(restarted);
    await eventually(async () => (await titleOf(student, assignment)) === "Lab 1, made while the relay was down", "the edit after the relay restarted", 30_000);
  });

  it("carries a course whose authority is the teacher's node, with a token the teacher signed for it", async () => {
    classroom = await TestClassroom.start({ mode: "node" });
    const teacherNode = classroom.authority;
    const relay = await classroom.join("relay", "node", { mode: "relay" });
    teacherNode.connect(relay.url!);
    const student = await classroom.join(demoUser("student", 0), "student", { relay: relay.url! });
    await eventually(async () => (await student.engine.docs.records({ kind: "assignment" })).length === 1, "the published assignment at the student's, through the relay");
    const assignment = docUrlOf((await student.engine.docs.records({ kind: "assignment" }))[0]!.id);
    await teacherNode.engine.docs.change<"assignment">(assignment, (draft) => {
      draft.title = "Lab 1, from the teacher's laptop";
    });
    await eventually(async () => (await titleOf(student, assignment)) === "Lab 1, from the teacher's laptop", "the edit through the relay");
  });
});
