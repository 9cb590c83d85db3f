import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { DEMO_SYSTEM } from "../../src/demo/demo-course.js";
import { externalDocUrl } from "../../src/crdt/ids.js";
import { eventually } from "../../src/testing/classroom.js";
import { demoUser } from "../../src/testing/principals.js";
import { makeTempDir } from "../../src/testing/temp-dir.js";

const ORDO = join(import.meta.dirname, "../../bin/ordo.js");
const children: ChildProcess[] = [];
const temps: Array<() => void> = [];
afterEach(async () => {
  for (const child of children.splice(0)) {
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
  }
  for (const remove of temps.splice(0)) remove();
});

function ordo(args: string[]): string {
  const result = spawnSync(process.execPath, [ORDO, ...args], { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`ordo ${args[0]} failed: ${result.stderr}`);
  return result.stdout;
}

/** Starts `ordo serve` and resolves once it prints where it listens. */
async function serve(args: string[]): Promise<ChildProcess> {
  const child = spawn(process.execPath, [ORDO, "serve", "--port", "0", "--interface", "127.0.0.1", "--json", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes("\n")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`serve exited ${code}`)));
  });
  return child;
}

describe("two `ordo serve` processes on one LAN", () => {
  it("find each other by mDNS, with no relay and no address given, and sync the course", async () => {
    const teacher = makeTempDir("ordo-lan-teacher-");
    const student = makeTempDir("ordo-lan-student-");
    temps.push(teacher.remove, student.remove);
    await serve(["--data", teacher.dir, "--seed-demo"]);
    const course = externalDocUrl("course", { system: DEMO_SYSTEM, id: "1/course" });
    ordo(["init", "--data", student.dir]);
    // The token names the student's device key, as printed there.
    const key = ordo(["authority", "--data", student.dir]).trim();
    const token = ordo(["token", "issue", "--data", teacher.dir, "--user", demoUser("student", 0), "--course", course, "--role", "student", "--key", key]).trim();
    const tokenFile = join(student.dir, "student.token");
    writeFileSync(tokenFile, token);
    await serve(["--data", student.dir, "--token-file", tokenFile]);

    await eventually(() => {
      const published = JSON.parse(ordo(["query", "--data", student.dir, "--json", "select count(*) as n from assignments"])) as Array<{ n: number }>;
      return published[0]?.n === 9;
    }, "the published assignments in the student's projection", 45_000);
    // A script waits for "in sync" in `ordo status --json` rather than polling tables.
    type Status = { node: { inSync: boolean; peers: Array<{ role: string; connected: boolean; inSync: boolean; pendingOut: number; pendingIn: number }> } };
    const status = () => JSON.parse(ordo(["status", "--data", student.dir, "--json"])) as Status;
    await eventually(() => status().node.inSync, "the student's node in sync", 45_000);
    const peers = status().node.peers.filter((peer) => peer.connected);
    expect(peers.map(({ role, inSync, pendingOut, pendingIn }) => ({ role, inSync, pendingOut, pendingIn }))).toEqual([{ role: "node", inSync: true, pendingOut: 0, pendingIn: 0 }]);
    const own = JSON.parse(ordo(["query", "--data", student.dir, "--json", `select count(*) as n from submissions where student_url = '${demoUser("student", 0)}'`])) as Array<{ n: number }>;
    expect(own[0]!.n).toBe(10);
    // Nothing of another student's.
    const others = JSON.parse(ordo(["query", "--data", student.dir, "--json", `select count(*) as n from submissions where student_url != '${demoUser("student", 0)}'`])) as Array<{ n: number }>;
    expect(others[0]!.n).toBe(0);
  });
});
