import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeTempDir } from "../../src/testing/temp-dir.js";

const ORDO = new URL("../../bin/ordo.js", import.meta.url).pathname;

function ordo(args: string[], cwd?: string) {
  const result = spawnSync(process.execPath, [ORDO, ...args], { cwd, encoding: "utf8", env: { ...process.env, ORDO_DATA: undefined } });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Sizes and modification times of the database files (SQLite's own -wal/-shm side files aside): "nothing changed" made checkable. */
function fingerprint(dir: string): string {
  return readdirSync(dir)
    .filter((name) => name.endsWith(".sqlite"))
    .sort()
    .map((name) => `${name}:${statSync(join(dir, name)).size}:${statSync(join(dir, name)).mtimeMs}`)
    .join("|");
}

describe("the ordo command", () => {
  const temp = makeTempDir("ordo-cli-");
  const data = join(temp.dir, "node");
  let course = "";

  beforeAll(() => {
    expect(ordo(["init", "--data", data]).code).toBe(0);
    const demo = ordo(["demo", "--data", data, "--students", "6", "--assignments", "3", "--json"]);
    expect(demo.code).toBe(0);
    course = JSON.parse(demo.stdout).course;
  });
  afterAll(() => temp.remove());

  it("lists documents by kind, as a table or as JSON", () => {
    const json = ordo(["docs", "--data", data, "--kind", "assignment", "--json"]);
    expect(json.code).toBe(0);
    const docs = JSON.parse(json.stdout) as Array<{ kind: string; course: string }>;
    expect(docs).toHaveLength(3);
    expect(docs.every((d) => d.kind === "assignment" && d.course === course)).toBe(true);
    const table = ordo(["docs", "--data", data, "--kind", "page"]);
    expect(table.stdout).toMatch(/^url\s+kind/);
    expect(table.stdout).toContain("(3 rows)");
  });

  it("shows one document", () => {
    const shown = ordo(["show", course, "--data", data, "--json"]);
    expect(shown.code).toBe(0);
    expect(JSON.parse(shown.stdout).entity).toMatchObject({ kind: "course", name: "Biology 101" });
    const missing = ordo(["show", "automerge:2j9PpRkR8XW9kWrq9J3bJQ8Jt5Xq", "--data", data]);
    expect(missing.code).not.toBe(0);
  });

  it("answers read-only SQL and refuses anything that writes, changing nothing", () => {
    const rows = ordo(["query", "select count(*) as n from submissions", "--data", data, "--json"]);
    expect(rows.code).toBe(0);
    expect(JSON.parse(rows.stdout)).toEqual([{ n: 18 }]);

    const before = fingerprint(data);
    for (const statement of ["delete from submissions", "drop table grades", "update users set name = 'x'"]) {
      const refused = ordo(["query", statement, "--data", data]);
      expect(refused.code).toBe(1);
      expect(refused.stderr.trim().split("\n")).toHaveLength(1);
      expect(refused.stderr).toMatch(/only statements that read/);
    }
    const bad = ordo(["query", "selec nothing", "--data", data]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^ordo: .*syntax error\n$/);
    expect(fingerprint(data)).toBe(before);
    expect(JSON.parse(ordo(["query", "select count(*) as n from submissions", "--data", data, "--json"]).stdout)).toEqual([{ n: 18 }]);
  });

  it("searches titles and bodies", () => {
    const hits = JSON.parse(ordo(["search", "lab safety goggles", "--data", data, "--json"]).stdout) as Array<{ kind: string; title: string }>;
    expect(hits[0]).toMatchObject({ kind: "page", title: "Lab safety" });
    expect(ordo(["search", '"unbalanced (', "--data", data]).code).toBe(0);
  });

  it("rebuilds the projection to the same rows", () => {
    const before = ordo(["query", "select doc_url, title from assignments order by doc_url", "--data", data, "--json"]).stdout;
    const rebuilt = ordo(["rebuild", "--data", data, "--json"]);
    expect(rebuilt.code).toBe(0);
    expect(JSON.parse(rebuilt.stdout).projected).toBeGreaterThan(0);
    expect(ordo(["query", "select doc_url, title from assignments order by doc_url", "--data", data, "--json"]).stdout).toBe(before);
  });

  it("moves the projection schema down and up", () => {
    const status = JSON.parse(ordo(["migrate", "status", "--data", data, "--json"]).stdout) as Array<{ name: string; applied: string }>;
    expect(status.map((m) => m.name)).toEqual(["0001_initial", "0002_projection_state", "0003_connectors", "0004_connector_sync", "0005_assignment_submission_types"]);
    expect(ordo(["migrate", "down", "--data", data]).stdout).toMatch(/down: 0005_assignment_submission_types/);
    expect(JSON.parse(ordo(["migrate", "status", "--data", data, "--json"]).stdout)[4].applied).toBe("pending");
    expect(ordo(["migrate", "up", "--data", data]).stdout).toMatch(/up: 0005_assignment_submission_types/);
    expect(ordo(["migrate", "sideways", "--data", data]).code).not.toBe(0);
  });

  it("fails with one clear line on a wrong flag or a missing data directory, creating nothing", () => {
    const unknown = ordo(["docs", "--data", data, "--colour"]);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/unknown option '--colour'/);

    const nowhere = join(temp.dir, "missing");
    for (const args of [["docs"], ["status"], ["query", "select 1"], ["demo"]]) {
      const result = ordo([...args, "--data", nowhere]);
      expect(result.code, args.join(" ")).toBe(1);
      expect(result.stderr).toMatch(/^ordo: no data directory at .*missing/);
    }
    expect(existsSync(nowhere)).toBe(false);
    // An existing directory that holds no node is not written into either.
    const foreign = join(temp.dir, "foreign");
    mkdirSync(foreign);
    expect(ordo(["status", "--data", foreign]).stderr).toMatch(/^ordo: no node in .*foreign/);
    expect(readdirSync(foreign)).toEqual([]);
    expect(ordo(["demo", "--data", data, "--students", "many"]).stderr).toMatch(/expected a whole number/);
  });

  it("prints help for the program and its commands", () => {
    const help = ordo(["--help"]);
    expect(help.code).toBe(0);
    for (const name of ["init", "demo", "docs", "show", "query", "search", "rebuild", "migrate", "status", "serve", "relay", "token", "trust"]) expect(help.stdout).toContain(name);
    const queryHelp = ordo(["query", "--help"]);
    expect(queryHelp.stdout).toContain("--data <dir>");
    expect(queryHelp.stdout).toContain("--json");
  });

  it("serves /healthz, /status and /metrics, answers `ordo status` while running, and stops cleanly on SIGTERM", async () => {
    const child = spawn(process.execPath, [ORDO, "serve", "--data", data, "--port", "0", "--no-discovery", "--json"], { stdio: ["ignore", "pipe", "pipe"] });
    const line = await new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes("\n")) resolve(out.split("\n")[0]!);
      });
      child.on("exit", (code) => reject(new Error(`serve exited ${code}`)));
    });
    const { http, url, peerId } = JSON.parse(line).listening as { http: string; url: string; peerId: string };
    expect(url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
    expect(await (await fetch(`${http}/healthz`)).json()).toEqual({ status: "ok", peers: 0 });
    const status = (await (await fetch(`${http}/status`)).json()) as { engine: { byKind: Record<string, number> }; peerId: string };
    expect(status.engine.byKind.assignment).toBe(3);
    expect(status.peerId).toBe(peerId);
    const metrics = await fetch(`${http}/metrics`);
    expect(metrics.headers.get("content-type")).toContain("text/plain");
    const text = await metrics.text();
    for (const name of ["ordo_peers_connected 0", "ordo_documents ", "ordo_bytes_in_total", "ordo_bytes_out_total", "ordo_messages_refused_total", "ordo_sync_lag_seconds"]) expect(text).toContain(name);
    expect((await fetch(`${http}/nope`)).status).toBe(404);
    const running = ordo(["status", "--data", data, "--json"]);
    expect(JSON.parse(running.stdout).node.peerId).toBe(peerId);
    const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    expect(await exit).toBe(0);
  });
});
