import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { documentIdOf, type DocUrl } from "../../src/crdt/ids.js";
import { Engine } from "../../src/engine.js";
import { dumpTables } from "../../src/projection/table-dump.js";
import { makeTempDir } from "../../src/testing/temp-dir.js";
import { createRandom } from "../../src/util/random.js";
import type { ExpectedPage, WriterReport } from "../children/storage-fault-writer.js";
import { check, runCases, type Suite } from "../suite.js";

const WRITER = new URL("../children/storage-fault-writer.ts", import.meta.url).pathname;
/** The failed commits are retried a second later; this leaves room for a slow machine. */
const RECOVERY_TIMEOUT_MS = 10_000;
/** How long the node gets to say or do anything asked of it before the case fails. */
const STEP_TIMEOUT_MS = 60_000;

/**
 * Storage faults: a node (a child process, with HTTP) writes pages of a course while 5% of its
 * storage writes fail with ENOSPC, EIO or SQLITE_BUSY, then a while with every write failing.
 * The process stays up, `/healthz` answers throughout and says degraded while writes fail,
 * and every change reads back from memory. Once the faults stop, the retries persist every
 * change (read from the file while the node still runs), health is ok again, the node closes
 * cleanly, both files pass `PRAGMA integrity_check`, everything reads back after a reopen,
 * and the projection equals a rebuild.
 */
export const storageFaults: Suite = {
  name: "storage-faults",
  summary: "ENOSPC, EIO and SQLITE_BUSY in 5% of a node's writes: it stays up, reports degraded health, keeps every change readable, and persists them all once the faults stop",
  unit: "iterations",
  sizes: { test: 3, ci: 20, large: 100 },
  run: (options) =>
    runCases(options, "iteration", async (n) => {
      const temp = makeTempDir("ordo-storage-faults-");
      try {
        const dir = join(temp.dir, "node");
        mkdirSync(dir);
        const writes = 150 + Math.floor(createRandom(n)() * 150);
        const report = await runWriter(dir, n, writes);
        options.log(`iteration ${n}: ${report.writes} writes, ${report.rejected} rejected, faults ${JSON.stringify(report.injected)}`);
        for (const file of ["store.sqlite", "projection.sqlite"]) {
          const verdict = withDatabase(join(dir, file), (db) => db.pragma("integrity_check", { simple: true }));
          check(verdict === "ok", `${file}: integrity_check says ${String(verdict)}`);
        }
        await checkReopened(dir, report);
      } finally {
        temp.remove();
      }
    }),
};

/** Runs the node through faults and recovery, checking it on the way; returns what it wrote. */
async function runWriter(dir: string, n: number, writes: number): Promise<WriterReport> {
  const writer = new WriterProcess(dir, n, writes);
  try {
    const base = await writer.next("listening");
    const polling = pollHealth(base);
    const report = JSON.parse(await writer.next("report")) as WriterReport;
    const answers = await polling.stop();

    check(writer.running, "the node exited while its writes were failing");
    const failedAnswers = answers.filter((answer) => answer !== "ok" && answer !== "degraded");
    check(failedAnswers.length === 0, `/healthz failed ${failedAnswers.length} of ${answers.length} times while writes were failing: ${failedAnswers[0]}`);
    check(report.rejected > 0, `none of ${report.writes} writes failed: the faults did not reach the store`);
    check(report.unreadable.length === 0, `changes not readable while uncommitted: ${report.unreadable.slice(0, 3).join("; ")}`);
    check(report.writesFailing, "the node does not know its writes are failing");
    const during = await health(base);
    check(during === "degraded", `/healthz says ${during} while every write fails`);

    writer.send("faults-off");
    await writer.next("faults-off");
    const recovered = await waitForHealth(base, "ok", RECOVERY_TIMEOUT_MS);
    check(recovered === "ok", `/healthz still says ${recovered} ${RECOVERY_TIMEOUT_MS / 1000} s after the faults stopped`);
    // Before any close (which would flush): the retries alone must have put everything on disk.
    const missing = unpersisted(dir, report);
    check(missing.length === 0, `with health ok, ${missing.length} changes are still not on disk: ${missing.slice(0, 3).join("; ")}`);

    writer.send("close");
    await writer.next("closed");
    const code = await writer.exited;
    check(code === 0, `the node exited with ${code} on close`);
    return report;
  } finally {
    writer.kill();
  }
}

/** Documents on disk (read with a second connection while the node runs) that differ from what was written. */
function unpersisted(dir: string, report: WriterReport): string[] {
  return withDatabase(join(dir, "store.sqlite"), (db) => {
    const select = db.prepare<[string], { view: string | null }>("SELECT view FROM documents WHERE id = ?");
    const entityOf = (url: DocUrl) => {
      const view = select.get(documentIdOf(url))?.view;
      // The record's view (see `DocView`): the entity as reads return it.
      return view ? (JSON.parse(view) as { entity: Record<string, unknown> }).entity : undefined;
    };
    const problems: string[] = [];
    const course = entityOf(report.course.url);
    if (course?.name !== report.course.name) problems.push(`${report.course.url}: stored name ${JSON.stringify(course?.name)}, written ${JSON.stringify(report.course.name)}`);
    for (const [url, page] of Object.entries(report.pages) as Array<[DocUrl, ExpectedPage]>) {
      const stored = pageOf(entityOf(url));
      if (JSON.stringify(stored) !== JSON.stringify(page)) problems.push(`${url}: stored ${JSON.stringify(stored)}, written ${JSON.stringify(page)}`);
    }
    return problems;
  });
}

/** Opens the directory as the next start would, with plain storage, and compares everything. */
async function checkReopened(dir: string, report: WriterReport): Promise<void> {
  const engine = await Engine.open({ dataDir: dir });
  try {
    const course = await engine.docs.find<"course">(report.course.url);
    check(course?.name === report.course.name, `after reopening, ${report.course.url} is named ${JSON.stringify(course?.name)}, written ${JSON.stringify(report.course.name)}`);
    for (const [url, page] of Object.entries(report.pages) as Array<[DocUrl, ExpectedPage]>) {
      const found = pageOf((await engine.docs.find<"page">(url, { includeDeleted: true })) as Record<string, unknown> | undefined);
      check(JSON.stringify(found) === JSON.stringify(page), `after reopening, ${url} reads ${JSON.stringify(found)}, written ${JSON.stringify(page)}`);
    }
    const live = Object.entries(report.pages).filter(([, page]) => !page.deleted).length;
    const listed = (await engine.docs.urls(report.course.url, "page")).length;
    check(listed === live, `after reopening, the course lists ${listed} pages, ${live} written`);
    await engine.whenProjected();
    const caughtUp = await dumpTables(engine.db);
    await engine.rebuild();
    check(caughtUp === (await dumpTables(engine.db)), "the projection after the faults differs from a rebuild");
  } finally {
    await engine.close();
  }
}

function pageOf(entity: Record<string, unknown> | undefined): ExpectedPage | undefined {
  return entity && { title: String(entity.title), body: String(entity.body), deleted: entity.tombstone !== null };
}

function withDatabase<T>(path: string, read: (db: Database.Database) => T): T {
  const db = new Database(path, { fileMustExist: true });
  try {
    return read(db);
  } finally {
    db.close();
  }
}

/** `/healthz`'s status, or what went wrong asking. */
async function health(base: string): Promise<string> {
  try {
    const response = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(5_000) });
    const body = (await response.json()) as { status?: string; error?: string };
    return response.status === 200 ? String(body.status) : `HTTP ${response.status}: ${body.error ?? ""}`;
  } catch (error) {
    return `no answer: ${error instanceof Error ? error.message : String(error)}`;
  }
}

async function waitForHealth(base: string, wanted: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await health(base);
    if (status === wanted || Date.now() > deadline) return status;
    await sleep(50);
  }
}

/** Asks `/healthz` over and over until stopped; resolves with every answer. */
function pollHealth(base: string): { stop: () => Promise<string[]> } {
  const answers: string[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      answers.push(await health(base));
      await sleep(20);
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      return answers;
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The writer child: its output as lines awaited by their first word, its input as commands. */
class WriterProcess {
  readonly #child: ChildProcess;
  readonly #lines: string[] = [];
  #wake: (() => void) | null = null;
  #stderr = "";
  #exitCode: number | null | undefined;
  readonly exited: Promise<number | null>;

  constructor(dir: string, seed: number, writes: number) {
    this.#child = spawn(process.execPath, ["--import", "tsx", WRITER, dir, String(seed), String(writes)], { stdio: ["pipe", "pipe", "pipe"] });
    let buffer = "";
    this.#child.stdout!.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      for (let newline = buffer.indexOf("\n"); newline >= 0; newline = buffer.indexOf("\n")) {
        this.#lines.push(buffer.slice(0, newline));
        buffer = buffer.slice(newline + 1);
      }
      this.#wake?.();
    });
    this.#child.stderr!.on("data", (chunk: Buffer) => (this.#stderr += chunk.toString()));
    this.exited = new Promise((resolve) =>
      this.#child.on("exit", (code, signal) => {
        this.#exitCode = signal ? null : code;
        this.#wake?.();
        resolve(this.#exitCode);
      }),
    );
  }

  get running(): boolean {
    return this.#exitCode === undefined && this.#child.pid !== undefined && isAlive(this.#child.pid);
  }

  /** The rest of the next line starting with `word`; fails if the node exits or is silent too long first. */
  async next(word: string): Promise<string> {
    const deadline = Date.now() + STEP_TIMEOUT_MS;
    for (;;) {
      const at = this.#lines.findIndex((line) => line === word || line.startsWith(`${word} `));
      if (at >= 0) return this.#lines.splice(0, at + 1).pop()!.slice(word.length + 1);
      if (this.#exitCode !== undefined) throw new Error(`the node exited (${this.#exitCode}) before saying "${word}": ${this.#stderr.trim().split("\n").slice(-3).join(" | ")}`);
      if (Date.now() > deadline) throw new Error(`the node did not say "${word}" within ${STEP_TIMEOUT_MS / 1000} s`);
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        setTimeout(resolve, 1_000);
      });
      this.#wake = null;
    }
  }

  send(command: string): void {
    this.#child.stdin!.write(`${command}\n`);
  }

  kill(): void {
    if (this.#exitCode === undefined) this.#child.kill("SIGKILL");
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
