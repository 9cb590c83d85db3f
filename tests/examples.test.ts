import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";

const EXAMPLES = new URL("../examples/", import.meta.url).pathname;

/** Past the examples' own 30 s deadlines, so that they report a timeout themselves first. */
const RUN_TIMEOUT_MS = 50_000;

const runs = new Map<string, SpawnSyncReturns<string>>();

/** Runs an example as a user would (`node --import tsx`), once per file however many tests read it. */
function run(file: string): SpawnSyncReturns<string> {
  let result = runs.get(file);
  if (!result) {
    result = spawnSync(process.execPath, ["--import", "tsx", `${EXAMPLES}${file}`], { encoding: "utf8", timeout: RUN_TIMEOUT_MS });
    runs.set(file, result);
  }
  return result;
}

describe("every example runs as a user would run it", () => {
  it.each(readdirSync(EXAMPLES).filter((f) => f.endsWith(".ts") && !f.startsWith(".")))("%s exits cleanly and prints its result", (file) => {
    const result = run(file);
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    expect(result.stdout.trim().length).toBeGreaterThan(0);
  });

  it("canvas-discourse-mirror.ts shows the offline reply once on each side, and a second sync sends nothing", () => {
    const { stdout } = run("canvas-discourse-mirror.ts");
    expect(stdout).toContain('"Introduce yourself" is Canvas topic 41001 and Discourse topic 301');
    expect(stdout).toContain("sync: 1 created in Canvas, 1 created in Discourse");
    expect(stdout).toContain("Canvas shows the reply 1 time(s); Discourse shows it 1 time(s)");
    expect(stdout).toContain("second sync: 0 created, 0 documents updated");
  });

  it("embed.ts queries the assignment it changed", () => {
    expect(JSON.parse(run("embed.ts").stdout)).toEqual([{ title: "Lab 1: Cells", due_at: "2026-09-04T23:59:00.000Z", points_possible: 10 }]);
  });

  it("classroom-lan.ts links every student with the teacher and shows every reply in every node's thread", () => {
    const { stdout, status } = run("classroom-lan.ts");
    expect(status).toBe(0);
    const teacher = "Ms. Rossi (teacher)";
    const students = ["Ada Okafor", "Ben Novak", "Chloe Haddad"];
    const links = [...stdout.matchAll(/^ {2}(.+) <-> (.+)$/gm)].map(([, a, b]) => new Set([a, b]));
    for (const student of students) expect(links.some((link) => link.has(student) && link.has(teacher))).toBe(true);

    const threads = stdout.split(/^(.+)'s thread:$/m).slice(1);
    const byNode = new Map<string, string[]>();
    for (let i = 0; i < threads.length; i += 2) byNode.set(threads[i]!, threads[i + 1]!.trim().split("\n").map((line) => line.trim()));
    expect([...byNode.keys()]).toEqual([teacher, ...students]);
    // The same thread everywhere; its order (by creation time) depends on who replied first.
    for (const thread of byNode.values()) expect(thread).toEqual(byNode.get(teacher));
    for (const thread of byNode.values()) {
      expect([...thread].sort()).toEqual([
        "Ada Okafor: The membrane let the dye in only where we scratched it.",
        "Ben Novak: Our onion cells shrank in salt water: osmosis, I think.",
        "Chloe Haddad: Could the chloroplasts move toward the light?",
      ]);
    }
  });

  it("relay.ts carries the assignment and the submission through the relay alone", () => {
    const { stdout, status } = run("relay.ts");
    expect(status).toBe(0);
    expect(stdout).toContain("The relay carries 2 links: student, teacher");
    expect(stdout).toContain("The teacher's laptop is linked to the relay only");
    expect(stdout).toContain("The student's laptop is linked to the relay only");
    expect(stdout).toContain(`The student sees the teacher's assignment: "Lab 1: Cells", due 2026-09-04T23:59:00.000Z, 10 points`);
    expect(stdout).toContain(`The teacher sees Ada Okafor's submission (submitted): "Cell wall, membrane, nucleus`);
  });
});
