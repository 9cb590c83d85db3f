import { STATUS_CODES, type IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";

/**
 * The bearer token of a WebSocket upgrade, from the first carrier present:
 * 1. `Authorization: Bearer <token>` (Node clients, our dialer);
 * 2. `Sec-WebSocket-Protocol: bearer, <token>` (browsers, which cannot set headers);
 * 3. a `token` query parameter (the stock automerge-repo client, which can set neither).
 * The request URL then holds a secret: log `safeRequestPath(request)`, never `request.url`.
 */
export function readBearerToken(request: IncomingMessage): string | undefined {
  const authorization = request.headers.authorization;
  const match = authorization === undefined ? null : /^bearer\s+(\S+)\s*$/i.exec(authorization);
  if (match?.[1] !== undefined) return match[1];

  const protocols = request.headers["sec-websocket-protocol"];
  if (typeof protocols === "string") {
    const offered = protocols.split(",").map((p) => p.trim());
    const index = offered.indexOf("bearer");
    const token = index < 0 ? undefined : offered[index + 1];
    if (token !== undefined && token.length > 0) return token;
  }

  const token = parseUrl(request)?.searchParams.get("token");
  return token === null || token === undefined || token.length === 0 ? undefined : token;
}

/** The request's path without its query string (where a token may be), for logs. */
export function safeRequestPath(request: IncomingMessage): string {
  return parseUrl(request)?.pathname.slice(0, 200) ?? "(unparseable url)";
}

/** Answers an upgrade with a plain HTTP error and a short JSON body, then drops the socket. */
export function refuseUpgrade(socket: Duplex, status: number, body: Record<string, string>): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const json = JSON.stringify(body);
  const headers = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}`,
    "Connection: close",
    "Content-Type: application/json",
    `Content-Length: ${Buffer.byteLength(json)}`,
    ...(status === 401 ? ['WWW-Authenticate: Bearer realm="ordo"'] : []),
  ];
  socket.once("finish", () => socket.destroy());
  socket.end(`${headers.join("\r\n")}\r\n\r\n${json}`);
}

function parseUrl(request: IncomingMessage): URL | undefined {
  try {
    return new URL(request.url ?? "/", "http://localhost");
  } catch {
    return undefined;
  }
}
