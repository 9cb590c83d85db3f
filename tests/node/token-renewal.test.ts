import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, it } from "vitest";
import { Authority } from "../../src/net/authority.js";
import { SyncNode } from "../../src/node/sync-node.js";
import { TestClassroom, eventually } from "../../src/testing/classroom.js";
import { demoUser } from "../../src/testing/principals.js";
import { makeTempDir } from "../../src/testing/temp-dir.js";

describe("a node whose token is renewed in its token file", () => {
  let classroom: TestClassroom | undefined;
  const temp = makeTempDir("ordo-renewal-");
  afterAll(async () => {
    await classroom?.stop();
    temp.remove();
  });

  it("is closed when the old token expires and comes back with the new one, without a restart", async () => {
    classroom = await TestClassroom.start({ mode: "relay" });
    const holderKey = Authority.open(temp.dir).publicKey;
    const tokenFile = join(temp.dir, "student.token");
    const issue = (ttlMs: number) => classroom!.token(demoUser("student", 0), "student", { ttlMs, holderKey });
    writeFileSync(tokenFile, issue(2_500));
    const node = await SyncNode.start({ dataDir: temp.dir, create: true, tokenFile, relay: classroom.authority.url!, discovery: false });
    classroom.nodes.push(node);
    const closes: number[] = [];
    node.replicator.on("peer-status", (status) => {
      if (!status.connected) closes.push(0);
    });
    await eventually(() => node.status().peers.some((p) => p.connected), "connected with the first token");
    writeFileSync(tokenFile, issue(3_600_000));
    await eventually(() => closes.length > 0, "the session ended when the first token expired");
    await eventually(() => node.status().peers.some((p) => p.connected) && node.identity.principal.expiresAt > Date.now() + 60_000, "back with the renewed token", 30_000);
  });
});
