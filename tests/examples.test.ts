import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";

const EXAMPLES = new URL("../examples/", import.meta.url).pathname;

describe("every example runs as a user would run it", () => {
  it.each(readdirSync(EXAMPLES).filter((f) => f.endsWith(".ts") && !f.startsWith(".")))("%s exits cleanly and prints its result", (file) => {
    const run = spawnSync(process.execPath, ["--import", "tsx", `${EXAMPLES}${file}`], { encoding: "utf8" });
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(run.stdout.trim().length).toBeGreaterThan(0);
  });

  it("embed.ts queries the assignment it changed", () => {
    const run = spawnSync(process.execPath, ["--import", "tsx", `${EXAMPLES}embed.ts`], { encoding: "utf8" });
    expect(JSON.parse(run.stdout)).toEqual([{ title: "Lab 1: Cells", due_at: "2026-09-04T23:59:00.000Z", points_possible: 10 }]);
  });
});
