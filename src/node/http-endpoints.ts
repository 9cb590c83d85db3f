import type { IncomingMessage, ServerResponse } from "node:http";
import { OrdoError } from "../util/errors.js";
import { PROMETHEUS_CONTENT_TYPE } from "./metrics.js";
import type { SyncNode } from "./sync-node.js";
import { connectorDb } from "../connectors/connector-tables.js";
import { connectorStatus, unsettledEntities } from "../connectors/connector-status.js";

/**
 * The largest webhook body read, in bytes. A Discourse post event is a few KiB even for a long
 * post (its raw and cooked text); anything past this is not Discourse, and is not buffered.
 */
export const DEFAULT_WEBHOOK_BODY_LIMIT = 1024 * 1024;

type Reply = (code: number, body: unknown) => void;

/**
 * The node's HTTP side, next to its WebSocket server on the same port:
 * `/healthz` (liveness, and whether storage is degraded), `/status` (documents, projection,
 * peers and whether we are in sync with them; to this machine only), `/metrics`
 * (Prometheus: counts only) and `POST /webhooks/discourse` (a connected forum's webhooks).
 */
export async function answerHttp(node: SyncNode, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const json: Reply = (code, body) => {
    response.writeHead(code, { "content-type": "application/json" });
    response.end(`${JSON.stringify(body)}\n`);
  };
  try {
    // Parsed without the query: a `token` parameter must never reach a log or a reply.
    const path = new URL(request.url ?? "/", "http://node").pathname;
    if (path === "/webhooks/discourse") return await answerDiscourseWebhook(node, request, response, json);
    if (request.method !== "GET") return json(405, { error: "method not allowed" });
    if (path === "/healthz") {
      const engine = await node.engine.status();
      const degraded = engine.writesFailing || engine.damagedChunks > 0 || engine.projectionFailing;
      return json(200, { status: degraded ? "degraded" : "ok", peers: node.replicator.peers().length });
    }
    if (path === "/status") {
      // It names the node's user and every peer's: for the machine itself, not the LAN.
      if (!isLoopback(request.socket.remoteAddress)) return json(403, { error: "status is served to this machine only" });
      const db = connectorDb(node.engine.db);
      const connectors = node.connectors ? { connectors: await connectorStatus(db), unsettled: await unsettledEntities(db) } : {};
      return json(200, { ...node.status(), engine: await node.engine.status(), ...connectors });
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
    else if (error instanceof OrdoError && error.code === "ORDO_STOPPING") json(503, { error: error.message });
    else json(500, { error: (error as Error).message });
  }
}

/**
 * A Discourse webhook delivery: 404 without a Discourse connector, 413 past the size limit,
 * 401 unless signed with the configured secret, 400 when signed but malformed, and 200
 * otherwise (`duplicate: true` for an event id already taken). The signature covers the raw
 * bytes, so the body is read as bytes and checked before anything parses it.
 */
async function answerDiscourseWebhook(node: SyncNode, request: IncomingMessage, response: ServerResponse, json: Reply): Promise<void> {
  if (request.method !== "POST") {
    response.setHeader("allow", "POST");
    return json(405, { error: "method not allowed" });
  }
  const connectors = node.connectors;
  if (!connectors?.takesDiscourseWebhooks) return json(404, { error: "no Discourse forum is connected to this node" });
  const body = await readBody(request, DEFAULT_WEBHOOK_BODY_LIMIT);
  if (body === null) {
    // The rest of the body is not read: the connection closes after this answer.
    response.setHeader("connection", "close");
    return json(413, { error: `webhook bodies are limited to ${DEFAULT_WEBHOOK_BODY_LIMIT} bytes` });
  }
  const receipt = await connectors.receiveDiscourseWebhook(request.headers, body);
  if (receipt.outcome === "refused") return json(receipt.problem === "signature" ? 401 : 400, { error: receipt.message });
  return json(200, receipt.outcome === "duplicate" ? { ok: true, duplicate: true } : { ok: true });
}

/** The request body, or null once it passes `limit` bytes (declared or sent). */
function readBody(request: IncomingMessage, limit: number): Promise<Buffer | null> {
  const declared = Number(request.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit) return Promise.resolve(null);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    request.on("data", (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      if (size <= limit) return void chunks.push(chunk);
      over = true;
      chunks.length = 0;
      resolve(null);
    });
    request.on("end", () => {
      if (!over) resolve(Buffer.concat(chunks));
    });
    request.on("error", reject);
  });
}

function isLoopback(address: string | undefined): boolean {
  return address === "127.0.0.1" || address === "::1" || address === "::ffff:127.0.0.1";
}
