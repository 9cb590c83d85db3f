import type { IncomingMessage, ServerResponse } from "node:http";
import { PROMETHEUS_CONTENT_TYPE } from "./metrics.js";
import type { SyncNode } from "./sync-node.js";

/**
 * The node's HTTP side, next to its WebSocket server on the same port:
 * `/healthz` (liveness, and whether storage is degraded), `/status` (documents, projection,
 * peers and whether we are in sync with them; to this machine only) and `/metrics`
 * (Prometheus: counts only).
 */
export async function answerHttp(node: SyncNode, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const json = (code: number, body: unknown) => {
    response.writeHead(code, { "content-type": "application/json" });
    response.end(`${JSON.stringify(body)}\n`);
  };
  try {
    // Parsed without the query: a `token` parameter must never reach a log or a reply.
    const path = new URL(request.url ?? "/", "http://node").pathname;
    if (request.method !== "GET") return json(405, { error: "method not allowed" });
    if (path === "/healthz") {
      const engine = await node.engine.status();
      const degraded = engine.damagedChunks > 0 || engine.projectionFailures > 0;
      return json(200, { status: degraded ? "degraded" : "ok", peers: node.replicator.peers().length });
    }
    if (path === "/status") {
      // It names the node's user and every peer's: for the machine itself, not the LAN.
      if (!isLoopback(request.socket.remoteAddress)) return json(403, { error: "status is served to this machine only" });
      return json(200, { ...node.status(), engine: await node.engine.status() });
    }
    if (path === "/metrics") {
      const body = await node.metrics();
      response.writeHead(200, { "content-type": PROMETHEUS_CONTENT_TYPE });
      response.end(body);
      return;
    }
    json(404, { error: "not found" });
  } catch (error) {
    if (response.headersSent) response.destroy();
    else json(500, { error: (error as Error).message });
  }
}

function isLoopback(address: string | undefined): boolean {
  return address === "127.0.0.1" || address === "::1" || address === "::ffff:127.0.0.1";
}
