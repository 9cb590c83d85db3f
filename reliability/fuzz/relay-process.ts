import { execFile, spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import type { DocUrl } from "../../src/crdt/ids.js";
import { Authority } from "../../src/net/authority.js";
import type { Role } from "../../src/net/principal.js";
import { makeTempDir } from "../../src/testing/temp-dir.js";

const ORDO = new URL("../../bin/ordo.js", import.meta.url).pathname;
const run = promisify(execFile);

/**
 * A relay as an operator runs it: `ordo init`, `ordo demo` to give it a course, then
 * `ordo relay` in its own process, the course's authority. The suite attacks this process and
 * watches it from outside: its pid, its memory, its log.
 */
export class RelayProcess {
  #exit: string | undefined;
  /** How far `newErrorLines` has read the log. */
  #logRead = 0;

  private constructor(
    readonly child: ChildProcess,
    readonly pid: number,
    readonly port: number,
    readonly peerId: string,
    readonly dataDir: string,
    readonly course: DocUrl,
    readonly logFile: string,
    private readonly removeDir: () => void,
  ) {
    child.once("exit", (code, signal) => (this.#exit = `exited with ${signal ?? String(code)}`));
  }

  static async start(): Promise<RelayProcess> {
    const temp = makeTempDir("ordo-fuzz-relay-");
    const dataDir = join(temp.dir, "relay");
    await run(process.execPath, [ORDO, "init", "--data", dataDir]);
    const demo = await run(process.execPath, [ORDO, "demo", "--data", dataDir, "--students", "3", "--teachers", "1", "--assignments", "2", "--topics", "1", "--json"]);
    const course = (JSON.parse(demo.stdout) as { course: DocUrl }).course;
    const logFile = join(temp.dir, "relay.log");
    const log = openSync(logFile, "a");
    // Warnings and errors only: every refused frame is a warning, and that is enough to read.
    const child = spawn(process.execPath, [ORDO, "relay", "--data", dataDir, "--port", "0", "--json"], {
      stdio: ["ignore", "pipe", log],
      env: { ...process.env, ORDO_LOG_LEVEL: "warn" },
    });
    closeSync(log);
    const listening = await new Promise<{ url: string; peerId: string }>((resolve, reject) => {
      let out = "";
      child.stdout!.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        const line = out.split("\n").find((l) => l.startsWith("{"));
        if (line !== undefined && out.includes("\n")) resolve((JSON.parse(line) as { listening: { url: string; peerId: string } }).listening);
      });
      child.once("exit", (code) => reject(new Error(`ordo relay exited with ${String(code)} before listening: ${readFileSync(logFile, "utf8").slice(-500)}`)));
    });
    return new RelayProcess(child, child.pid!, Number(new URL(listening.url).port), listening.peerId, dataDir, course, logFile, temp.remove);
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  /** Why the relay is not running, or undefined while the same process still runs. */
  gone(): string | undefined {
    if (this.#exit !== undefined) return `the relay (pid ${this.pid}) ${this.#exit}`;
    try {
      process.kill(this.pid, 0);
      return undefined;
    } catch {
      return `the relay (pid ${this.pid}) is gone`;
    }
  }

  /** Resident memory of the relay process, read from /proc. */
  rssBytes(): number {
    const status = readFileSync(`/proc/${this.pid}/status`, "utf8");
    const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
    return Number(kb ?? 0) * 1024;
  }

  /** Whether `/healthz` answers 200 now. */
  async healthy(): Promise<boolean> {
    try {
      const response = await fetch(`http://127.0.0.1:${this.port}/healthz`, { signal: AbortSignal.timeout(5_000) });
      return response.status === 200;
    } catch {
      return false;
    }
  }

  /** A token the relay's authority signs for this course: key-bound when `holderKey` is given. */
  token(user: string, role: Role, holderKey?: string): string {
    return Authority.open(this.dataDir).issue({ user, role, courses: role === "node" ? ["*"] : [this.course], ttlMs: 6 * 3_600_000, holderKey });
  }

  /**
   * Log lines at error level or worse (pino level 50+), an exception the relay did not
   * expect, written since the last call.
   */
  newErrorLines(): string[] {
    const log = readFileSync(this.logFile);
    const fresh = log.subarray(this.#logRead, log.lastIndexOf(10) + 1);
    this.#logRead += fresh.length;
    return fresh
      .toString("utf8")
      .split("\n")
      .filter((line) => /"level":(5\d|60)/.test(line));
  }

  /** The last lines of the relay's log, for a failure message. */
  logTail(lines = 5): string {
    return readFileSync(this.logFile, "utf8").trim().split("\n").slice(-lines).join("\n");
  }

  async stop(): Promise<void> {
    if (this.#exit === undefined) {
      const exited = new Promise((resolve) => this.child.once("exit", resolve));
      this.child.kill("SIGTERM");
      const timer = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    }
    this.removeDir();
  }
}
