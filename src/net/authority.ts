import { mkdirSync, readFileSync } from "node:fs";
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { join, resolve } from "node:path";
import { writeFileAtomic } from "../util/atomic-file.js";
import { OrdoError } from "../util/errors.js";
import { ALL_COURSES, ROLES, type Role } from "./principal.js";
import { isPublicKey, newTokenId, signToken, type TokenPayload } from "./tokens.js";

/** The course authority's key pair, in its data directory. Only the owner may read it. */
export const AUTHORITY_KEY_FILE = "authority-key.json";

/** What `authority-key.json` holds: the key as a JWK (`x` public, `d` private), both base64url. */
interface AuthorityKeyFile {
  version: 1;
  createdAt: string;
  jwk: { kty: "OKP"; crv: "Ed25519"; x: string; d: string };
}

export interface IssueRequest {
  /** The user's document URL, or a node's name for role `node`. */
  user: string;
  role: Role;
  /** Course document URLs; `*` (every course) for role `node` only. */
  courses: readonly string[];
  /** How long the token lives, in milliseconds (at least one second). */
  ttlMs: number;
  /** Milliseconds since the epoch; now unless given. */
  now?: number;
  /**
   * The Ed25519 public key (base64url, raw 32 bytes) of whoever will hold the token: set as
   * its `cnf` claim, the token is then worthless without that key. Required for role `node`.
   */
  holderKey?: string;
}

/**
 * A course authority: the Ed25519 key that signs the tokens its nodes accept.
 *
 * @example
 * const authority = Authority.open("./.ordo");
 * const token = authority.issue({ user: teacherUrl, role: "teacher", courses: [courseUrl], ttlMs: 8 * 3600_000 });
 */
export class Authority {
  private constructor(
    private readonly privateKey: KeyObject,
    /** Ed25519 public key, base64url (raw 32 bytes): what nodes list as a trusted issuer. */
    readonly publicKey: string,
    /** Where the key lives. */
    readonly keyFile: string,
  ) {}

  /** Loads the key in `dir`, creating the directory and a new key (mode 0600) if there is none. */
  static open(dir: string): Authority {
    mkdirSync(dir, { recursive: true });
    const keyFile = join(resolve(dir), AUTHORITY_KEY_FILE);
    let text = readIfExists(keyFile);
    if (text === undefined) {
      const { privateKey } = generateKeyPairSync("ed25519");
      const jwk = privateKey.export({ format: "jwk" });
      const file: AuthorityKeyFile = { version: 1, createdAt: new Date().toISOString(), jwk: { kty: "OKP", crv: "Ed25519", x: jwk.x!, d: jwk.d! } };
      // Exclusive: when two processes create a key at once, one key wins and both use it.
      writeFileAtomic(keyFile, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600, exclusive: true });
      text = readFileSync(keyFile, "utf8");
    }
    const privateKey = parseKeyFile(keyFile, text);
    return new Authority(privateKey, createPublicKey(privateKey).export({ format: "jwk" }).x!, keyFile);
  }

  /** Signs a token for `request.user`. Throws `OrdoError` on a request no verifier would accept. */
  issue(request: IssueRequest): string {
    const now = request.now ?? Date.now();
    const refuse = (message: string) => new OrdoError("ORDO_BAD_GRANT", message);
    if (typeof request.user !== "string" || request.user.length === 0) throw refuse("a token needs a user");
    if (!ROLES.includes(request.role)) throw refuse(`unknown role ${String(request.role)} (expected ${ROLES.join(", ")})`);
    if (request.courses.length === 0) throw refuse("a token needs at least one course");
    if (request.courses.some((c) => typeof c !== "string" || c.length === 0)) throw refuse("a course cannot be empty");
    if (request.courses.includes(ALL_COURSES) && request.role !== "node") throw refuse(`only role node may be granted every course ("${ALL_COURSES}")`);
    const iat = Math.floor(now / 1000);
    const exp = Math.floor((now + request.ttlMs) / 1000);
    if (!Number.isFinite(request.ttlMs) || !Number.isSafeInteger(exp) || exp <= iat) throw refuse("a token must live at least one second");
    if (request.holderKey !== undefined && !isPublicKey(request.holderKey)) throw refuse("the holder key is not an Ed25519 public key (base64url of 32 bytes)");
    if (request.role === "node" && request.holderKey === undefined) throw refuse("a node token must be bound to its holder's key (holderKey)");
    const payload: TokenPayload = { v: 1, iss: this.publicKey, sub: request.user, role: request.role, courses: [...new Set(request.courses)], iat, exp, jti: newTokenId() };
    if (request.holderKey !== undefined) payload.cnf = request.holderKey;
    return signToken(payload, this.privateKey);
  }

  /**
   * A `node` token for every course, bound to this authority's own key (which doubles as the
   * node's key): what a relay or the authority's own node presents about itself, and proves
   * with `sign`.
   */
  selfToken(name: string, ttlMs: number, now?: number): string {
    return this.issue({ user: name, role: "node", courses: [ALL_COURSES], ttlMs, now, holderKey: this.publicKey });
  }

  /** This key's Ed25519 signature over `bytes`, base64url: a holder's proof (see `verifyHolderSignature`). */
  sign(bytes: Uint8Array): string {
    return sign(null, bytes, this.privateKey).toString("base64url");
  }
}

/** The public key in a data directory's authority key file, or undefined when it has none. Throws on a malformed file. */
export function readAuthorityPublicKey(dir: string): string | undefined {
  const keyFile = join(dir, AUTHORITY_KEY_FILE);
  const text = readIfExists(keyFile);
  return text === undefined ? undefined : createPublicKey(parseKeyFile(keyFile, text)).export({ format: "jwk" }).x!;
}

function parseKeyFile(keyFile: string, text: string): KeyObject {
  const bad = (detail: string, cause?: unknown) =>
    new OrdoError("ORDO_BAD_KEY_FILE", `${keyFile} is not an authority key (${detail}); move it aside to create a new key, which invalidates every token the old one signed`, { cause });
  let file: Partial<AuthorityKeyFile>;
  try {
    file = JSON.parse(text) as Partial<AuthorityKeyFile>;
  } catch (error) {
    throw bad("not JSON", error);
  }
  const jwk = file?.jwk;
  if (file?.version !== 1 || typeof jwk !== "object" || jwk === null) throw bad("expected version 1 and a jwk");
  if (jwk.kty !== "OKP" || jwk.crv !== "Ed25519" || typeof jwk.x !== "string" || typeof jwk.d !== "string") throw bad("expected an Ed25519 JWK with x and d");
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: { kty: "OKP", crv: "Ed25519", x: jwk.x, d: jwk.d }, format: "jwk" });
  } catch (error) {
    throw bad("the key does not load", error);
  }
  // A public half that does not match the private half would sign tokens nobody trusts.
  if (createPublicKey(privateKey).export({ format: "jwk" }).x !== jwk.x) throw bad("x is not the public half of d");
  return privateKey;
}

function readIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}
