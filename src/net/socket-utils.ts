import type { RawData } from "ws";

// Small helpers shared by the link and the handshake: frames, close codes, errors.

/** A close code for our own failures (RFC 6455 "internal error"); CloseCode covers the remote's. */
export const INTERNAL_ERROR = 1011;

/** Frames arrive as one Buffer by default; other binaryTypes are handled for safety. */
export function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}

/** Codes a close frame may carry (RFC 6455 section 7.4); others end the socket without one. */
export function isSendableCode(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
}

/** A close reason is at most 123 bytes of UTF-8. */
export function truncateReason(reason: string): string {
  let text = reason;
  while (Buffer.byteLength(text) > 123) text = text.slice(0, -1);
  return text;
}

/** ws marks its protocol errors with the close code it sent (a symbol it does not export). */
export function statusCodeOf(error: Error): number {
  const symbol = Object.getOwnPropertySymbols(error).find((s) => s.description === "status-code");
  const code = symbol === undefined ? undefined : (error as unknown as Record<symbol, unknown>)[symbol];
  return typeof code === "number" ? code : 1006;
}

export function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
