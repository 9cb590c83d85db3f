import { closeSync, mkdirSync, openSync, readFileSync, rmSync, statSync } from "node:fs";
import type { KeyObject } from "node:crypto";
import { join } from "node:path";
import { OrdoError } from "../util/errors.js";
import { silentLogger, type Logger } from "../util/logger.js";
import { writeFileAtomic } from "../util/atomic-file.js";
import { AUTHORITY_KEY_FILE, readAuthorityPublicKey } from "./authority.js";
import { ALL_COURSES, TokenError, type Principal, type TokenVerifier } from "./principal.js";
import { decodeToken, hasValidSignature, isPublicKey, isTokenId, parseToken, principalOf, publicKeyFrom } from "./tokens.js";

/** Issuers this node trusts besides its own authority: `[{ key, note?, addedAt }]`. */
export const TRUSTED_ISSUERS_FILE = "trusted-issuers.json";
/** Tokens refused before they expire: `[{ jti, revokedAt, expiresAt }]`. */
export const REVOKED_TOKENS_FILE = "revoked-tokens.json";

export interface TrustedIssuer {
  /** Ed25519 public key, base64url. */
  key: string;
  note?: string;
  /** ISO-8601 UTC. */
  addedAt: string;
}

export interface Revocation {
  jti: string;
  /** ISO-8601 UTC. */
  revokedAt: string;
  /** When the token expires anyway (ISO-8601 UTC), after which the entry is dropped; null when only the id was given. */
  expiresAt: string | null;
}

/**
 * How often, at most, a verifier looks at the trust and revocation files: a revocation made
 * by another process (`ordo token revoke`) takes effect within this, and a node verifying
 * many tokens a second pays one `stat` per file per second.
 */
export const DEFAULT_RECHECK_MS = 1000;

export interface VerifierOptions {
  /** Keys trusted besides the data directory's: the issuer of this node's own token, say (see `issuerOf`). */
  extraIssuers?: readonly string[];
  /**
   * Courses an extra issuer is trusted for (the issuer of this node's own token: the courses
   * that token names). A token it signs counts only for those courses, `*` included; one that
   * names none of them is refused. Keys with no entry, this node's own authority and the keys
   * in `trusted-issuers.json` are trusted for every course.
   */
  issuerScopes?: ReadonlyMap<string, readonly string[]>;
  /** Milliseconds since the epoch; paces the file checks and is the default `now` of `verify`. */
  clock?: () => number;
  recheckMs?: number;
  /** Hears of a trust or revocation file that no longer parses (the last good content stays in force). */
  logger?: Logger;
}

/**
 * The node's `TokenVerifier`: trusts its own authority's key (`authority-key.json`), the keys
 * in `trusted-issuers.json` and `extraIssuers`, and refuses the tokens in
 * `revoked-tokens.json`, and every `node` token that names no holder key (`unbound`). The
 * files are re-read when they change, so `ordo trust add` and
 * `ordo token revoke` run in another process reach a running node without a restart.
 *
 * @example
 * const verifier = Verifier.open("./.ordo", { logger });
 * const principal = verifier.verify(token); // throws TokenError
 */
export class Verifier implements TokenVerifier {
  private readonly authorityKey: WatchedFile<string | undefined>;
  private readonly trusted: WatchedFile<ReadonlySet<string>>;
  private readonly revoked: WatchedFile<ReadonlySet<string>>;
  private readonly extra: ReadonlySet<string>;
  private readonly scopes: ReadonlyMap<string, readonly string[]>;
  private readonly keys = new Map<string, KeyObject>();
  private readonly clock: () => number;

  private constructor(dataDir: string, options: VerifierOptions) {
    this.clock = options.clock ?? Date.now;
    const recheckMs = options.recheckMs ?? DEFAULT_RECHECK_MS;
    const logger = options.logger ?? silentLogger;
    const watch = <T>(file: string, read: () => T) => new WatchedFile(join(dataDir, file), read, recheckMs, logger);
    this.authorityKey = watch(AUTHORITY_KEY_FILE, () => readAuthorityPublicKey(dataDir));
    this.trusted = watch(TRUSTED_ISSUERS_FILE, () => new Set(listTrustedIssuers(dataDir).map((issuer) => issuer.key)));
    this.revoked = watch(REVOKED_TOKENS_FILE, () => new Set(listRevocations(dataDir).map((revocation) => revocation.jti)));
    for (const key of options.extraIssuers ?? []) {
      if (!isPublicKey(key)) throw new OrdoError("ORDO_BAD_KEY", `not an Ed25519 public key (base64url of 32 bytes): ${key}`);
    }
    this.extra = new Set(options.extraIssuers);
    this.scopes = options.issuerScopes ?? new Map();
  }

  /** A verifier on `dataDir`'s files (missing files mean none). Throws `OrdoError` on a file that does not parse. */
  static open(dataDir: string, options: VerifierOptions = {}): Verifier {
    return new Verifier(dataDir, options);
  }

  /** Whether tokens signed by `key` are accepted. */
  trusts(key: string): boolean {
    const now = this.clock();
    return this.extra.has(key) || this.authorityKey.get(now) === key || this.trusted.get(now).has(key);
  }

  verify(token: string, now: number = this.clock()): Principal {
    const parsed = parseToken(token);
    const { payload } = parsed;
    // Trust first: a key nobody trusts is not worth a signature check.
    if (!this.trusts(payload.iss)) throw new TokenError("untrusted", `token issued by ${payload.iss}, which this node does not trust`);
    if (!hasValidSignature(parsed, this.keyObject(payload.iss))) throw new TokenError("forged", "token signature was not made by its issuer's key");
    // A node token is what a server shows every client: without a holder key, any client could replay it.
    if (payload.role === "node" && payload.cnf === undefined) throw new TokenError("unbound", "a node token must name its holder's key (cnf); issue it again");
    if (now >= payload.exp * 1000) throw new TokenError("expired", `token expired at ${new Date(payload.exp * 1000).toISOString()}`);
    if (this.revoked.get(this.clock()).has(payload.jti)) throw new TokenError("revoked", `token ${payload.jti} was revoked`);
    return this.withinScope(principalOf(payload));
  }

  /** Narrows a principal to the courses its issuer is trusted for (see `issuerScopes`). */
  private withinScope(principal: Principal): Principal {
    const scope = this.scopes.get(principal.issuer);
    const now = this.clock();
    if (!scope || this.authorityKey.get(now) === principal.issuer || this.trusted.get(now).has(principal.issuer)) return principal;
    const courses = principal.courses.includes(ALL_COURSES) ? [...scope] : principal.courses.filter((course) => scope.includes(course));
    if (courses.length === 0) throw new TokenError("untrusted", `token issued by ${principal.issuer} for courses this node does not trust it with`);
    return { ...principal, courses };
  }

  private keyObject(key: string): KeyObject {
    let object = this.keys.get(key);
    if (!object) {
      object = publicKeyFrom(key);
      this.keys.set(key, object);
    }
    return object;
  }
}

/** Adds `key` to the data directory's trusted issuers (or updates its note). */
export function trustIssuer(dataDir: string, key: string, note?: string, now: number = Date.now()): TrustedIssuer {
  if (!isPublicKey(key)) throw new OrdoError("ORDO_BAD_KEY", `not an Ed25519 public key (base64url of 32 bytes): ${key}`);
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, TRUSTED_ISSUERS_FILE);
  return withFileLock(path, () => {
    const issuers = listTrustedIssuers(dataDir);
    let entry = issuers.find((issuer) => issuer.key === key);
    if (!entry) {
      entry = { key, addedAt: new Date(now).toISOString() };
      issuers.push(entry);
    }
    if (note !== undefined) entry.note = note;
    writeFileAtomic(path, `${JSON.stringify(issuers, null, 2)}\n`);
    return entry;
  });
}

/** The data directory's trusted issuers (not counting its own authority). */
export function listTrustedIssuers(dataDir: string): TrustedIssuer[] {
  const path = join(dataDir, TRUSTED_ISSUERS_FILE);
  return readList(path, (entry): entry is TrustedIssuer => {
    const e = entry as Partial<TrustedIssuer>;
    return isPublicKey(e.key) && typeof e.addedAt === "string" && (e.note === undefined || typeof e.note === "string");
  }, "{ key, note?, addedAt }");
}

/**
 * Records a revocation: `tokenOrId` is a whole token (its signature is not checked: any
 * token may be refused) or a token id. Entries of tokens that have expired anyway are dropped.
 */
export function revokeToken(dataDir: string, tokenOrId: string, now: number = Date.now()): Revocation {
  let jti: string;
  let expiresAt: string | null = null;
  if (tokenOrId.includes(".")) {
    const payload = decodeToken(tokenOrId);
    jti = payload.jti;
    expiresAt = new Date(payload.exp * 1000).toISOString();
  } else if (isTokenId(tokenOrId)) {
    jti = tokenOrId;
  } else {
    throw new OrdoError("ORDO_BAD_TOKEN_ID", `neither a token nor a token id: ${tokenOrId}`);
  }
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, REVOKED_TOKENS_FILE);
  return withFileLock(path, () => {
    const kept = listRevocations(dataDir).filter((r) => r.expiresAt === null || Date.parse(r.expiresAt) > now);
    let entry = kept.find((r) => r.jti === jti);
    if (!entry) {
      entry = { jti, revokedAt: new Date(now).toISOString(), expiresAt };
      kept.push(entry);
    }
    // Revoked first by id, then by the whole token: now the entry can be dropped when it expires.
    entry.expiresAt ??= expiresAt;
    writeFileAtomic(path, `${JSON.stringify(kept, null, 2)}\n`);
    return entry;
  });
}

/** The data directory's revocations. */
export function listRevocations(dataDir: string): Revocation[] {
  const path = join(dataDir, REVOKED_TOKENS_FILE);
  return readList(path, (entry): entry is Revocation => {
    const e = entry as Partial<Revocation>;
    return isTokenId(e.jti) && typeof e.revokedAt === "string" && (e.expiresAt === null || (typeof e.expiresAt === "string" && !Number.isNaN(Date.parse(e.expiresAt))));
  }, "{ jti, revokedAt, expiresAt }");
}

function readList<T>(path: string, isEntry: (entry: unknown) => entry is T, shape: string): T[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  let list: unknown;
  try {
    list = JSON.parse(text);
  } catch (error) {
    throw new OrdoError("ORDO_BAD_TRUST_FILE", `${path} is not JSON`, { cause: error });
  }
  if (!Array.isArray(list)) throw new OrdoError("ORDO_BAD_TRUST_FILE", `${path} is not a list of ${shape}`);
  const bad = list.findIndex((entry) => typeof entry !== "object" || entry === null || !isEntry(entry));
  if (bad >= 0) throw new OrdoError("ORDO_BAD_TRUST_FILE", `${path}: entry ${bad} is not ${shape}`);
  return list as T[];
}

/**
 * A file's parsed content, re-read when the file changes: a rename (how every writer here
 * replaces a file) gives a new inode, an editor's save a new mtime or size.
 */
class WatchedFile<T> {
  private value: T;
  private stamp: string;
  private checkedAt: number;

  constructor(
    private readonly path: string,
    private readonly read: () => T,
    private readonly recheckMs: number,
    private readonly logger: Logger,
  ) {
    this.stamp = stampOf(path);
    this.value = read();
    this.checkedAt = -Infinity;
  }

  get(now: number): T {
    // A clock that went backwards counts as time passed.
    if (now >= this.checkedAt && now - this.checkedAt < this.recheckMs) return this.value;
    this.checkedAt = now;
    const stamp = stampOf(this.path);
    if (stamp === this.stamp) return this.value;
    try {
      this.value = this.read();
      this.stamp = stamp;
    } catch (error) {
      // Refusing every token over a typo would take the node down for everyone; keep the last good list, say so.
      this.logger.warn({ err: error, path: this.path }, "trust file does not parse; keeping its last good content");
    }
    return this.value;
  }
}

function stampOf(path: string): string {
  try {
    const stat = statSync(path, { bigint: true });
    return `${stat.ino}:${stat.mtimeNs}:${stat.size}`;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return "missing";
    throw error;
  }
}

/** How long a lock file may stand before it is taken for a crashed writer's and removed. */
const STALE_LOCK_MS = 10_000;
/** How long a writer waits for another's lock: writes take milliseconds, so this is a stuck lock. */
const LOCK_WAIT_MS = 5_000;
const LOCK_POLL_MS = 20;

/** Runs `work` holding `<path>.lock`, so that two processes revoking at once do not lose one revocation. */
function withFileLock<T>(path: string, work: () => T): T {
  const lock = `${path}.lock`;
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      closeSync(openSync(lock, "wx"));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    if (lockAge(lock) > STALE_LOCK_MS) rmSync(lock, { force: true });
    else if (Date.now() > deadline) throw new OrdoError("ORDO_LOCKED", `${path} is being written by another process (remove ${lock} if none is)`);
    else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, LOCK_POLL_MS);
  }
  try {
    return work();
  } finally {
    rmSync(lock, { force: true });
  }
}

function lockAge(lock: string): number {
  try {
    return Date.now() - statSync(lock).mtimeMs;
  } catch {
    return 0;
  }
}
