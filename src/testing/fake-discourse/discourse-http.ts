import type { IncomingMessage, ServerResponse } from "node:http";

/** A parsed request body or query: nested objects and arrays, values as strings (or JSON values). */
export type Params = Record<string, unknown>;

/**
 * Turns `a[b]=1&c[]=2&c[]=3` into `{a:{b:"1"},c:["2","3"]}`, the Rails bracket nesting Discourse
 * accepts in forms and query strings.
 */
export function parseNested(search: URLSearchParams): Params {
  const out: Params = {};
  for (const [key, value] of search) {
    const parts = key.replace(/\]/g, "").split("[");
    let node: Params = out;
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i] ?? "";
      const last = i === parts.length - 1;
      const nextIsList = parts[i + 1] === "";
      if (last) {
        if (part === "" && Array.isArray(node)) (node as unknown[]).push(value);
        else node[part] = value;
        break;
      }
      if (nextIsList && i + 1 === parts.length - 1) {
        const list = Array.isArray(node[part]) ? (node[part] as unknown[]) : [];
        list.push(value);
        node[part] = list;
        break;
      }
      const child = node[part];
      node = typeof child === "object" && child !== null ? (child as Params) : (node[part] = {});
    }
  }
  return out;
}

export async function readBody(req: IncomingMessage): Promise<Params> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString("utf8");
  if (text === "") return {};
  const type = req.headers["content-type"] ?? "";
  if (type.includes("application/json")) {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === "object" && parsed !== null ? (parsed as Params) : {};
  }
  return parseNested(new URLSearchParams(text));
}

/** A reply from a route: JSON, an empty 200 (successful deletes), or plain text. */
export type RouteReply =
  | { status: number; json: unknown; headers?: Record<string, string> }
  | { status: number; text: string; contentType: string };

export function sendReply(res: ServerResponse, reply: RouteReply): void {
  if ("json" in reply) {
    res.writeHead(reply.status, { "Content-Type": "application/json; charset=utf-8", ...reply.headers });
    res.end(JSON.stringify(reply.json));
    return;
  }
  res.writeHead(reply.status, reply.text === "" ? {} : { "Content-Type": reply.contentType });
  res.end(reply.text);
}

/** `{"errors":[...],"error_type":...}`, the one error shape of Discourse (§2.3). */
export function errorReply(status: number, errors: string[], errorType?: string, extras?: Params): RouteReply {
  const json: Params = { errors };
  if (errorType !== undefined) json.error_type = errorType;
  if (extras !== undefined) json.extras = extras;
  return { status, json };
}

export const NOT_FOUND_MESSAGE = "The requested URL or resource could not be found.";

export function notFoundReply(withExtras = false): RouteReply {
  return errorReply(404, [NOT_FOUND_MESSAGE], "not_found", withExtras ? { title: "Page Not Found", html: "<div class=\"page-not-found\"></div>", group: null } : undefined);
}

export function str(value: unknown): string | undefined {
  return typeof value === "string" ? value : typeof value === "number" ? String(value) : undefined;
}

export function int(value: unknown): number | undefined {
  const text = str(value);
  if (text === undefined || !/^-?\d+$/.test(text.trim())) return undefined;
  return Number(text);
}
