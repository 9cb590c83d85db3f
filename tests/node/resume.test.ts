import { afterAll, describe, expect, it } from "vitest";
import type { PeerStatus } from "../../src/replication/replicator.js";
import { TestClassroom, eventually } from "../../src/testing/classroom.js";
import { tcpProxy } from "../../src/testing/tcp-proxy.js";
import { demoUser } from "../../src/testing/principals.js";
import { changesCarried, serverMessages } from "../../src/testing/ws-capture.js";

describe("a node that loses its relay and comes back", () => {
  let classroom: TestClassroom | undefined;
  afterAll(async () => {
    await classroom?.stop();
  });

  it("resumes without the relay re-sending what the node has, and says so in its peer events", async () => {
    classroom = await TestClassroom.start({ mode: "relay", demo: { students: 5, assignments: 4, topics: 2, postsPerTopic: 5 } });
    const proxy = await tcpProxy(Number(new URL(classroom.authority.url!).port));
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
