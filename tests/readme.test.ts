import { spawnSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { makeTempDir } from "../src/testing/temp-dir.js";

describe("the README's embedding quickstart", () => {
  it("runs as written, against a fresh data directory", () => {
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    const code = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(code).toContain("Engine.open");
    const temp = makeTempDir("ordo-readme-");
    // Inside the package, so that `import "ordo-sync"` resolves as it does for a user.
    const script = new URL(`../examples/.readme-${process.pid}.ts`, import.meta.url).pathname;
    writeFileSync(script, `${code!.replaceAll("./.ordo", temp.dir)}\nconsole.log(JSON.stringify(due.map((a) => a.title)));\n`);
    try {
      const run = spawnSync(process.execPath, ["--import", "tsx", script], { encoding: "utf8" });
      expect(run.stderr).toBe("");
      expect(JSON.parse(run.stdout)).toEqual(["Lab 1"]);
    } finally {
      rmSync(script, { force: true });
      temp.remove();
    }
  });
});
