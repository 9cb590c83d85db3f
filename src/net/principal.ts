import { OrdoError } from "../util/errors.js";

/**
 * Who is at the other end of a connection, as a verified token says.
 * - `teacher`, `ta`: read and write everything in their courses;
 * - `student`: published course content, their own submissions, posts and grades;
 * - `observer`: read only;
 * - `node`: a relay or a course authority's own node, which forwards everyone's changes
 *   (it enforces the rules above on what it accepts) and may use `*` for every course.
 */
export type Role = "teacher" | "ta" | "student" | "observer" | "node";

export const ROLES: readonly Role[] = ["teacher", "ta", "student", "observer", "node"];

/** Every course, in a `node` principal's `courses`. */
export const ALL_COURSES = "*";

export interface Principal {
  /** A user document URL, or a node's name for role `node`. */
  user: string;
  role: Role;
  /** Course document URLs the token grants (`*` for every course: nodes only). */
  courses: readonly string[];
  /** The token's id (`jti`), what revocation names. */
  tokenId: string;
  /** The issuing authority's Ed25519 public key, base64url (raw 32 bytes). */
  issuer: string;
  /** Milliseconds since the epoch. */
  expiresAt: number;
  /**
   * The key the token is bound to (its `cnf` claim), base64url: the connection that presents
   * the token must prove it holds the private half. Absent for a bearer token.
   */
  holderKey?: string;
}

/**
 * Why a token was refused. `unbound`: a `node` token that names no holder key, so anyone
 * who ever saw it could present it; node rights are only granted to a key-bound token.
 */
export type TokenProblem = "malformed" | "forged" | "untrusted" | "expired" | "revoked" | "unbound";

export class TokenError extends OrdoError {
  constructor(
    readonly problem: TokenProblem,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`ORDO_TOKEN_${problem.toUpperCase()}`, message, options);
    this.name = "TokenError";
  }
}

/** Checks a token's signature, issuer, expiry and revocation. */
export interface TokenVerifier {
  /** The principal the token names; throws `TokenError` otherwise. `now` is in milliseconds. */
  verify(token: string, now?: number): Principal;
}
