import { spawn, spawnSync } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Authority, AUTHORITY_KEY_FILE } from "../../src/net/authority.js";
import { decodeToken } from "../../src/net/tokens.js";
import { listRevocations, Verifier } from "../../src/net/trust.js";
import { makeTempDir } from "../../src/testing/temp-dir.js";

const ORDO = new URL("../../bin/ordo.js", import.meta.url).pathname;

function ordo(args: string[]) {
  const result = spawnSync(process.execPath, [ORDO, ...args], { encoding: "utf8", env: { ...process.env, ORDO_DATA: undefined } });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function ordoAsync(args: string[]): Promise<number | string | null> {
  const child = spawn(process.execPath, [ORDO, ...args], { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, ORDO_DATA: undefined } });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  // A failure shows its message, so a test that fails says why.
  return new Promise((resolve) => child.on("exit", (code) => resolve(code === 0 ? 0 : `${code}: ${stderr.trim()}`)));
}

describe("ordo token, trust and authority", () => {
  const temp = makeTempDir("ordo-token-cli-");
  // Not created beforehand: issuing creates it.
  const data = join(temp.dir, "school", "node");
  const issueArgs = ["token", "issue", "--data", data, "--user", "automerge:teacher", "--course", "automerge:bio"];
  afterAll(() => temp.remove());
  /** Tokens the CLI is not under test for are issued in-process, sparing a child process each. */
  const issue = (role: "student" | "observer") => Authority.open(data).issue({ user: "automerge:teacher", role, courses: ["automerge:bio"], ttlMs: 3_600_000 });

  it("issues a token on one line, or as JSON, with a private authority key in a new data directory", () => {
    const plain = ordo([...issueArgs, "--role", "teacher", "--ttl", "8h"]);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/^ordo1\.[\w-]+\.[\w-]+\n$/);
    expect(decodeToken(plain.stdout.trim())).toMatchObject({ sub: "automerge:teacher", role: "teacher", courses: ["automerge:bio"] });
    expect(statSync(join(data, AUTHORITY_KEY_FILE)).mode & 0o777).toBe(0o600);

    const json = ordo([...issueArgs, "--course", "automerge:chem", "--role", "ta", "--ttl", "15m", "--json"]);
    expect(json.code).toBe(0);
    const issued = JSON.parse(json.stdout) as { token: string; user: string; role: string; courses: string[]; expiresAt: string; tokenId: string };
    expect(issued).toMatchObject({ user: "automerge:teacher", role: "ta", courses: ["automerge:bio", "automerge:chem"], tokenId: decodeToken(issued.token).jti });
    const lifetime = Date.parse(issued.expiresAt) - decodeToken(issued.token).iat * 1000;
    expect(lifetime).toBe(15 * 60_000);

    // A node token names the key of the device that holds it, and cannot be issued without one.
    const relayKey = ordo(["authority", "--data", `${data}/relay-device`]).stdout.trim();
    const node = ordo(["token", "issue", "--data", data, "--user", "relay-1", "--course", "*", "--role", "node", "--key", relayKey, "--ttl", "7d", "--json"]);
    expect(JSON.parse(node.stdout)).toMatchObject({ role: "node", courses: ["*"] });
    expect(decodeToken(JSON.parse(node.stdout).token).cnf).toBe(relayKey);
    const unbound = ordo(["token", "issue", "--data", data, "--user", "relay-1", "--course", "*", "--role", "node"]);
    expect(unbound.code).not.toBe(0);
    expect(unbound.stderr).toMatch(/bound to its holder's key/);
  });

  it("fails with one clear line on a wrong flag", () => {
    const cases: Array<[string[], RegExp]> = [
      [[...issueArgs, "--role", "principal"], /argument 'principal' is invalid\. expected one of teacher, ta, student, observer, node/],
      [[...issueArgs, "--role", "student", "--ttl", "8 hours"], /argument '8 hours' is invalid\. expected a lifetime such as 30s, 15m, 8h or 7d/],
      [[...issueArgs, "--role", "student", "--ttl", "0s"], /expected a lifetime/],
      [["token", "issue", "--data", data, "--course", "automerge:bio", "--role", "student"], /required option '--user <user>' not specified/],
      [["token", "issue", "--data", data, "--user", "u", "--role", "student"], /required option '--course <course>' not specified/],
      [[...issueArgs], /required option '--role <role>' not specified/],
      [["token", "issue", "--data", data, "--user", "u", "--course", "*", "--role", "teacher"], /^ordo: only role node may be granted every course/],
      [["trust", "add", "not-a-key", "--data", data], /^ordo: not an Ed25519 public key/],
      [["token", "revoke", "not an id", "--data", data], /^ordo: neither a token nor a token id/],
    ];
    for (const [args, message] of cases) {
      const result = ordo(args);
      expect(result.code, args.join(" ")).not.toBe(0);
      expect(result.stderr.trim().split("\n"), args.join(" ")).toHaveLength(1);
      expect(result.stderr, args.join(" ")).toMatch(message);
      expect(result.stdout).toBe("");
    }
  });

  it("shows a token's claims, exiting 0 when this node accepts it and 1 with the problem when it does not", () => {
    const token = ordo([...issueArgs, "--role", "student"]).stdout.trim();
    const accepted = ordo(["token", "show", token, "--data", data]);
    expect(accepted.code).toBe(0);
    expect(accepted.stdout).toMatch(/^user: +automerge:teacher$/m);
    expect(accepted.stdout).toMatch(/^role: +student$/m);
    expect(accepted.stdout).toMatch(/^accepted: yes$/m);

    const expired = Authority.open(data).issue({ user: "u", role: "student", courses: ["c"], ttlMs: 60_000, now: Date.now() - 3_600_000 });
    const refusedExpired = ordo(["token", "show", expired, "--data", data, "--json"]);
    expect(refusedExpired.code).toBe(1);
    expect(JSON.parse(refusedExpired.stdout)).toMatchObject({ accepted: false, problem: "expired", payload: { sub: "u" } });

    const elsewhere = ordo(["token", "show", token, "--data", join(temp.dir, "elsewhere")]);
    expect(elsewhere.code).toBe(1);
    expect(elsewhere.stdout).toMatch(/^refused: +untrusted \(/m);

    const garbled = ordo(["token", "show", `${token}x.y`, "--data", data, "--json"]);
    expect(garbled.code).toBe(1);
    expect(JSON.parse(garbled.stdout)).toMatchObject({ accepted: false, problem: "malformed", payload: null });
  });

  it("revokes a token, and a verifier that was already running refuses it", () => {
    const token = issue("student");
    let now = Date.now();
    const running = Verifier.open(data, { clock: () => now });
    expect(running.verify(token).role).toBe("student");

    const revoked = ordo(["token", "revoke", token, "--data", data]);
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toBe(`revoked token ${decodeToken(token).jti}: automerge:teacher (student), would have expired ${new Date(decodeToken(token).exp * 1000).toISOString()}\n`);
    now += 1000;
    expect(() => running.verify(token)).toThrow(expect.objectContaining({ problem: "revoked" }));
    const shown = ordo(["token", "show", token, "--data", data]);
    expect(shown.code).toBe(1);
    expect(shown.stdout).toMatch(/^refused: +revoked/m);
  });

  it("loses no revocation when several processes revoke at once", async () => {
    const ids = Array.from({ length: 4 }, () => decodeToken(issue("observer")).jti);
    const codes = await Promise.all(ids.map((id) => ordoAsync(["token", "revoke", id, "--data", data])));
    expect(codes).toEqual([0, 0, 0, 0]);
    expect(listRevocations(data).map((r) => r.jti)).toEqual(expect.arrayContaining(ids));
  });

  it("prints this node's authority key and trusts another's", () => {
    const other = join(temp.dir, "district");
    const key = ordo(["authority", "--data", other]);
    expect(key.code).toBe(0);
    expect(key.stdout).toMatch(/^[\w-]{43}\n$/);
    const publicKey = key.stdout.trim();
    expect(JSON.parse(ordo(["authority", "--data", other, "--json"]).stdout)).toEqual({ publicKey, keyFile: join(other, AUTHORITY_KEY_FILE) });

    const visitor = ordo(["token", "issue", "--data", other, "--user", "automerge:inspector", "--course", "automerge:bio", "--role", "observer"]).stdout.trim();
    expect(ordo(["token", "show", visitor, "--data", data]).code).toBe(1);
    const added = ordo(["trust", "add", publicKey, "--note", "district office", "--data", data]);
    expect(added.code).toBe(0);
    expect(added.stdout).toBe(`trusted ${publicKey} (district office)\n`);
    expect(ordo(["token", "show", visitor, "--data", data]).code).toBe(0);

    const list = JSON.parse(ordo(["trust", "list", "--data", data, "--json"]).stdout) as Array<{ key: string; note: string }>;
    const own = JSON.parse(readFileSync(join(data, AUTHORITY_KEY_FILE), "utf8")).jwk.x as string;
    expect(list.map((row) => [row.key, row.note])).toEqual([
      [own, "this node's authority"],
      [publicKey, "district office"],
    ]);
    expect(ordo(["trust", "list", "--data", data]).stdout).toContain("(2 rows)");
  });

  it("lists the commands in the help", () => {
    const help = ordo(["--help"]).stdout;
    for (const name of ["token", "trust", "authority"]) expect(help).toContain(name);
    const issueHelp = ordo(["token", "issue", "--help"]).stdout;
    expect(issueHelp).toContain("--ttl <ttl>");
    expect(issueHelp).toContain('(default: 8h)');
    expect(issueHelp).toContain("--data <dir>");
  });
});
