import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { runCases } from "../../reliability/suite.js";

const run = promisify(execFile);

/** `npm run reliability` with `args`: its exit code and what it printed. */
async function reliability(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ["--import", "tsx", "reliability/run.ts", ...args], { timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, stdout: failed.stdout ?? "", stderr: failed.stderr ?? "" };
  }
}

describe("npm run reliability", () => {
  it.each([
    [["--bogus"], /Unknown option '--bogus'/],
    [["--suite", "nope"], /no suite named "nope"/],
    [["--suite", "power-loss", "--iterations", "0"], /--iterations takes a whole number of at least 1, not "0"/],
    [["--suite", "power-loss", "--duration", "soon"], /--duration takes a whole number of at least 1, not "soon"/],
    [["--suite", "power-loss", "--seeds", "3"], /--seeds sizes none of the suites chosen \(power-loss: --iterations\)/],
  ])("refuses %j with one clear line, the usage and exit code 2", async (args, message) => {
    const { code, stdout, stderr } = await reliability(...args);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
    expect(stderr).toContain("usage: npm run reliability");
    expect(stdout).toBe("");
  });

  it("runs one suite at the size asked and ends with its closing line", async () => {
    const { code, stdout } = await reliability("--suite", "power-loss", "--iterations", "3", "--from", "40");
    expect(code).toBe(0);
    expect(stdout).toMatch(/^power-loss: 3 passed, 0 failed \(/m);
    expect(stdout).toContain("iteration 40:");
    expect(stdout).toContain("iteration 42:");
    expect(stdout).not.toContain("iteration 43:");
  }, 120_000);

  it("runs a suite for --duration seconds when no size is given", async () => {
    const started = performance.now();
    const { code, stdout } = await reliability("--suite", "power-loss", "--duration", "2");
    expect(code).toBe(0);
    const closing = /^power-loss: (\d+) passed, 0 failed/m.exec(stdout);
    expect(closing).not.toBeNull();
    // About 2 s of cases: more than one, and far fewer than the CI size of 100 that a run without a size takes.
    expect(Number(closing![1])).toBeGreaterThan(1);
    expect(Number(closing![1])).toBeLessThan(100);
    expect(performance.now() - started).toBeLessThan(60_000);
  }, 120_000);
});

describe("runCases", () => {
  it("starts no case after the run's time is up, but always the first", async () => {
    const ran: number[] = [];
    const result = await runCases({ count: 5, first: 7, until: performance.now() - 1, log: () => undefined }, "seed", async (n) => {
      ran.push(n);
    });
    expect(ran).toEqual([7]);
    expect(result).toEqual({ passed: 1, failed: 0, failures: [] });
  });

  it("names each failed case so it can be replayed", async () => {
    const logged: string[] = [];
    const result = await runCases({ count: 3, first: 1, log: (line) => logged.push(line) }, "seed", async (n) => {
      if (n === 2) throw new Error("heads differ");
    });
    expect(result).toEqual({ passed: 2, failed: 1, failures: ["seed 2: heads differ"] });
    expect(logged).toEqual(["FAILED seed 2: heads differ"]);
  });
});
