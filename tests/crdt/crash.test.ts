import { spawn } from "node:child_process";
import { join } from "node:path";
import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { DocStore } from "../../src/crdt/doc-store.js";
import type { DocUrl } from "../../src/crdt/ids.js";
import { openSqliteStorage } from "../../src/crdt/sqlite-storage-adapter.js";
import { makeTempDir } from "../../src/testing/temp-dir.js";

const WRITER = new URL("../fixtures/crash-writer.ts", import.meta.url).pathname;
const RUNS = 20;

/** Runs the writer until it has acknowledged a few changes, then kills it at a random moment. */
async function runAndKill(dir: string, seed: number): Promise<Map<string, string>> {
  const child = spawn(process.execPath, ["--import", "tsx", WRITER, dir], { stdio: ["ignore", "pipe", "pipe"] });
  const acked = new Map<string, string>();
  let buffer = "";
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const killAfter = 5 + ((seed * 7919) % 60);
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        const [, url, field, ...value] = line.split(" ");
        acked.set(`${url} ${field}`, value.join(" "));
        // Kill between acknowledgements too: the next write is usually half done.
        if (acked.size >= killAfter) setTimeout(() => child.kill("SIGKILL"), seed % 4);
      }
    });
    child.on("exit", (code, signal) => (signal === "SIGKILL" ? resolve() : reject(new Error(`writer exited ${code}: ${stderr}`))));
  });
  return acked;
}

describe("a writer killed with SIGKILL", () => {
  it(`loses no acknowledged change in ${RUNS} random kills, and the store always opens intact`, async () => {
    const temp = makeTempDir("ordo-crash-");
    try {
      for (let run = 1; run <= RUNS; run++) {
        const dir = join(temp.dir, `run-${run}`);
        mkdirSync(dir);
        const acked = await runAndKill(dir, run);
        expect(acked.size).toBeGreaterThan(0);

        const check = new Database(join(dir, "store.sqlite"));
        expect(check.pragma("integrity_check", { simple: true })).toBe("ok");
        check.close();

        const storage = openSqliteStorage({ path: join(dir, "store.sqlite") });
        const store = new DocStore({ storage });
        for (const [key, value] of acked) {
          const [url, field] = key.split(" ") as [DocUrl, string];
          const entity = (await store.find(url)) as Record<string, unknown> | undefined;
          expect(entity, `run ${run}: ${url} missing`).toBeDefined();
          const stored = String(entity?.[field]);
          // A later change may have landed after the last acknowledgement: the acknowledged text is a prefix.
          expect(field === "body" ? stored.startsWith(value) : stored === value, `run ${run}: ${key}`).toBe(true);
        }
        await store.close();
        await storage.close();
      }
    } finally {
      temp.remove();
    }
  }, 240_000);
});
