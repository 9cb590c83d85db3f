import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { canvasClient } from "../../src/connectors/canvas/canvas-client.js";
import { discourseClient } from "../../src/connectors/discourse/discourse-client.js";
import { nextLink, RemoteError, type RemoteProblem } from "../../src/connectors/http-client.js";

type Handler = (request: IncomingMessage, response: ServerResponse, body: string) => void;

const servers: Server[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) server.close();
});

/** A loopback server answering each request with the next scripted handler (the last one repeats). */
async function scripted(...handlers: Handler[]): Promise<{ url: string; requests: Array<{ url: string; headers: IncomingMessage["headers"]; body: string }> }> {
  const requests: Array<{ url: string; headers: IncomingMessage["headers"]; body: string }> = [];
  const server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => (body += chunk.toString()));
    request.on("end", () => {
      requests.push({ url: request.url ?? "", headers: request.headers, body });
      const handler = handlers[Math.min(requests.length - 1, handlers.length - 1)]!;
      handler(request, response, body);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, requests };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}): Handler => (_q, response) => {
  response.writeHead(status, { "content-type": "application/json", ...headers });
  response.end(JSON.stringify(body));
};
const text = (status: number, body: string, headers: Record<string, string> = {}): Handler => (_q, response) => {
  response.writeHead(status, { "content-type": "text/plain", ...headers });
  response.end(body);
};

const waits: number[] = [];
const noSleep = async (ms: number) => {
  waits.push(ms);
};
const canvas = (url: string) => canvasClient({ url, token: () => "secret-token", sleep: noSleep, random: () => 0.5 });

async function problemOf(call: Promise<unknown>): Promise<RemoteProblem> {
  try {
    await call;
  } catch (error) {
    if (error instanceof RemoteError) return error.problem;
    throw error;
  }
  throw new Error("expected a RemoteError");
}

describe("the connectors' HTTP client", () => {
  it("follows only rel=next, whatever the page values, through short and empty pages", async () => {
    let base = "";
    const server = await scripted(
      (_q, response) => {
        response.writeHead(200, { "content-type": "application/json", Link: `<${base}/items?page=bookmark:WzEwXQ&per_page=100>; rel="next", <${base}/items?page=first>; rel="first"` });
        response.end(JSON.stringify([{ id: "1" }, { id: "2" }]));
      },
      (_q, response) => {
        // A page emptied by filtering that still has a next one; the header name in other case.
        response.writeHead(200, { "content-type": "application/json", LINK: `<${base}/items?page=3>; rel="current", <${base}/items?page=4>; REL="next"` });
        response.end("[]");
      },
      json(200, [{ id: "3" }]),
    );
    base = server.url;
    const ids: string[] = [];
    for await (const page of canvas(server.url).pages<{ id: string }>("/items")) ids.push(...page.map((item) => item.id));
    expect(ids).toEqual(["1", "2", "3"]);
    expect(server.requests[0]!.url).toContain("per_page=100");
    expect(server.requests[1]!.url).toContain("bookmark:WzEwXQ");
    expect(server.requests[0]!.headers.authorization).toBe("Bearer secret-token");
    expect(server.requests[0]!.headers.accept).toBe("application/json+canvas-string-ids");
  });

  it("refuses a next link to another origin, sending it nothing, after the pages of its own", async () => {
    const elsewhere = await scripted(json(200, [{ id: "stolen" }]));
    const server = await scripted(
      // A relative link stays on the client's origin.
      json(200, [{ id: "1" }], { Link: `</items?page=2&per_page=100>; rel="next"` }),
      json(200, [{ id: "2" }], { Link: `<${elsewhere.url}/items?page=3>; rel="next"` }),
    );
    const ids: string[] = [];
    const listing = (async () => {
      for await (const page of canvas(server.url).pages<{ id: string }>("/items")) ids.push(...page.map((item) => item.id));
    })();
    const error = await listing.then(
      () => null,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(RemoteError);
    expect((error as RemoteError).problem).toEqual({ kind: "invalid", status: 200 });
    expect((error as RemoteError).message).toContain(`leads to ${elsewhere.url}`);
    expect(ids).toEqual(["1", "2"]);
    expect(server.requests.map((r) => r.url)).toEqual(["/items?per_page=100", "/items?page=2&per_page=100"]);
    expect(elsewhere.requests).toEqual([]);
  });

  it("waits out Canvas's 403 throttle and its 5xx, then succeeds", async () => {
    waits.length = 0;
    const server = await scripted(text(403, "403 Forbidden (Rate Limit Exceeded)", { "X-Rate-Limit-Remaining": "0.0" }), text(503, "busy"), json(200, { ok: true }));
    const response = await canvas(server.url).request<{ ok: boolean }>("GET", "/api/v1/courses/1");
    expect(response.body).toEqual({ ok: true });
    expect(server.requests).toHaveLength(3);
    expect(waits).toHaveLength(2);
  });

  it("tells a bad token from no permission, and a deleted object, without retrying", async () => {
    const bad = await scripted(json(401, { errors: [{ message: "Invalid access token." }] }, { "WWW-Authenticate": 'Bearer realm="canvas-lms"' }));
    expect(await problemOf(canvas(bad.url).request("GET", "/x"))).toEqual({ kind: "unauthenticated" });
    const denied = await scripted(json(401, { status: "unauthorized", errors: [{ message: "user not authorized to perform that action" }] }));
    expect(await problemOf(canvas(denied.url).request("GET", "/x"))).toEqual({ kind: "forbidden" });
    const gone = await scripted(json(404, { errors: [{ message: "The specified resource does not exist." }] }));
    expect(await problemOf(canvas(gone.url).request("GET", "/x"))).toEqual({ kind: "not-found" });
    for (const server of [bad, denied, gone]) expect(server.requests).toHaveLength(1);
  });

  it("gives up on a server that keeps failing, and on a body that is not JSON", async () => {
    const failing = await scripted(text(500, "oops"));
    expect(await problemOf(canvas(failing.url).request("GET", "/x"))).toEqual({ kind: "server", status: 500 });
    expect(failing.requests).toHaveLength(5);
    const broken = await scripted(text(200, "<html>maintenance</html>"));
    expect(await problemOf(canvas(broken.url).request("GET", "/x"))).toEqual({ kind: "invalid", status: 200 });
  });

  it("waits as long as Discourse says, from Retry-After or extras.wait_seconds", async () => {
    waits.length = 0;
    const server = await scripted(
      json(429, { errors: ["Slow down"], error_type: "rate_limit", extras: { wait_seconds: 7 } }),
      text(429, "Too many requests", { "Retry-After": "3" }),
      json(200, { id: 1 }),
    );
    const client = discourseClient({ url: server.url, apiKey: () => "k", username: "system", sleep: noSleep });
    expect((await client.request<{ id: number }>("POST", "/posts.json", { json: { raw: "hello" } })).body).toEqual({ id: 1 });
    expect(waits).toEqual([7000, 3000]);
    expect(server.requests[0]!.headers["api-key"]).toBe("k");
    expect(server.requests[0]!.headers["api-username"]).toBe("system");
    expect(JSON.parse(server.requests[0]!.body)).toEqual({ raw: "hello" });
  });

  it("sends one request at a time", async () => {
    let open = 0;
    let most = 0;
    const server = await scripted((_q, response) => {
      open++;
      most = Math.max(most, open);
      setTimeout(() => {
        open--;
        response.writeHead(200, { "content-type": "application/json" });
        response.end("{}");
      }, 20);
    });
    const client = canvas(server.url);
    await Promise.all([1, 2, 3, 4].map(() => client.request("GET", "/x")));
    expect(most).toBe(1);
  });
});

describe("nextLink", () => {
  it("finds rel=next among several relations, and nothing when there is none", () => {
    expect(nextLink('<https://x/a?page=2>; rel="next", <https://x/a?page=1>; rel="first"')).toBe("https://x/a?page=2");
    expect(nextLink('<https://x/a?page=1>; rel="current"')).toBeNull();
    expect(nextLink(null)).toBeNull();
  });
});
