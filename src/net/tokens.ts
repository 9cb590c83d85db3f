import { createPublicKey, randomBytes, sign, verify, type KeyObject } from "node:crypto";
import { ALL_COURSES, ROLES, TokenError, type Principal, type Role } from "./principal.js";

/**
 * The signed token format, version 1:
 * `ordo1.<base64url(JSON payload)>.<base64url(Ed25519 signature over "ordo1.<payload>")>`.
 * Signing the prefix too means a future format cannot be passed off as this one.
 */
export const TOKEN_PREFIX = "ordo1";

export interface TokenPayload {
  v: 1;
  /** The issuing authority's Ed25519 public key, base64url (raw 32 bytes). */
  iss: string;
  /** The user's document URL, or a node's name. */
  sub: string;
  role: Role;
  courses: string[];
  /** Seconds since the epoch. */
  iat: number;
  /** Seconds since the epoch; the token is refused from this second on. */
  exp: number;
  /** Random 16 bytes, base64url: what revocation names. */
  jti: string;
  /**
   * The holder's Ed25519 public key, base64url (raw 32 bytes, like `iss`): when present the
   * token is worth nothing without the matching private key, because every handshake asks
   * its holder to sign a fresh challenge. Required for role `node` (see `Verifier`).
   */
  cnf?: string;
}

/** A token split into its parts, its payload checked for shape but its signature not. */
export interface ParsedToken {
  payload: TokenPayload;
  /** The bytes the signature covers: `ordo1.<payload>`. */
  signed: string;
  signature: Buffer;
}

/**
 * Longer tokens are refused before any parsing: a token arrives from the network, and a
 * teacher of fifty courses with URL-long ids still fits in a few kilobytes.
 */
export const MAX_TOKEN_LENGTH = 16_384;

const PAYLOAD_KEYS = ["v", "iss", "sub", "role", "courses", "iat", "exp", "jti", "cnf"] as const;
const PUBLIC_KEY_BYTES = 32;
const SIGNATURE_BYTES = 64;
const TOKEN_ID_BYTES = 16;

/** A fresh random token id (`jti`). */
export function newTokenId(): string {
  // Never starting with "-": `ordo token revoke <id>` would read such an id as a flag.
  for (;;) {
    const id = randomBytes(TOKEN_ID_BYTES).toString("base64url");
    if (!id.startsWith("-")) return id;
  }
}

/** Whether `text` has the shape of a token id (`jti`): base64url of 16 bytes. */
export function isTokenId(text: unknown): text is string {
  return isBase64url(text, TOKEN_ID_BYTES);
}

/** Whether `text` is an Ed25519 public key as tokens carry it: base64url of 32 bytes. */
export function isPublicKey(text: unknown): text is string {
  return isBase64url(text, PUBLIC_KEY_BYTES);
}

/** The key object for a base64url public key; throws on anything that is not one. */
export function publicKeyFrom(key: string): KeyObject {
  if (!isPublicKey(key)) throw new TokenError("malformed", "not an Ed25519 public key (base64url of 32 bytes)");
  return createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: key }, format: "jwk" });
}

/**
 * Whether `signature` (base64url, 64 bytes) is `holderKey`'s Ed25519 signature over `bytes`.
 * Never throws: a malformed key or signature is simply not a valid proof.
 */
export function verifyHolderSignature(holderKey: string, bytes: Uint8Array, signature: string): boolean {
  if (!isPublicKey(holderKey) || !isBase64url(signature, SIGNATURE_BYTES)) return false;
  try {
    return verify(null, bytes, publicKeyFrom(holderKey), Buffer.from(signature, "base64url"));
  } catch {
    return false;
  }
}

/** Signs `payload` with the issuer's private key. The payload is checked first, as a verifier would. */
export function signToken(payload: TokenPayload, privateKey: KeyObject): string {
  checkPayload(payload);
  const signed = `${TOKEN_PREFIX}.${Buffer.from(JSON.stringify(payload)).toString("base64url")}`;
  const token = `${signed}.${sign(null, Buffer.from(signed, "ascii"), privateKey).toString("base64url")}`;
  if (token.length > MAX_TOKEN_LENGTH) throw new TokenError("malformed", `token longer than ${MAX_TOKEN_LENGTH} characters (too many courses?)`);
  return token;
}

/** Splits a token and checks every payload field; the signature is NOT checked. Throws `TokenError("malformed")`. */
export function parseToken(token: unknown): ParsedToken {
  if (typeof token !== "string") throw malformed("token is not a string");
  if (token.length > MAX_TOKEN_LENGTH) throw malformed(`token longer than ${MAX_TOKEN_LENGTH} characters`);
  const parts = token.split(".");
  if (parts.length !== 3) throw malformed(`expected 3 dot-separated parts, found ${parts.length}`);
  const [prefix, body, signature] = parts as [string, string, string];
  if (prefix !== TOKEN_PREFIX) throw malformed(`not an ${TOKEN_PREFIX} token`);
  if (!isBase64url(body)) throw malformed("payload is not base64url");
  if (!isBase64url(signature, SIGNATURE_BYTES)) throw malformed("signature is not 64 bytes of base64url");
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(body, "base64url").toString("utf8"));
  } catch (error) {
    throw new TokenError("malformed", "token is malformed: payload is not JSON", { cause: error });
  }
  checkPayload(payload);
  return { payload, signed: `${prefix}.${body}`, signature: Buffer.from(signature, "base64url") };
}

/** The payload of a token, checked for shape only: NOT verified, so nothing in it is to be believed yet. */
export function decodeToken(token: string): TokenPayload {
  return parseToken(token).payload;
}

/**
 * The issuer a token claims, read WITHOUT verifying the signature or anything else. Use it
 * to learn which key to trust (the issuer of this node's own token, say), never to decide
 * whom a token speaks for.
 */
export function issuerOf(token: string): string {
  return decodeToken(token).iss;
}

/** Whether the signature was made by the key the token names as its issuer. */
export function hasValidSignature(parsed: ParsedToken, issuerKey: KeyObject = publicKeyFrom(parsed.payload.iss)): boolean {
  try {
    return verify(null, Buffer.from(parsed.signed, "ascii"), issuerKey, parsed.signature);
  } catch {
    return false;
  }
}

/** The principal a (verified) payload names. */
export function principalOf(payload: TokenPayload): Principal {
  return {
    user: payload.sub,
    role: payload.role,
    courses: Object.freeze([...payload.courses]),
    tokenId: payload.jti,
    issuer: payload.iss,
    expiresAt: payload.exp * 1000,
    ...(payload.cnf === undefined ? {} : { holderKey: payload.cnf }),
  };
}

function checkPayload(value: unknown): asserts value is TokenPayload {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw malformed("payload is not an object");
  const p = value as Record<string, unknown>;
  // Unknown fields are refused: a field this version does not understand may be one that restricts the grant.
  const extra = Object.keys(p).filter((key) => !(PAYLOAD_KEYS as readonly string[]).includes(key));
  if (extra.length > 0) throw malformed(`unknown payload field ${extra.join(", ")}`);
  if (p.v !== 1) throw malformed("payload version is not 1");
  if (!isPublicKey(p.iss)) throw malformed("iss is not an Ed25519 public key");
  if (typeof p.sub !== "string" || p.sub.length === 0) throw malformed("sub is not a non-empty string");
  if (typeof p.role !== "string" || !(ROLES as readonly string[]).includes(p.role)) throw malformed("role is not a known role");
  if (!Array.isArray(p.courses) || p.courses.length === 0) throw malformed("courses is not a non-empty list");
  if (!p.courses.every((c) => typeof c === "string" && c.length > 0)) throw malformed("courses holds something other than non-empty strings");
  if (p.courses.includes(ALL_COURSES) && p.role !== "node") throw malformed(`only role node may hold "${ALL_COURSES}"`);
  if (!isSeconds(p.iat)) throw malformed("iat is not a whole number of seconds");
  if (!isSeconds(p.exp)) throw malformed("exp is not a whole number of seconds");
  if (p.exp <= p.iat) throw malformed("exp is not after iat");
  if (!isTokenId(p.jti)) throw malformed("jti is not 16 bytes of base64url");
  // `"cnf" in p`, not `p.cnf !== undefined`: a JSON null or any other value is refused, not read as absent.
  if ("cnf" in p && !isPublicKey(p.cnf)) throw malformed("cnf is not an Ed25519 public key");
}

function isSeconds(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

/**
 * Strict base64url: only the URL alphabet, no padding, and canonical (Node's decoder
 * silently skips stray characters, so the text is re-encoded and compared).
 */
function isBase64url(text: unknown, bytes?: number): text is string {
  if (typeof text !== "string" || !/^[A-Za-z0-9_-]*$/.test(text)) return false;
  const decoded = Buffer.from(text, "base64url");
  if (decoded.toString("base64url") !== text) return false;
  return bytes === undefined || decoded.length === bytes;
}

function malformed(detail: string): TokenError {
  return new TokenError("malformed", `token is malformed: ${detail}`);
}
