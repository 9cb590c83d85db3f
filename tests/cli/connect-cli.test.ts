import { spawn } from "node:child_process";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeCanvas } from "../../src/testing/fake-canvas/index.js";
import { FakeDiscourse, signDiscourseWebhook } from "../../src/testing/fake-discourse/index.js";
import { makeTempDir } from "../../src/testing/temp-dir.js";

const ORDO = join(import.meta.dirname, "../../bin/ordo.js");

/** Runs the CLI as a child process (asynchronously: the fake Canvas answers from this process). */
function ordo(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [ORDO, ...args], { env: { ...process.env, ORDO_DATA: undefined } });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.on("exit", (code) => resolve({ code, stdout, stderr })));
}

describe("ordo connect canvas and ordo sync canvas", () => {
  let canvas: FakeCanvas;
  const temp = makeTempDir("ordo-connect-");
  const data = join(temp.dir, "node");
  beforeAll(async () => {
    canvas = await FakeCanvas.start({ clock: () => Date.parse("2025-01-22T12:00:00Z") });
    expect((await ordo(["init", "--data", data])).code).toBe(0);
  });
  afterAll(async () => {
    await canvas.close();
    temp.remove();
  });

  it("refuses a bad token with one clear line and saves nothing", async () => {
    const bad = join(temp.dir, "bad.token");
    writeFileSync(bad, "not-a-valid-token\n");
    const result = await ordo(["connect", "canvas", "--data", data, "--url", canvas.url, "--token-file", bad, "--course", "4201"]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/^ordo: Canvas refused: .*credentials were refused/);
    expect(existsSync(join(data, "connectors.json"))).toBe(false);
  });

  it("connects with the token kept in a 0600 file and never printed, then pulls the course into SQL", async () => {
    const tokenFile = join(temp.dir, "canvas.token");
    writeFileSync(tokenFile, `${canvas.token}\n`);
    const connected = await ordo(["connect", "canvas", "--data", data, "--url", canvas.url, "--token-file", tokenFile, "--course", "4201"]);
    expect(connected.code).toBe(0);
    expect(connected.stdout).toContain("connected Canvas course 4201");
    expect(statSync(join(data, "connectors.json")).mode & 0o777).toBe(0o600);

    const synced = await ordo(["sync", "canvas", "--data", data, "--json"]);
    expect(synced.code).toBe(0);
    expect(JSON.parse(synced.stdout).pulled).toMatchObject({ failed: [], deleted: 0 });
    expect(JSON.parse(synced.stdout).pulled.created).toBeGreaterThan(20);
    expect(JSON.parse((await ordo(["conflicts", "--data", data, "--json"])).stdout)).toEqual([]);
    const status = JSON.parse((await ordo(["status", "--data", data, "--json"])).stdout) as { connectors: Array<{ system: string; documents: { in_sync?: number } }> };
    expect(status.connectors[0]).toMatchObject({ system: "canvas", documents: { in_sync: expect.any(Number) } });
    for (const output of [connected.stdout, connected.stderr, synced.stdout, synced.stderr]) expect(output).not.toContain(canvas.token);

    const rows = JSON.parse((await ordo(["query", "--data", data, "--json", "select count(*) as n from assignments"])).stdout) as Array<{ n: number }>;
    expect(rows[0]!.n).toBeGreaterThan(0);
  });

  it("keeps syncing with --watch, every --interval, until stopped", async () => {
    const child = spawn(process.execPath, [ORDO, "sync", "canvas", "--data", data, "--watch", "--interval", "1s"], { env: { ...process.env, ORDO_DATA: undefined } });
    let stdout = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    const exited = new Promise((resolve) => child.on("exit", resolve));
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`two rounds not seen: ${stdout}`)), 30_000);
        child.stdout.on("data", () => {
          if ((stdout.match(/^pulled: /gm) ?? []).length >= 2) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
    } finally {
      child.kill("SIGTERM");
      await exited;
    }
    // The second round found the course as the first left it.
    expect(stdout.match(/^pulled: .*$/gm)![1]).toMatch(/pulled: 0 created, 0 updated, \d+ unchanged, 0 deleted/);
  });

  it("connects a Discourse category as the course's forum, pulls it and pairs its posts with the course's entries", async () => {
    const discourse = await FakeDiscourse.start();
    try {
      const keyFile = join(temp.dir, "discourse.key");
      writeFileSync(keyFile, `${discourse.apiKey}\n`);
      const connected = await ordo(["connect", "discourse", "--data", data, "--url", discourse.url, "--api-key-file", keyFile, "--username", discourse.username, "--category", "12"]);
      expect(connected.stderr).toBe("");
      expect(connected.stdout).toMatch(/connected Discourse category 12 .* to automerge:/);
      const linked = "select count(*) as n from posts where canvas_id is not null and discourse_id is not null";
      const before = JSON.parse((await ordo(["query", "--data", data, "--json", linked])).stdout) as Array<{ n: number }>;
      const synced = await ordo(["sync", "discourse", "--data", data, "--json"]);
      expect(synced.code).toBe(0);
      expect(JSON.parse(synced.stdout).pulled).toMatchObject({ failed: [] });
      expect(JSON.parse(synced.stdout).pulled.created).toBeGreaterThan(0);
      // The forum's posts are the course's entries: each pairs with its entry, none is copied.
      const after = JSON.parse((await ordo(["query", "--data", data, "--json", linked])).stdout) as Array<{ n: number }>;
      const all = JSON.parse((await ordo(["query", "--data", data, "--json", "select count(*) as n from posts"])).stdout) as Array<{ n: number }>;
      expect([before[0]!.n, after[0]!.n, all[0]!.n]).toEqual([0, 3, 3]);
      for (const output of [connected.stdout, synced.stdout, synced.stderr]) expect(output).not.toContain(discourse.apiKey);
    } finally {
      await discourse.close();
    }
  });

  it("keeps a Discourse webhook secret, never printed, and `ordo serve` takes webhooks signed with it", async () => {
    const discourse = await FakeDiscourse.start();
    const secret = "a-webhook-secret-from-the-discourse-admin";
    try {
      const keyFile = join(temp.dir, "discourse.key");
      const secretFile = join(temp.dir, "webhook.secret");
      writeFileSync(keyFile, `${discourse.apiKey}\n`);
      writeFileSync(secretFile, `${secret}\n`);
      const connected = await ordo(["connect", "discourse", "--data", data, "--url", discourse.url, "--api-key-file", keyFile, "--username", discourse.username, "--category", "12", "--webhook-secret-file", secretFile, "--json"]);
      expect(connected.code).toBe(0);
      expect(JSON.parse(connected.stdout).discourse).toMatchObject({ apiKey: "(set)", webhookSecret: "(set)" });
      expect(JSON.parse(readFileSync(join(data, "connectors.json"), "utf8")).discourse.webhookSecret).toBe(secret);

      const child = spawn(process.execPath, [ORDO, "serve", "--data", data, "--port", "0", "--no-discovery", "--json", "--connector-interval", "0"], { stdio: ["ignore", "pipe", "pipe"] });
      let stderr = "";
      child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
      const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
      try {
        const line = await new Promise<string>((resolve, reject) => {
          let out = "";
          child.stdout.on("data", (chunk: Buffer) => {
            out += chunk.toString();
            if (out.includes("\n")) resolve(out.split("\n")[0]!);
          });
          child.on("exit", (code) => reject(new Error(`serve exited ${code}: ${stderr}`)));
        });
        const hook = `${(JSON.parse(line) as { listening: { http: string } }).listening.http}/webhooks/discourse`;
        const body = JSON.stringify({ ping: "OK" });
        const headers = { "x-discourse-event-id": "1", "x-discourse-event-type": "ping", "x-discourse-event": "ping" };
        expect((await fetch(hook, { method: "POST", headers: { ...headers, "x-discourse-event-signature": signDiscourseWebhook(secret, body) }, body })).status).toBe(200);
        expect((await fetch(hook, { method: "POST", headers: { ...headers, "x-discourse-event-signature": signDiscourseWebhook("guessed", body) }, body })).status).toBe(401);
        // The running node answers `ordo status`, connectors included.
        const status = JSON.parse((await ordo(["status", "--data", data, "--json"])).stdout) as { node: object | null; connectors: Array<{ system: string }> };
        expect(status.node).not.toBeNull();
        expect(status.connectors.map((c) => c.system)).toEqual(["canvas", "discourse"]);
        // A second process syncing the same store would race the node's own syncs: refused.
        const beside = await ordo(["sync", "canvas", "--data", data]);
        expect(beside.code).not.toBe(0);
        expect(beside.stderr).toMatch(/^ordo: a node is running on .* and syncs its connectors itself/);
      } finally {
        child.kill("SIGTERM");
        expect(await exit).toBe(0);
      }
      for (const output of [connected.stdout, connected.stderr, stderr]) {
        expect(output).not.toContain(secret);
        expect(output).not.toContain(discourse.apiKey);
      }
    } finally {
      await discourse.close();
    }
  });

  it("refuses a wrong flag with one clear line", async () => {
    const result = await ordo(["connect", "canvas", "--data", data, "--url", "ftp://x", "--token-file", "x", "--course", "4201"]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/expected an https:\/\/ URL/);
    const clear = await ordo(["connect", "canvas", "--data", data, "--url", "http://canvas.school.example", "--token-file", "x", "--course", "4201"]);
    expect(clear.code).not.toBe(0);
    expect(clear.stderr).toContain("http:// would send the credentials in clear");
  });
});
