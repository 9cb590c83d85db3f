import * as A from "@automerge/automerge";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { catalogUrl } from "../../src/crdt/catalog.js";
import { docUrlOf, documentIdOf, newDocUrl, type DocUrl } from "../../src/crdt/ids.js";
import { CloseCode } from "../../src/net/close-codes.js";
import { Authority } from "../../src/net/authority.js";
import type { Role } from "../../src/net/principal.js";
import { TestClassroom, eventually } from "../../src/testing/classroom.js";
import { demoUser } from "../../src/testing/principals.js";
import { ProbeClient } from "../../src/testing/probe-client.js";

type DocName = "roster" | "publishedAssignment" | "unpublishedAssignment" | "submissionA" | "submissionB" | "gradeA" | "gradeB" | "postByA";
type PrincipalName = "teacher" | "ta" | "studentA" | "studentB" | "observer";

const DOCS: readonly DocName[] = ["roster", "publishedAssignment", "unpublishedAssignment", "submissionA", "submissionB", "gradeA", "gradeB", "postByA"];
const ALL = new Set(DOCS);

/** The matrix: what each principal may read and write (learning that a document exists goes with reading it). */
const EXPECTED: Record<PrincipalName, { role: Role; user: DocUrl; reads: ReadonlySet<DocName>; writes: ReadonlySet<DocName> }> = {
  teacher: { role: "teacher", user: demoUser("teacher", 0), reads: ALL, writes: ALL },
  ta: { role: "ta", user: demoUser("teacher", 1), reads: ALL, writes: ALL },
  studentA: { role: "student", user: demoUser("student", 0), reads: new Set(["roster", "publishedAssignment", "submissionA", "gradeA", "postByA"]), writes: new Set(["submissionA", "postByA"]) },
  studentB: { role: "student", user: demoUser("student", 1), reads: new Set(["roster", "publishedAssignment", "submissionB", "gradeB", "postByA"]), writes: new Set(["submissionB"]) },
  observer: { role: "observer", user: demoUser("student", 2), reads: new Set(["roster", "publishedAssignment", "postByA"]), writes: new Set() },
};

describe.each(["relay", "node"] as const)("authorization on a %s", (mode) => {
  let classroom: TestClassroom;
  let url: string;
  const docs = {} as Record<DocName, DocUrl>;

  beforeAll(async () => {
    classroom = await TestClassroom.start({ mode });
    url = classroom.authority.url!;
    const store = classroom.authority.engine.docs;
    const course = classroom.course;
    const [studentA, studentB] = [demoUser("student", 0), demoUser("student", 1)];
    const records = await store.records();
    const assignments = records.filter((r) => r.kind === "assignment");
    const published = (await Promise.all(assignments.map(async (r) => ({ r, e: await store.find<"assignment">(docUrlOf(r.id)) })))).sort((x, y) => Number(y.e!.published) - Number(x.e!.published));
    docs.publishedAssignment = docUrlOf(published[0]!.r.id);
    docs.unpublishedAssignment = docUrlOf(published[1]!.r.id);
    expect((await store.find<"assignment">(docs.unpublishedAssignment))!.published).toBe(false);
    docs.roster = docUrlOf(records.find((r) => r.kind === "enrollment" && r.owner === studentB)!.id);
    docs.submissionA = docUrlOf(records.find((r) => r.kind === "submission" && r.owner === studentA)!.id);
    docs.submissionB = docUrlOf(records.find((r) => r.kind === "submission" && r.owner === studentB)!.id);
    const grade = (student: DocUrl, submission: DocUrl) => store.create("grade", { course, student, submission, assignment: docs.publishedAssignment, score: 7, grade: "7" });
    docs.gradeA = (await grade(studentA, docs.submissionA)).url;
    docs.gradeB = (await grade(studentB, docs.submissionB)).url;
    const topic = records.find((r) => r.kind === "discussion_topic")!;
    docs.postByA = (await store.create("post", { course, topic: docUrlOf(topic.id), author: studentA, message: "A's thoughts", parent: null })).url;
  });
  afterAll(async () => {
    await classroom.stop();
  });

  const connect = (who: PrincipalName) => ProbeClient.connect(url, { token: classroom.token(EXPECTED[who].user, EXPECTED[who].role) });

  it.each(Object.keys(EXPECTED) as PrincipalName[])("%s reads exactly what it may, and learns of nothing else", async (who) => {
    const probe = await connect(who);
    // What the server offers unasked names only readable documents.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const offered = probe.documentsNamed();
    const unknown = await probe.read(documentIdOf(newDocUrl()));
    expect(unknown.status).toBe("unavailable");
    for (const name of DOCS) {
      const id = documentIdOf(docs[name]);
      const result = await probe.read(id);
      const may = EXPECTED[who].reads.has(name);
      expect({ name, status: result.status }).toEqual({ name, status: may ? "ok" : "unavailable" });
      if (!may) expect(offered.has(id), `${name} offered to ${who}`).toBe(false);
    }
    // Nor do the catalog partitions it can read.
    const course = classroom.course;
    for (const audience of ["course", `student:${EXPECTED[who].user}`, "staff"] as const) {
      const result = await probe.read(documentIdOf(catalogUrl(course, audience)));
      if (result.status !== "ok") continue;
      const keys = Object.keys(result.doc).join(" ");
      for (const name of DOCS) if (!EXPECTED[who].reads.has(name)) expect(keys.includes(documentIdOf(docs[name])), `${name} in ${audience} catalog`).toBe(false);
    }
    probe.close();
  });

  it.each(Object.keys(EXPECTED) as PrincipalName[])("%s writes exactly what it may; any other write closes its connection and changes nothing", async (who) => {
    const store = classroom.authority.engine.docs;
    for (const name of DOCS) {
      const target = docs[name];
      const before = (await store.record(target))!.heads;
      const changed = A.change(A.load<Record<string, unknown>>((await store.export(target))!), (d) => {
        d.updatedAt = new A.ImmutableString(new Date(Date.now() + 1000).toISOString());
      });
      const probe = await connect(who);
      probe.pushChanges(documentIdOf(target), changed);
      if (EXPECTED[who].writes.has(name)) {
        const head = A.getHeads(changed)[0]!;
        await eventually(async () => (await store.record(target))!.heads.includes(head), `${who}'s write to ${name} applied`);
        probe.close();
      } else {
        const closed = await probe.closed;
        expect({ name, code: closed.code }).toEqual({ name, code: CloseCode.forbiddenWrite });
        expect((await store.record(target))!.heads).toBe(before);
      }
    }
  });

  it("answers a sync message about a document a student may not read exactly as about one that does not exist", async () => {
    const probe = await connect("studentA");
    const ask = async (documentId: string) => {
      const from = probe.received.length;
      const [, data] = A.generateSyncMessage(A.init(), A.initSyncState());
      probe.send({ type: "sync", senderId: probe.peerId, targetId: probe.received.find((m) => m.type === "peer")?.senderId ?? "", documentId, data: data! });
      const reply = await probe.waitFor((m) => "documentId" in m && m.documentId === documentId, 2_000, from);
      return reply ? { type: reply.type, data: "data" in reply ? Buffer.from(reply.data).toString("hex") : null } : null;
    };
    const absent = await ask(documentIdOf(newDocUrl()));
    expect(absent).not.toBeNull();
    expect(await ask(documentIdOf(docs.submissionB))).toEqual(absent);
    expect(await ask(documentIdOf(docs.unpublishedAssignment))).toEqual(absent);
    probe.close();
  });

  it("refuses expired, forged and missing tokens at the upgrade with 401", async () => {
    const expired = Authority.open(classroom.authority.engine.dataDir).issue({ user: EXPECTED.teacher.user, role: "teacher", courses: [classroom.course], ttlMs: 1000, now: Date.now() - 60_000 });
    const forged = Authority.open(`${classroom.authority.engine.dataDir}-elsewhere`).issue({ user: EXPECTED.teacher.user, role: "teacher", courses: [classroom.course], ttlMs: 60_000 });
    for (const token of [expired, forged, undefined]) {
      await expect(ProbeClient.connect(url, { token })).rejects.toMatchObject({ status: 401 });
    }
  });

  it("refuses a join that claims another principal's peer id, and keeps the victim connected", async () => {
    const victim = await ProbeClient.connect(url, { token: classroom.token(EXPECTED.studentA.user, "student"), peerId: "victim-peer" });
    await expect(ProbeClient.connect(url, { token: classroom.token(EXPECTED.studentB.user, "student"), peerId: "victim-peer" })).rejects.toMatchObject({ code: CloseCode.peerIdTaken });
    expect((await victim.read(documentIdOf(docs.submissionA))).status).toBe("ok");
    victim.close();
  });

  it("accepts the token from each carrier: header, subprotocol, query parameter", async () => {
    for (const carrier of ["header", "subprotocol", "query"] as const) {
      const probe = await ProbeClient.connect(url, { token: classroom.token(EXPECTED.studentA.user, "student"), carrier });
      expect((await probe.read(documentIdOf(docs.publishedAssignment))).status).toBe("ok");
      probe.close();
    }
  });

  it("closes a live session when its token expires", async () => {
    const probe = await ProbeClient.connect(url, { token: Authority.open(classroom.authority.engine.dataDir).issue({ user: EXPECTED.studentA.user, role: "student", courses: [classroom.course], ttlMs: 1500 }) });
    expect((await probe.closed).code).toBe(CloseCode.tokenExpired);
  });

  it("the peer reports who is connected", async () => {
    const probe = await connect("studentA");
    await eventually(() => classroom.authority.status().peers.some((p) => p.user === EXPECTED.studentA.user && p.connected), "the student listed as a peer");
    probe.close();
  });
});
