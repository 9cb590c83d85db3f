import { createServer } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocketServer } from "ws";
import { docUrlOf } from "../../src/crdt/ids.js";
import { CloseCode } from "../../src/net/close-codes.js";
import { newNonce } from "../../src/net/holder-proof.js";
import { TestClassroom, eventually } from "../../src/testing/classroom.js";
import { demoUser } from "../../src/testing/principals.js";
import { ProbeClient } from "../../src/testing/probe-client.js";

/** A node's token is worthless to whoever copies it: it names the node's key, and every join must prove it. */
describe("a copied token", () => {
  let classroom: TestClassroom;
  beforeAll(async () => {
    classroom = await TestClassroom.start({ mode: "node" });
  });
  afterAll(async () => {
    await classroom.stop();
  });

  it("taken from a node's peer message does not let a student in as that node", async () => {
    const student = await ProbeClient.connect(classroom.authority.url!, { token: classroom.token(demoUser("student", 1), "student"), joinMetadata: { ordoNonce: newNonce() } });
    const peer = student.received.find((m) => m.type === "peer");
    const nodeToken = peer && "peerMetadata" in peer ? (peer.peerMetadata["ordoToken"] as string | undefined) : undefined;
    expect(nodeToken).toBeDefined();
    student.close();
    await expect(ProbeClient.connect(classroom.authority.url!, { token: nodeToken })).rejects.toMatchObject({ code: CloseCode.unauthenticated });
  });

  it("sent by a node that dials a stranger does not let the stranger in", async () => {
    // A stranger's server, such as anyone could announce on the LAN: it keeps whatever token a dialer presents.
    const harvested: string[] = [];
    const http = createServer();
    const wss = new WebSocketServer({ server: http });
    wss.on("connection", (socket, request) => {
      harvested.push(String(request.headers.authorization ?? "").replace(/^Bearer /, ""));
      socket.close();
    });
    await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
    try {
      const node = await classroom.join(demoUser("teacher", 0), "teacher");
      node.connect(`ws://127.0.0.1:${(http.address() as { port: number }).port}`);
      await eventually(() => harvested.length > 0, "the dialer's token at the stranger's");
      await expect(ProbeClient.connect(classroom.authority.url!, { token: harvested[0] })).rejects.toMatchObject({ code: CloseCode.unauthenticated });
      // The node that owns the token still gets in, proving it holds the key.
      node.connect(classroom.authority.url!);
      const assignment = (await classroom.authority.engine.docs.records({ kind: "assignment" }))[0]!;
      await eventually(async () => (await node.engine.docs.record(docUrlOf(assignment.id))) !== undefined, "the teacher's own node syncing");
    } finally {
      wss.close();
      http.close();
    }
  });
});
