import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import type { DocUrl } from "../../src/crdt/ids.js";
import { Engine } from "../../src/engine.js";
import { dumpTables } from "../../src/projection/table-dump.js";
import { makeTempDir } from "../../src/testing/temp-dir.js";
import { createRandom } from "../../src/util/random.js";
import { check, runCases, type Suite } from "../suite.js";

const WRITER = new URL("../children/crash-writer.ts", import.meta.url).pathname;

/**
 * Crashes: a node writing, compacting and projecting is killed with SIGKILL at a random
 * moment. Then the store opens, every change it acknowledged is there, both SQLite files pass
 * `PRAGMA integrity_check`, and the projection on disk, once caught up, equals a rebuild.
 */
export const crashes: Suite = {
  name: "crashes",
  summary: "SIGKILL a node writing, compacting and projecting: nothing acknowledged is lost, both files are intact, the projection equals a rebuild",
  unit: "iterations",
  sizes: { test: 6, ci: 20, large: 100 },
  run: (options) =>
    runCases(options, "iteration", async (n) => {
      const temp = makeTempDir("ordo-crash-");
      try {
        const dir = join(temp.dir, "node");
        mkdirSync(dir);
        const acked = await runAndKill(dir, n);
        check(acked.size > 0, "the writer acknowledged nothing before it was killed");
        for (const file of ["store.sqlite", "projection.sqlite"]) {
          const db = new Database(join(dir, file));
          try {
            const verdict = db.pragma("integrity_check", { simple: true });
            check(verdict === "ok", `${file}: integrity_check says ${String(verdict)}`);
          } finally {
            db.close();
          }
        }
        const engine = await Engine.open({ dataDir: dir });
        try {
          for (const [key, value] of acked) {
            const [url, field] = key.split(" ") as [DocUrl, string];
            const entity = (await engine.docs.find(url)) as Record<string, unknown> | undefined;
            check(entity !== undefined, `${url} is missing`);
            const stored = String(entity[field]);
            // A change may have landed after the last acknowledgement: the acknowledged body is a prefix.
            check(field === "body" ? stored.startsWith(value) : stored === value, `${key}: acknowledged ${JSON.stringify(value)}, found ${JSON.stringify(stored)}`);
          }
          await engine.whenProjected();
          const caughtUp = await dumpTables(engine.db);
          await engine.rebuild();
          check(caughtUp === (await dumpTables(engine.db)), "the projection caught up after the crash differs from a rebuild");
        } finally {
          await engine.close();
        }
      } finally {
        temp.remove();
      }
    }),
};

/** Runs the writer until it has acknowledged some changes, then kills it, all as case `n` decides. */
async function runAndKill(dir: string, n: number): Promise<Map<string, string>> {
  const random = createRandom(n);
  const killAfter = 3 + Math.floor(random() * 60);
  const delayMs = Math.floor(random() * 8);
  const child = spawn(process.execPath, ["--import", "tsx", WRITER, dir], { stdio: ["ignore", "pipe", "pipe"] });
  const acked = new Map<string, string>();
  let buffer = "";
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      for (let newline = buffer.indexOf("\n"); newline >= 0; newline = buffer.indexOf("\n")) {
        const [, url, field, ...value] = buffer.slice(0, newline).split(" ");
        buffer = buffer.slice(newline + 1);
        acked.set(`${url} ${field}`, value.join(" "));
        // Usually mid-way through the next write, or the compaction or projection after it.
        if (acked.size === killAfter) setTimeout(() => child.kill("SIGKILL"), delayMs);
      }
    });
    child.on("exit", (code, signal) => (signal === "SIGKILL" ? resolve() : reject(new Error(`the writer exited by itself (${code}): ${stderr.trim().split("\n").pop() ?? ""}`))));
  });
  return acked;
}
