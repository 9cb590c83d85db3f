import { createPrivateKey, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Authority, AUTHORITY_KEY_FILE } from "../../src/net/authority.js";
import { writeFileAtomic } from "../../src/util/atomic-file.js";
import { TokenError, type TokenProblem } from "../../src/net/principal.js";
import { decodeToken, issuerOf, MAX_TOKEN_LENGTH, newTokenId, TOKEN_PREFIX, verifyHolderSignature, type TokenPayload } from "../../src/net/tokens.js";
import { listRevocations, listTrustedIssuers, REVOKED_TOKENS_FILE, revokeToken, TRUSTED_ISSUERS_FILE, trustIssuer, Verifier } from "../../src/net/trust.js";
import { makeTempDir } from "../../src/testing/temp-dir.js";
import { OrdoError } from "../../src/util/errors.js";

const HOUR = 3_600_000;
/** A whole second, so that `exp` falls exactly on `T0 + ttl`. */
const T0 = Date.UTC(2025, 8, 1, 8, 0, 0);

const temps: Array<{ remove: () => void }> = [];
afterEach(() => {
  for (const temp of temps.splice(0)) temp.remove();
});

/** A data directory with an authority, and a verifier on it whose clock the test moves. */
function setup() {
  const temp = makeTempDir("ordo-tokens-");
  temps.push(temp);
  const clock = { now: T0 };
  const authority = Authority.open(temp.dir);
  const verifier = Verifier.open(temp.dir, { clock: () => clock.now });
  const privateKey = createPrivateKey({ key: JSON.parse(readFileSync(join(temp.dir, AUTHORITY_KEY_FILE), "utf8")).jwk, format: "jwk" });
  const issue = (overrides: Partial<Parameters<Authority["issue"]>[0]> = {}) =>
    authority.issue({ user: "automerge:teacher", role: "teacher", courses: ["automerge:bio"], ttlMs: HOUR, now: T0, ...overrides });
  /** A token whose payload is whatever the test says, properly signed: it reaches the payload checks. */
  const signRaw = (payload: unknown, key: KeyObject = privateKey) => {
    const signed = `${TOKEN_PREFIX}.${Buffer.from(JSON.stringify(payload)).toString("base64url")}`;
    return `${signed}.${sign(null, Buffer.from(signed), key).toString("base64url")}`;
  };
  const payload = (): TokenPayload => ({ v: 1, iss: authority.publicKey, sub: "automerge:teacher", role: "teacher", courses: ["automerge:bio"], iat: T0 / 1000, exp: T0 / 1000 + 3600, jti: newTokenId() });
  return { dir: temp.dir, clock, authority, verifier, issue, signRaw, payload };
}

function problemOf(work: () => unknown): TokenProblem | "accepted" {
  try {
    work();
    return "accepted";
  } catch (error) {
    if (error instanceof TokenError) return error.problem;
    throw error;
  }
}

describe("issuing and verifying", () => {
  it("round-trips a token into the principal it names", () => {
    const { authority, verifier, issue } = setup();
    const token = issue({ courses: ["automerge:bio", "automerge:chem"] });
    expect(token.split(".")).toHaveLength(3);
    expect(token.startsWith("ordo1.")).toBe(true);
    const principal = verifier.verify(token);
    expect(principal).toEqual({
      user: "automerge:teacher",
      role: "teacher",
      courses: ["automerge:bio", "automerge:chem"],
      tokenId: decodeToken(token).jti,
      issuer: authority.publicKey,
      expiresAt: T0 + HOUR,
    });
    expect(Object.isFrozen(principal.courses)).toBe(true);
    expect(decodeToken(token)).toMatchObject({ v: 1, iat: T0 / 1000, exp: (T0 + HOUR) / 1000 });
    expect(decodeToken(token).jti).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });

  it("gives every token its own id", () => {
    const { issue } = setup();
    expect(decodeToken(issue()).jti).not.toBe(decodeToken(issue()).jti);
  });

  it("grants every course to the node role only", () => {
    const { authority, verifier, issue, signRaw, payload } = setup();
    const self = authority.selfToken("relay-1", HOUR, T0);
    expect(verifier.verify(self)).toMatchObject({ user: "relay-1", role: "node", courses: ["*"] });
    expect(() => issue({ courses: ["*"] })).toThrow(OrdoError);
    expect(() => issue({ role: "student", courses: ["automerge:bio", "*"] })).toThrow(/only role node/);
    // A teacher token claiming every course is refused even when properly signed.
    expect(problemOf(() => verifier.verify(signRaw({ ...payload(), courses: ["*"] })))).toBe("malformed");
  });

  it("refuses to issue what no verifier would accept", () => {
    const { issue } = setup();
    expect(() => issue({ courses: [] })).toThrow(/at least one course/);
    expect(() => issue({ user: "" })).toThrow(/needs a user/);
    expect(() => issue({ ttlMs: 500 })).toThrow(/at least one second/);
    expect(() => issue({ ttlMs: Number.NaN })).toThrow(/at least one second/);
    expect(() => issue({ role: "admin" as never })).toThrow(/unknown role/);
    expect(() => issue({ role: "node", courses: ["*"] })).toThrow(/bound to its holder's key/);
    expect(() => issue({ holderKey: "not-a-key" })).toThrow(/holder key is not an Ed25519 public key/);
  });
});

describe("holder keys (proof of possession)", () => {
  it("binds a self-issued node token to the authority's own key", () => {
    const { authority, verifier } = setup();
    const self = authority.selfToken("relay-1", HOUR, T0);
    expect(decodeToken(self).cnf).toBe(authority.publicKey);
    expect(verifier.verify(self).holderKey).toBe(authority.publicKey);
  });

  it("binds an issued token to the holder key it is given, and leaves a bearer token unbound", () => {
    const { verifier, issue } = setup();
    const holder = generateKeyPairSync("ed25519").publicKey.export({ format: "jwk" }).x!;
    const bound = issue({ role: "node", courses: ["*"], holderKey: holder });
    expect(decodeToken(bound).cnf).toBe(holder);
    expect(verifier.verify(bound)).toMatchObject({ role: "node", holderKey: holder });
    const bearer = verifier.verify(issue({ role: "student" }));
    expect(bearer).not.toHaveProperty("holderKey");
    expect(decodeToken(issue())).not.toHaveProperty("cnf");
  });

  it("refuses a properly signed node token that names no holder key as unbound", () => {
    const { verifier, signRaw, payload } = setup();
    const unbound = signRaw({ ...payload(), sub: "relay-1", role: "node", courses: ["*"] });
    expect(problemOf(() => verifier.verify(unbound))).toBe("unbound");
    expect(() => verifier.verify(unbound)).toThrow(expect.objectContaining({ code: "ORDO_TOKEN_UNBOUND" }));
    // Other roles stay valid as bearer tokens: stock clients and browsers have no key.
    expect(problemOf(() => verifier.verify(signRaw({ ...payload(), role: "student" })))).toBe("accepted");
  });

  it("refuses a cnf that is not an Ed25519 public key", () => {
    const { authority, verifier, signRaw, payload } = setup();
    for (const cnf of [null, "", "abc", 42, `${authority.publicKey}=`, authority.publicKey.slice(1), [authority.publicKey]]) {
      expect(problemOf(() => verifier.verify(signRaw({ ...payload(), cnf }))), JSON.stringify(cnf)).toBe("malformed");
    }
    expect(problemOf(() => verifier.verify(signRaw({ ...payload(), cnf: authority.publicKey })))).toBe("accepted");
  });

  it("verifies the authority's signatures under its public key, and nothing else", () => {
    const { authority } = setup();
    const bytes = new TextEncoder().encode("ordo-join\nchallenge\npeer");
    const signature = authority.sign(bytes);
    expect(signature).toMatch(/^[A-Za-z0-9_-]{86}$/);
    expect(verifyHolderSignature(authority.publicKey, bytes, signature)).toBe(true);
    expect(verifyHolderSignature(authority.publicKey, new TextEncoder().encode("ordo-join\nchallenge\nother"), signature)).toBe(false);
    const otherKey = generateKeyPairSync("ed25519").publicKey.export({ format: "jwk" }).x!;
    expect(verifyHolderSignature(otherKey, bytes, signature)).toBe(false);
    for (const bad of ["", "not base64url!", signature.slice(2), `${signature}A`]) {
      expect(verifyHolderSignature(authority.publicKey, bytes, bad), bad).toBe(false);
    }
    expect(verifyHolderSignature("not-a-key", bytes, signature)).toBe(false);
  });
});

describe("refusals", () => {
  it("refuses malformed tokens", () => {
    const { verifier, issue, signRaw, payload } = setup();
    const good = issue();
    const [prefix, body, signature] = good.split(".") as [string, string, string];
    const { jti: _jti, ...withoutJti } = payload();
    const cases: Record<string, string> = {
      empty: "",
      "one part": "ordo1",
      "two parts": `${prefix}.${body}`,
      "extra dots": `${good}.more`,
      "dot in the payload": `${prefix}.${body.slice(0, 10)}.${body.slice(10)}.${signature}`,
      "wrong prefix": `ordo2.${body}.${signature}`,
      "payload not base64url": `${prefix}.${body.slice(0, -2)}!!.${signature}`,
      "payload with padding": `${prefix}.${body}=.${signature}`,
      "payload in the standard alphabet": `${prefix}.+${body.slice(1)}.${signature}`,
      "signature too short": `${prefix}.${body}.${signature.slice(0, 40)}`,
      "payload not JSON": `${prefix}.${Buffer.from("{not json").toString("base64url")}.${signature}`,
      "payload an array": signRaw([payload()]),
      "payload null": signRaw(null),
      "wrong version": signRaw({ ...payload(), v: 2 }),
      "version as a string": signRaw({ ...payload(), v: "1" }),
      "missing jti": signRaw(withoutJti),
      "missing sub": signRaw({ ...payload(), sub: undefined }),
      "empty sub": signRaw({ ...payload(), sub: "" }),
      "unknown role": signRaw({ ...payload(), role: "admin" }),
      "courses not a list": signRaw({ ...payload(), courses: "automerge:bio" }),
      "no courses": signRaw({ ...payload(), courses: [] }),
      "a course not a string": signRaw({ ...payload(), courses: ["automerge:bio", 7] }),
      "iat a string": signRaw({ ...payload(), iat: String(T0 / 1000) }),
      "exp a fraction": signRaw({ ...payload(), exp: T0 / 1000 + 0.5 }),
      "exp before iat": signRaw({ ...payload(), exp: T0 / 1000 - 1 }),
      "jti too short": signRaw({ ...payload(), jti: "abc" }),
      "iss not a key": signRaw({ ...payload(), iss: "not-a-key" }),
      "unknown field": signRaw({ ...payload(), admin: true }),
      "far too long": `${prefix}.${"A".repeat(MAX_TOKEN_LENGTH)}.${signature}`,
    };
    for (const [name, token] of Object.entries(cases)) expect(problemOf(() => verifier.verify(token)), name).toBe("malformed");
    expect(problemOf(() => verifier.verify(42 as unknown as string))).toBe("malformed");
    expect(() => verifier.verify("ordo1")).toThrow(/^token is malformed: expected 3 dot-separated parts/);
  });

  it("refuses a token whose payload or signature was altered, or signed by another key in the authority's name", () => {
    const { verifier, issue, signRaw, payload } = setup();
    const [prefix, body, signature] = issue({ role: "student" }).split(".") as [string, string, string];
    const promoted = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(body, "base64url").toString()), role: "teacher" })).toString("base64url");
    expect(problemOf(() => verifier.verify(`${prefix}.${promoted}.${signature}`))).toBe("forged");
    const flipped = Buffer.from(signature, "base64url");
    flipped[0]! ^= 1;
    expect(problemOf(() => verifier.verify(`${prefix}.${body}.${flipped.toString("base64url")}`))).toBe("forged");
    const impostor = generateKeyPairSync("ed25519").privateKey;
    expect(problemOf(() => verifier.verify(signRaw(payload(), impostor)))).toBe("forged");
    expect(verifier.verify(signRaw(payload())).role).toBe("teacher");
  });

  it("refuses a token from an issuer it does not trust", () => {
    const { verifier } = setup();
    const other = makeTempDir("ordo-other-");
    temps.push(other);
    const token = Authority.open(other.dir).issue({ user: "u", role: "student", courses: ["c"], ttlMs: HOUR, now: T0 });
    expect(problemOf(() => verifier.verify(token))).toBe("untrusted");
    expect(() => verifier.verify(token)).toThrow(/does not trust/);
  });

  it("refuses a token from the second it expires", () => {
    const { verifier, issue } = setup();
    const token = issue();
    expect(problemOf(() => verifier.verify(token, T0 + HOUR - 1))).toBe("accepted");
    expect(problemOf(() => verifier.verify(token, T0 + HOUR))).toBe("expired");
    expect(() => verifier.verify(token, T0 + 2 * HOUR)).toThrow(/expired at 2025-09-01T09:00:00.000Z/);
  });
});

describe("revocation", () => {
  it("refuses a revoked token, named by the whole token or by its id", () => {
    const { dir, clock, verifier, issue } = setup();
    const [byToken, byId, untouched] = [issue(), issue(), issue()];
    revokeToken(dir, byToken, T0);
    revokeToken(dir, decodeToken(byId).jti, T0);
    clock.now += 1000;
    expect(problemOf(() => verifier.verify(byToken))).toBe("revoked");
    expect(problemOf(() => verifier.verify(byId))).toBe("revoked");
    expect(problemOf(() => verifier.verify(untouched))).toBe("accepted");
    expect(listRevocations(dir).map((r) => r.expiresAt)).toEqual(["2025-09-01T09:00:00.000Z", null]);
    // Revoking again by the whole token tells when the id's entry may go.
    revokeToken(dir, byId, T0);
    expect(listRevocations(dir)).toHaveLength(2);
    expect(listRevocations(dir)[1]!.expiresAt).toBe("2025-09-01T09:00:00.000Z");
    expect(() => revokeToken(dir, "not an id")).toThrow(/neither a token nor a token id/);
  });

  it("notices a revocation written by another writer while it keeps running, within the recheck interval", () => {
    const { dir, clock, verifier, issue } = setup();
    const token = issue();
    expect(verifier.verify(token).user).toBe("automerge:teacher");
    // Another process's view of the same directory writes the file.
    revokeToken(dir, token, T0);
    clock.now += 500;
    expect(problemOf(() => verifier.verify(token))).toBe("accepted");
    clock.now += 500;
    expect(problemOf(() => verifier.verify(token))).toBe("revoked");
    // A second verifier opened afterwards agrees at once.
    expect(problemOf(() => Verifier.open(dir, { clock: () => clock.now }).verify(token))).toBe("revoked");
  });

  it("drops entries for tokens that have expired anyway when it writes", () => {
    const { dir, issue } = setup();
    const shortLived = issue({ ttlMs: 60_000 });
    revokeToken(dir, shortLived, T0);
    revokeToken(dir, issue(), T0 + 120_000);
    const kept = listRevocations(dir).map((r) => r.jti);
    expect(kept).toHaveLength(1);
    expect(kept).not.toContain(decodeToken(shortLived).jti);
  });

  it("refuses to open on a revocation file that does not parse, and keeps the last good list when one stops parsing", () => {
    const { dir, clock, issue } = setup();
    const token = issue();
    revokeToken(dir, token, T0);
    const warnings: object[] = [];
    const logger = { debug() {}, info() {}, warn: (obj: object) => void warnings.push(obj), error() {} };
    const verifier = Verifier.open(dir, { clock: () => clock.now, logger });
    expect(problemOf(() => verifier.verify(token))).toBe("revoked");
    writeFileSync(join(dir, REVOKED_TOKENS_FILE), "[{ oops");
    clock.now += 1000;
    expect(problemOf(() => verifier.verify(token))).toBe("revoked");
    expect(warnings).toHaveLength(1);
    expect(() => Verifier.open(dir)).toThrow(/revoked-tokens.json is not JSON/);
    writeFileSync(join(dir, REVOKED_TOKENS_FILE), JSON.stringify([{ jti: "x" }]));
    expect(() => Verifier.open(dir)).toThrow(/entry 0 is not \{ jti, revokedAt, expiresAt \}/);
  });
});

describe("trust", () => {
  function twoAuthorities() {
    const here = setup();
    const other = makeTempDir("ordo-other-");
    temps.push(other);
    const token = Authority.open(other.dir).issue({ user: "automerge:visitor", role: "observer", courses: ["automerge:bio"], ttlMs: HOUR, now: T0 });
    return { ...here, token };
  }

  it("accepts another authority's tokens once its key is in trusted-issuers.json, in a running verifier too", () => {
    const { dir, clock, verifier, token } = twoAuthorities();
    expect(problemOf(() => verifier.verify(token))).toBe("untrusted");
    const entry = trustIssuer(dir, issuerOf(token), "the district's authority", T0);
    expect(entry).toEqual({ key: issuerOf(token), note: "the district's authority", addedAt: new Date(T0).toISOString() });
    clock.now += 1000;
    expect(verifier.verify(token).user).toBe("automerge:visitor");
    // Trusting twice keeps one entry; a new note replaces the old.
    trustIssuer(dir, issuerOf(token), "district", T0 + 5000);
    expect(listTrustedIssuers(dir)).toEqual([{ ...entry, note: "district" }]);
    expect(JSON.parse(readFileSync(join(dir, TRUSTED_ISSUERS_FILE), "utf8"))).toHaveLength(1);
  });

  it("accepts the issuers it is given, read from a token without verifying it", () => {
    const { dir, clock, token } = twoAuthorities();
    const verifier = Verifier.open(dir, { clock: () => clock.now, extraIssuers: [issuerOf(token)] });
    expect(verifier.trusts(issuerOf(token))).toBe(true);
    expect(verifier.verify(token).role).toBe("observer");
    expect(() => Verifier.open(dir, { extraIssuers: ["nope"] })).toThrow(/not an Ed25519 public key/);
    expect(() => trustIssuer(dir, "nope")).toThrow(OrdoError);
  });

  it("trusts a directory's own authority even when the key is created after the verifier", () => {
    const temp = makeTempDir("ordo-late-");
    temps.push(temp);
    const clock = { now: T0 };
    const verifier = Verifier.open(temp.dir, { clock: () => clock.now });
    const token = Authority.open(temp.dir).issue({ user: "u", role: "ta", courses: ["c"], ttlMs: HOUR, now: T0 });
    clock.now += 1000;
    expect(verifier.verify(token).role).toBe("ta");
  });
});

describe("the authority key file", () => {
  it("is created with mode 0600, leaves no temp file, and is loaded again as the same key", () => {
    const { dir, authority } = setup();
    const keyFile = join(dir, AUTHORITY_KEY_FILE);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual([AUTHORITY_KEY_FILE]);
    expect(Authority.open(dir).publicKey).toBe(authority.publicKey);
    expect(authority.publicKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it("creates the directory it is asked for", () => {
    const temp = makeTempDir("ordo-mkdir-");
    temps.push(temp);
    const nested = join(temp.dir, "a", "b");
    Authority.open(nested);
    expect(existsSync(join(nested, AUTHORITY_KEY_FILE))).toBe(true);
  });

  it("is refused with a clear error when it is not a key", () => {
    const { dir } = setup();
    const keyFile = join(dir, AUTHORITY_KEY_FILE);
    const real = JSON.parse(readFileSync(keyFile, "utf8"));
    for (const [content, why] of [
      ["{", /not JSON/],
      [JSON.stringify({ version: 1 }), /expected version 1 and a jwk/],
      [JSON.stringify({ ...real, jwk: { ...real.jwk, crv: "P-256" } }), /expected an Ed25519 JWK/],
      [JSON.stringify({ ...real, jwk: { ...real.jwk, x: Authority.open(makeTempDirFor()).publicKey } }), /x is not the public half of d/],
    ] as const) {
      writeFileSync(keyFile, content);
      expect(() => Authority.open(dir), String(why)).toThrow(why);
      expect(() => Authority.open(dir)).toThrow(expect.objectContaining({ code: "ORDO_BAD_KEY_FILE" }));
    }
  });

  it("is never overwritten by an exclusive write", () => {
    const { dir, authority } = setup();
    expect(writeFileAtomic(join(dir, AUTHORITY_KEY_FILE), "{}", { mode: 0o600, exclusive: true })).toBe(false);
    expect(Authority.open(dir).publicKey).toBe(authority.publicKey);
    expect(readdirSync(dir)).toEqual([AUTHORITY_KEY_FILE]);
  });
});

function makeTempDirFor(): string {
  const temp = makeTempDir("ordo-key-");
  temps.push(temp);
  return temp.dir;
}

describe("an issuer trusted for some courses", () => {
  it("grants only those courses, even to a token for every course, and nothing for others", () => {
    const node = makeTempDir();
    const issuerDir = makeTempDir();
    temps.push(node, issuerDir);
    const issuer = Authority.open(issuerDir.dir);
    const verifier = Verifier.open(node.dir, { extraIssuers: [issuer.publicKey], issuerScopes: new Map([[issuer.publicKey, ["automerge:bio"]]]) });
    const holderKey = Authority.open(makeTempDirFor()).publicKey;
    const both = issuer.issue({ user: "automerge:t", role: "teacher", courses: ["automerge:bio", "automerge:chem"], ttlMs: HOUR });
    expect(verifier.verify(both).courses).toEqual(["automerge:bio"]);
    const every = issuer.issue({ user: "relay", role: "node", courses: ["*"], ttlMs: HOUR, holderKey });
    expect(verifier.verify(every).courses).toEqual(["automerge:bio"]);
    const other = issuer.issue({ user: "automerge:t", role: "teacher", courses: ["automerge:chem"], ttlMs: HOUR });
    expect(problemOf(() => verifier.verify(other))).toBe("untrusted");
    // Trusted outright (trusted-issuers.json), the same key grants what it signs.
    trustIssuer(node.dir, issuer.publicKey);
    expect(Verifier.open(node.dir, { issuerScopes: new Map([[issuer.publicKey, ["automerge:bio"]]]) }).verify(other).courses).toEqual(["automerge:chem"]);
  });
});

describe("token ids", () => {
  it("never start with a dash, which a command line would take for a flag", () => {
    for (let i = 0; i < 2_000; i++) expect(newTokenId().startsWith("-")).toBe(false);
  });
});
