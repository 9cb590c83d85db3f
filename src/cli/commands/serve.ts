import { createServer, type Server } from "node:http";
import type { Command } from "commander";
import { seedDemoCourse } from "../../demo/demo-course.js";
import type { Engine } from "../../engine.js";
import { command, openEngine, serverLogger, type CommonOptions } from "../cli-kit.js";
import { wholeNumber } from "./demo.js";

interface ServeFlags extends CommonOptions {
  port: number;
  host: string;
  seedDemo?: boolean;
}

/** Where a node listens unless told otherwise. */
export const DEFAULT_PORT = 4180;

export function registerServe(program: Command): void {
  command(program, "serve", "run the node: keeps its documents and projection, answers /healthz and /status")
    .option("--port <port>", "HTTP port (0 picks a free one)", wholeNumber, DEFAULT_PORT)
    .option("--host <host>", "interface to listen on", "127.0.0.1")
    .option("--seed-demo", "create the data directory if needed and seed the demo course when the store is empty")
    .action(async (options: ServeFlags) => {
      const logger = serverLogger();
      const engine = await openEngine(options, { create: options.seedDemo ?? false, logger });
      if (options.seedDemo && (await engine.status()).documents === 0) {
        const demo = await seedDemoCourse(engine.docs);
        await engine.whenProjected();
        logger.info({ course: demo.course, documents: demo.documents }, "seeded the demo course");
      }
      const server = createServer((request, response) => void answer(engine, request.url ?? "/", response));
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(options.port, options.host, resolve);
      });
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : options.port;
      const where = { url: `http://${options.host}:${port}`, dataDir: engine.dataDir };
      process.stdout.write(options.json ? `${JSON.stringify({ listening: where })}\n` : `ordo: node on ${where.url} (data: ${where.dataDir})\n`);
      stopOnSignal(server, engine);
    });
}

async function answer(engine: Engine, url: string, response: import("node:http").ServerResponse): Promise<void> {
  const send = (code: number, body: unknown) => {
    response.writeHead(code, { "content-type": "application/json" });
    response.end(`${JSON.stringify(body)}\n`);
  };
  try {
    const path = new URL(url, "http://node").pathname;
    if (path === "/healthz") send(200, { status: "ok" });
    else if (path === "/status") send(200, await engine.status());
    else send(404, { error: "not found" });
  } catch (error) {
    send(500, { error: (error as Error).message });
  }
}

function stopOnSignal(server: Server, engine: Engine): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`ordo: ${signal}, stopping\n`);
    server.close();
    server.closeAllConnections();
    engine.close().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`ordo: ${(error as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.once("SIGINT", () => stop("SIGINT"));
  process.once("SIGTERM", () => stop("SIGTERM"));
}
