import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeTempDir } from "../../src/testing/temp-dir.js";

const ORDO = join(import.meta.dirname, "../../bin/ordo.js");
const run = promisify(execFile);

async function ordo(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [ORDO, ...args], { env: { ...process.env, ORDO_DATA: undefined } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

describe("ordo conflicts strategy", () => {
  const temp = makeTempDir("ordo-strategy-");
  const data = join(temp.dir, "node");
  beforeAll(async () => {
    expect((await ordo(["init", "--data", data])).code).toBe(0);
    expect((await ordo(["demo", "--data", data, "--students", "2", "--assignments", "1"])).code).toBe(0);
  }, 60_000);
  afterAll(() => temp.remove());

  it("sets a strategy for the course and for one kind, and lists them", async () => {
    expect((await ordo(["conflicts", "strategy", "prefer_recent", "--data", data])).code).toBe(0);
    const set = await ordo(["conflicts", "strategy", "merge_prefer_discourse", "--kind", "post", "--data", data]);
    expect(set.stdout).toMatch(/conflicts over post in automerge:\S+ are now settled by merge_prefer_discourse/);
    const listed = JSON.parse((await ordo(["conflicts", "strategy", "--json", "--data", data])).stdout) as Array<{ kind: string; strategy: string }>;
    expect(listed.map((row) => [row.kind, row.strategy])).toEqual([
      ["*", "prefer_recent"],
      ["post", "merge_prefer_discourse"],
    ]);
  });

  it("refuses an unknown strategy or kind with a clear line", async () => {
    const strategy = await ordo(["conflicts", "strategy", "prefer_mine", "--data", data]);
    expect(strategy.code).not.toBe(0);
    expect(strategy.stderr).toContain("expected one of prefer_canvas, prefer_discourse, prefer_recent, merge_prefer_canvas, merge_prefer_discourse");
    const kind = await ordo(["conflicts", "strategy", "prefer_canvas", "--kind", "posts", "--data", data]);
    expect(kind.code).not.toBe(0);
    expect(kind.stderr).toContain("expected a kind of document");
  });
});
