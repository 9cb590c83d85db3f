import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { docUrlOf, documentIdOf, type DocUrl } from "../../src/crdt/ids.js";
import { CloseCode } from "../../src/net/close-codes.js";
import { revokeToken } from "../../src/net/trust.js";
import type { SyncNode } from "../../src/node/sync-node.js";
import { TestClassroom, eventually } from "../../src/testing/classroom.js";
import { demoUser } from "../../src/testing/principals.js";
import { ProbeClient } from "../../src/testing/probe-client.js";

/** Bad input at a running relay: each closes only the connection that sent it, and an honest node keeps syncing. */
describe("a relay facing bad peers", () => {
  let classroom: TestClassroom;
  let honest: SyncNode;
  let assignment: DocUrl;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);

  beforeAll(async () => {
    process.on("unhandledRejection", onUnhandled);
    classroom = await TestClassroom.start({ mode: "relay" });
    honest = await classroom.join(demoUser("student", 0), "student", { relay: classroom.authority.url! });
    await eventually(() => honest.status().peers.length === 1 && honest.status().inSync, "the honest node in sync");
    assignment = docUrlOf((await honest.engine.docs.records({ kind: "assignment" }))[0]!.id);
  });
  afterAll(async () => {
    process.off("unhandledRejection", onUnhandled);
    await classroom.stop();
  });

  /** The honest node still gets a teacher's edit through the relay. */
  async function honestStillSyncs(title: string): Promise<void> {
    await classroom.authority.engine.docs.change<"assignment">(assignment, (draft) => {
      draft.title = title;
    });
    await eventually(async () => (await honest.engine.docs.find<"assignment">(assignment))?.title === title, `"${title}" at the honest node`);
  }

  const student = () => ProbeClient.connect(classroom.authority.url!, { token: classroom.token(demoUser("student", 1), "student") });

  it("closes a connection that sends sync bytes Automerge cannot read", async () => {
    const probe = await student();
    probe.send({ type: "sync", senderId: probe.peerId, targetId: "x", documentId: documentIdOf(assignment), data: new Uint8Array([0x42, 1, 2, 3, 4]) });
    expect((await probe.closed).code).toBe(CloseCode.malformedMessage);
    await honestStillSyncs("After unreadable sync bytes");
  });

  it("closes a connection that sends a collection message without having announced Ordo", async () => {
    const probe = await student();
    probe.send({ type: "ordo-docs", senderId: probe.peerId, targetId: "x", data: new Uint8Array([5, 1, 2]) } as never);
    expect((await probe.closed).code).toBe(CloseCode.malformedMessage);
    await honestStillSyncs("After an unannounced collection message");
  });

  it("closes a connection that sends a 1-byte body", async () => {
    const probe = await student();
    probe.socket.send(new Uint8Array([0xf6]));
    expect((await probe.closed).code).toBe(CloseCode.malformedMessage);
    await honestStillSyncs("After a 1-byte body");
  });

  it("answers a request for a document id that is not one with a closed connection, not a crash", async () => {
    const probe = await student();
    probe.send({ type: "request", senderId: probe.peerId, targetId: "x", documentId: "1111111111111111111111111111", data: new Uint8Array([0x42]) });
    expect((await probe.closed).code).toBe(CloseCode.malformedMessage);
    await honestStillSyncs("After a bad document id");
  });

  it("refuses a revoked token at the upgrade, without a restart", async () => {
    const token = classroom.token(demoUser("student", 1), "student");
    (await ProbeClient.connect(classroom.authority.url!, { token })).close();
    revokeToken(classroom.authority.engine.dataDir, token);
    await eventually(async () => {
      try {
        (await ProbeClient.connect(classroom.authority.url!, { token })).close();
        return false;
      } catch (error) {
        return (error as { status?: number }).status === 401;
      }
    }, "the revoked token refused");
    await honestStillSyncs("After a revoked token");
    expect(unhandled).toEqual([]);
  });
});
