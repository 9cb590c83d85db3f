import { parseAutomergeUrl } from "@automerge/automerge-repo/slim";
import { afterAll, describe, expect, it } from "vitest";
import { docUrlOf, documentIdOf, type DocUrl } from "../../src/crdt/ids.js";
import { TestClassroom, eventually } from "../../src/testing/classroom.js";
import { tcpProxy } from "../../src/testing/tcp-proxy.js";
import { demoUser } from "../../src/testing/principals.js";
import { changesCarried, serverMessages } from "../../src/testing/ws-capture.js";

describe("what reaches a student's device", () => {
  let classroom: TestClassroom | undefined;
  afterAll(async () => {
    await classroom?.stop();
  });

  it("carries no id, heads or content of another student's submission or grade", async () => {
    classroom = await TestClassroom.start({ mode: "relay", demo: { students: 4, assignments: 3, topics: 2, postsPerTopic: 4 } });
    const relay = classroom.authority;
    const store = relay.engine.docs;
    const [studentA, studentB] = [demoUser("student", 0), demoUser("student", 1)];
    const marker = (who: string) => `${who}-only-${Math.random().toString(36).slice(2)}`;
    const secretA = marker("secret-of-A");
    const visibleB = marker("visible-to-B");
    const records = await store.records();
    const mine = (owner: DocUrl, kind: string) => records.filter((r) => r.kind === kind && r.owner === owner).map((r) => docUrlOf(r.id));
    const submissionsA = mine(studentA, "submission");
    const gradesA = mine(studentA, "grade");
    expect(submissionsA.length).toBeGreaterThan(0);
    expect(gradesA.length).toBeGreaterThan(0);
    await store.change<"submission">(submissionsA[0]!, (draft) => {
      draft.body = `My answer: ${secretA}`;
    });
    await store.change<"grade">(gradesA[0]!, (draft) => {
      draft.grade = secretA;
    });
    await store.change<"submission">(mine(studentB, "submission")[0]!, (draft) => {
      draft.body = `My answer: ${visibleB}`;
    });

    const proxy = await tcpProxy(Number(new URL(relay.url!).port));
    try {
      const deviceB = await classroom.join(studentB, "student", { relay: `ws://127.0.0.1:${proxy.port}` });
      await eventually(() => deviceB.status().peers.length === 1 && deviceB.status().inSync, "B's device in sync with the relay");
      await eventually(async () => (await deviceB.engine.docs.records()).length > 20, "B's device holds the course");
      await new Promise((resolve) => setTimeout(resolve, 500));
      const bytes = proxy.received();

      // The scan can fail: B's own work is in the bytes (its ids here, its text among the decoded changes below).
      expect(bytes.includes(documentIdOf(mine(studentB, "submission")[0]!))).toBe(true);

      const secrets: Array<[string, Buffer | string]> = [["A's submission text", secretA]];
      for (const url of [...submissionsA, ...gradesA]) {
        const id = documentIdOf(url);
        secrets.push([`id ${id}`, id], [`binary id ${id}`, Buffer.from(parseAutomergeUrl(url).binaryDocumentId)]);
        for (const head of (await store.record(url))!.heads.split(",")) secrets.push([`heads of ${id}`, Buffer.from(head, "hex")], [`hex heads of ${id}`, head]);
      }
      const leaked = secrets.filter(([, needle]) => bytes.includes(needle)).map(([what]) => what);
      expect(leaked).toEqual([]);

      // Larger changes travel deflated: decode every change that reached B and search its ops too.
      const ops = changesCarried(serverMessages(bytes))
        .map((change) => `${JSON.stringify(change.ops)}\n${change.ops.map((op) => (typeof op.value === "string" ? op.value : "")).join("")}`)
        .join("\n");
      expect(ops).toContain(visibleB);
      const originalA = (await store.find<"submission">(submissionsA[1] ?? submissionsA[0]!))!.body;
      for (const needle of [secretA, ...submissionsA.map(documentIdOf), ...gradesA.map(documentIdOf), originalA]) {
        if (needle) expect(ops.includes(needle), `"${needle}" in the changes B received`).toBe(false);
      }

      // Nor does B's device hold any of it.
      const held = new Set((await deviceB.engine.docs.records({ includeDeleted: true })).map((r) => r.id));
      expect([...submissionsA, ...gradesA].filter((url) => held.has(documentIdOf(url)))).toEqual([]);
    } finally {
      proxy.close();
    }
  });
});
