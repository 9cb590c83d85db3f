import { createServer, connect, type Server, type Socket } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import type { PeerStatus } from "../../src/replication/replicator.js";
import { TestClassroom, eventually } from "../../src/testing/classroom.js";
import { demoUser } from "../../src/testing/principals.js";
import { changesCarried, serverMessages } from "../../src/testing/ws-capture.js";

/** A TCP proxy that counts the bytes the server sends, keeps them, and can cut every connection. */
async function cuttableProxy(upstreamPort: number) {
  const chunks: Buffer[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(upstreamPort, "127.0.0.1");
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("error", () => socket.destroy());
      socket.on("close", () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.on("data", (chunk: Buffer) => chunks.push(chunk));
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as { port: number }).port,
    received: () => Buffer.concat(chunks),
    cut: () => {
      for (const socket of sockets) socket.destroy();
    },
    close: () => server.close(),
  };
}

describe("a node that loses its relay and comes back", () => {
  let classroom: TestClassroom | undefined;
  afterAll(async () => {
    await classroom?.stop();
  });

  it("resumes without the relay re-sending what the node has, and says so in its peer events", async () => {
    classroom = await TestClassroom.start({ mode: "relay", demo: { students: 5, assignments: 4, topics: 2, postsPerTopic: 5 } });
    const proxy = await cuttableProxy(Number(new URL(classroom.authority.url!).port));
    try {
      const node = await classroom.join(demoUser("student", 0), "student", { relay: `ws://127.0.0.1:${proxy.port}` });
      const events: PeerStatus[] = [];
      node.replicator.on("peer-status", (status) => events.push(status));
      const settled = () => node.status().peers.length === 1 && node.status().inSync;
      await eventually(settled, "the first sync");
      const first = proxy.received();
      await eventually(() => events.some((e) => e.inSync), "a peer event saying the node is in sync");

      proxy.cut();
      await eventually(() => events.some((e) => !e.connected), "an event saying the relay is gone");
      await eventually(() => node.status().peers.length === 1 && node.status().peers[0]!.connected, "the dialer back by itself");
      await eventually(settled, "in sync again");
      const second = proxy.received().subarray(first.length);

      // The first session carried the course; the second not one change of it.
      expect(changesCarried(serverMessages(first)).length).toBeGreaterThan(20);
      expect(changesCarried(serverMessages(second))).toEqual([]);
      // What remains is one heads exchange per document (a collection summary would shrink it further).
      expect(second.length).toBeLessThan(first.length / 2);
    } finally {
      proxy.close();
    }
  });
});
