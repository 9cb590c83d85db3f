import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { Authority } from "../net/authority.js";
import { writeFileAtomic } from "../util/atomic-file.js";
import { ALL_COURSES, type Principal } from "../net/principal.js";
import { decodeToken, issuerOf } from "../net/tokens.js";
import { Verifier } from "../net/trust.js";
import { canWrite, type CoursesOf } from "../replication/access-policy.js";
import { OrdoError } from "../util/errors.js";
import { silentLogger, type Logger } from "../util/logger.js";

/** How long a node's self-issued token lives; it is renewed well before it expires. */
const SELF_TOKEN_TTL_MS = 24 * 3_600_000;
const RENEW_BEFORE_MS = 3_600_000;
/** How often, at most, a node looks at its token file for a renewed token. */
const TOKEN_FILE_RECHECK_MS = 1_000;

/**
 * Who this node is: the token it presents (its user's, or one its own authority signs for
 * itself as a `node`), the principal that token names, the verifier it checks others with,
 * and its peer id, kept in the data directory so a restarted node is the same peer.
 */
export class NodeIdentity {
  #token: string;
  #principal: Principal;
  #fileCheckedAt = 0;
  #fileStamp: number | undefined;

  private constructor(
    readonly peerId: string,
    readonly verifier: Verifier,
    token: string,
    principal: Principal,
    /** Set when the node signs its own token, so it can renew it. */
    readonly authority: Authority | null,
    /** The node's own key pair (the same file as its authority key). */
    private readonly key: Authority,
    readonly name: string,
    /** Where the token came from, to pick up a renewed one. */
    private readonly tokenFile: string | undefined,
    private readonly logger: Logger,
  ) {
    this.#token = token;
    this.#principal = principal;
  }

  /**
   * @param token The token this node presents; none means the node is its own authority
   *   (a relay, a teacher's laptop) and signs a `node` token for itself.
   */
  static open(dataDir: string, options: { token?: string; tokenFile?: string; trust?: readonly string[]; logger?: Logger; name?: string }): NodeIdentity {
    mkdirSync(dataDir, { recursive: true });
    const peerId = loadPeerId(dataDir);
    const given = (options.tokenFile ? readTokenFile(options.tokenFile) : options.token)?.trim();
    const extraIssuers = [...(options.trust ?? []), ...(given ? [issuerOf(given)] : [])];
    // Whoever issued this node's token is trusted for the courses it granted, not for others.
    const ownCourses = given ? decodeToken(given).courses : [];
    const issuerScopes = given && !ownCourses.includes(ALL_COURSES) && !(options.trust ?? []).includes(issuerOf(given)) ? new Map([[issuerOf(given), ownCourses]]) : undefined;
    const verifier = Verifier.open(dataDir, { extraIssuers, issuerScopes, logger: options.logger });
    const name = options.name ?? `node-${peerId}`;
    // Every node has a key: it proves the node holds its token (a token names its holder's
    // key), and it signs the node's own token when no one else issued one.
    const key = Authority.open(dataDir);
    const token = given ?? key.selfToken(name, SELF_TOKEN_TTL_MS);
    let principal: Principal;
    try {
      principal = verifier.verify(token);
    } catch (error) {
      throw new OrdoError("ORDO_BAD_IDENTITY", `this node's own token is not valid: ${(error as Error).message}`, { cause: error });
    }
    if (principal.holderKey !== undefined && principal.holderKey !== key.publicKey) {
      throw new OrdoError("ORDO_BAD_IDENTITY", `this node's token is bound to another key than this node's (${key.publicKey}); issue it with --key ${key.publicKey}`);
    }
    return new NodeIdentity(peerId, verifier, token, principal, given ? null : key, key, name, options.tokenFile, options.logger ?? silentLogger);
  }

  /** Signs for the handshake with the key the token names. */
  sign(bytes: Uint8Array): string {
    return this.key.sign(bytes);
  }

  /** Whether the token names this node's key, so it is worthless to anyone who copies it. */
  get keyBound(): boolean {
    return this.#principal.holderKey === this.key.publicKey;
  }

  get principal(): Principal {
    return this.#principal;
  }

  /**
   * The token to present now. A self-signed one is renewed before it expires; one read from
   * a file is read again when the file changes (a renewed token reaches a running node).
   * Never throws: a renewal that fails keeps the current token, and the failure is logged.
   */
  token(now = Date.now()): string {
    try {
      if (this.authority && this.#principal.expiresAt - now < RENEW_BEFORE_MS) this.#adopt(this.authority.selfToken(this.name, SELF_TOKEN_TTL_MS, now), now);
      else if (this.tokenFile) this.#rereadTokenFile(now);
    } catch (error) {
      this.logger.error({ err: error }, "could not renew this node's token; presenting the current one");
    }
    return this.#token;
  }

  #rereadTokenFile(now: number): void {
    const file = this.tokenFile!;
    if (now - this.#fileCheckedAt < TOKEN_FILE_RECHECK_MS) return;
    this.#fileCheckedAt = now;
    const stamp = statSync(file).mtimeMs;
    if (stamp === this.#fileStamp) return;
    this.#fileStamp = stamp;
    const text = readFileSync(file, "utf8").trim();
    if (text !== this.#token) this.#adopt(text, now);
  }

  /** Takes a new token only if it verifies and still names this node's key. */
  #adopt(token: string, now: number): void {
    const principal = this.verifier.verify(token, now);
    if (principal.holderKey !== undefined && principal.holderKey !== this.key.publicKey) throw new OrdoError("ORDO_BAD_IDENTITY", "the new token is bound to another key than this node's");
    this.#token = token;
    this.#principal = principal;
  }

  /** Whether this node may write a course's catalog partition, so whether it keeps it up to date. */
  maintainsCatalog(coursesOf: CoursesOf): (course: string, audience: string) => boolean {
    return (course, audience) => canWrite(this.#principal, { kind: "catalog", course, audience, owner: null, status: "ok" }, coursesOf);
  }

  /** The courses this node serves: its token's, or none in particular for an every-course node. */
  get courses(): readonly string[] {
    return this.#principal.courses.filter((course) => course !== ALL_COURSES);
  }
}

function readTokenFile(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (cause) {
    throw new OrdoError("ORDO_NO_TOKEN", `cannot read the token file ${file}: ${(cause as Error).message}`, { cause });
  }
}

/** The peer id stored in `peer-id`, created on first use: random, so it names no one. */
function loadPeerId(dataDir: string): string {
  const file = join(dataDir, "peer-id");
  if (!existsSync(file)) writeFileAtomic(file, `ordo-${randomBytes(9).toString("base64url")}\n`, { exclusive: true });
  const peerId = readFileSync(file, "utf8").trim();
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(peerId)) throw new OrdoError("ORDO_BAD_IDENTITY", `${file} does not hold a peer id`);
  return peerId;
}
