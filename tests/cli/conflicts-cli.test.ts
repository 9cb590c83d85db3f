import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import BetterSqlite3 from "better-sqlite3";
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

describe("ordo conflicts", () => {
  const temp = makeTempDir("ordo-conflicts-");
  const data = join(temp.dir, "node");
  beforeAll(async () => {
    expect((await ordo(["init", "--data", data])).code).toBe(0);
  }, 60_000);
  afterAll(() => temp.remove());

  /** Two conflicts as the connectors record them (migrations/0003): values as text, JSON when not a string. */
  const CONFLICTS = [
    { doc_url: "automerge:2yW3cK1TitleClash", system: "canvas", field: "title", local_value: "Lab 1: onion skin", remote_value: "Lab 1: onion cells", strategy: "prefer_canvas", resolution: "canvas's value kept (prefer_canvas)", detected_at: "2026-03-01T10:00:00.000Z" },
    { doc_url: "automerge:3Zx4dL2PointsClash", system: "discourse", field: "pointsPossible", local_value: "12", remote_value: null, strategy: "prefer_recent", resolution: "this node's value kept (prefer_recent)", detected_at: "2026-03-01T11:30:00.000Z" },
  ];

  function insertConflicts(): void {
    const db = new BetterSqlite3(join(data, "projection.sqlite"));
    try {
      const insert = db.prepare("INSERT INTO remote_conflicts (doc_url, system, field, local_value, remote_value, strategy, resolution, detected_at) VALUES (@doc_url, @system, @field, @local_value, @remote_value, @strategy, @resolution, @detected_at)");
      // The later one first: the listing orders by when each was found.
      for (const row of [...CONFLICTS].reverse()) insert.run(row);
    } finally {
      db.close();
    }
  }

  it("lists each conflict with both values and how it was resolved, oldest first, as JSON and as a table", async () => {
    const none = await ordo(["conflicts", "--json", "--data", data]);
    expect(none.code).toBe(0);
    expect(JSON.parse(none.stdout)).toEqual([]);
    insertConflicts();

    const listed = await ordo(["conflicts", "--json", "--data", data]);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual(CONFLICTS.map((row) => ({ id: expect.any(Number) as unknown, ...row })));

    const table = await ordo(["conflicts", "--data", data]);
    expect(table.code).toBe(0);
    const lines = table.stdout.trimEnd().split("\n");
    expect(lines[0]!.split(/\s{2,}/)).toEqual(["detected_at", "system", "doc_url", "field", "local_value", "remote_value", "strategy", "resolution"]);
    expect(lines[2]).toMatch(/^2026-03-01T10:00:00.000Z\s+canvas\s+automerge:2yW3cK1TitleClash\s+title\s+Lab 1: onion skin\s+Lab 1: onion cells\s+prefer_canvas\s+canvas's value kept \(prefer_canvas\)$/);
    // A value the other side does not have is an empty cell.
    expect(lines[3]).toMatch(/^2026-03-01T11:30:00.000Z\s+discourse\s+automerge:3Zx4dL2PointsClash\s+pointsPossible\s+12\s+prefer_recent\s+this node's value kept \(prefer_recent\)$/);
    expect(lines.at(-1)).toBe("(2 rows)");
  });
});

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
