import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { seedDemoCourse } from "../../src/demo/demo-course.js";
import { SyncNode } from "../../src/node/sync-node.js";
import { TestClassroom, eventually } from "../../src/testing/classroom.js";
import { demoUser } from "../../src/testing/principals.js";
import { makeTempDir } from "../../src/testing/temp-dir.js";

/** A self-signed certificate for 127.0.0.1, made with openssl. */
function selfSigned(dir: string): { cert: string; key: string } {
  const result = spawnSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")], { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`openssl failed: ${result.stderr}`);
  return { cert: readFileSync(join(dir, "cert.pem"), "utf8"), key: readFileSync(join(dir, "key.pem"), "utf8") };
}

describe("a relay on wss://", () => {
  let classroom: TestClassroom;
  let relay: SyncNode;
  let cert: string;
  const temp = makeTempDir("ordo-tls-");

  beforeAll(async () => {
    const tls = selfSigned(temp.dir);
    cert = tls.cert;
    classroom = await TestClassroom.start({ mode: "node" });
    relay = await classroom.join("relay", "node", { mode: "relay", listen: { port: 0, tls } });
    // The same demo course as the authority's (demo documents have fixed identities).
    await seedDemoCourse(relay.engine.docs, { students: 3, assignments: 2, topics: 1, postsPerTopic: 3 });
  });
  afterAll(async () => {
    await classroom.stop();
    temp.remove();
  });

  it("carries the course to a node that trusts its certificate", async () => {
    expect(relay.url).toMatch(/^wss:\/\/127\.0\.0\.1:\d+$/);
    const student = await classroom.join(demoUser("student", 0), "student", { relay: relay.url!, ca: cert });
    await eventually(async () => (await student.engine.docs.records({ kind: "assignment" })).length === 1, "the published assignment over wss");
  });

  it("keeps a node that does not trust the certificate out, and running", async () => {
    const stranger = await classroom.join(demoUser("student", 1), "student", { relay: relay.url! });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(stranger.status().peers).toEqual([]);
    expect(stranger.status().relay?.state).not.toBe("connected");
  });
});
