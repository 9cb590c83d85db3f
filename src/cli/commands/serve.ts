import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { InvalidArgumentError, Option, type Command } from "commander";
import { seedDemoCourse } from "../../demo/demo-course.js";
import { SyncNode, type SyncNodeOptions } from "../../node/sync-node.js";
import { OrdoError } from "../../util/errors.js";
import { command, serverLogger, type CommonOptions } from "../cli-kit.js";
import { wholeNumber } from "./demo.js";
import { duration } from "./token.js";

interface NodeFlags extends CommonOptions {
  port: number;
  host: string;
  tokenFile?: string;
  trust: string[];
  tlsCert?: string;
  tlsKey?: string;
  ca?: string;
}

interface ServeFlags extends NodeFlags {
  seedDemo?: boolean;
  relay?: string;
  discovery: boolean;
  interface?: string;
  connectorInterval: number;
}

/** Where a node listens unless told otherwise. */
export const DEFAULT_PORT = 4180;

/** The file a running node leaves in its data directory, so `ordo status` can ask it how sync stands. */
export const NODE_URL_FILE = "node-url";

export function registerServe(program: Command): void {
  withNodeFlags(command(program, "serve", "run a classroom node: WebSocket sync for peers, LAN discovery, an optional relay, connected Canvas and Discourse kept in step; /healthz, /status, /metrics, /webhooks/discourse"))
    .option("--relay <url>", "keep in sync with this relay (ws:// or wss://)", relayUrl)
    .option("--no-discovery", "do not look for classmates on the LAN (mDNS)")
    .option("--interface <address>", "the network interface (IPv4 address) LAN discovery uses")
    .option("--seed-demo", "create the data directory if needed and seed the demo course when the store is empty")
    .addOption(
      new Option("--connector-interval <interval>", "time between syncs with connected Canvas and Discourse (ordo connect): 30s, 5m; 0 syncs only on webhooks")
        .argParser((value: string) => (value === "0" ? 0 : duration(value)))
        .default(duration("60s"), "60s"),
    )
    .action(async (options: ServeFlags) => {
      await runNode(options, {
        mode: "node",
        create: options.seedDemo ?? false,
        relay: options.relay,
        discovery: options.discovery ? { interface: options.interface } : false,
        connectors: { intervalMs: options.connectorInterval },
      });
    });
}

export function registerRelay(program: Command): void {
  withNodeFlags(command(program, "relay", "run a relay: syncs many courses for nodes that never meet; /healthz, /status, /metrics")).action(async (options: NodeFlags) => {
    await runNode(options, { mode: "relay", create: true, discovery: false });
  });
}

function withNodeFlags(cmd: Command): Command {
  return cmd
    .option("--port <port>", "port for WebSocket sync and HTTP (0 picks a free one)", wholeNumber, DEFAULT_PORT)
    .option("--host <host>", "interface to listen on", "127.0.0.1")
    .option("--token-file <file>", "the token this node presents (without one, the node signs its own as a course authority)")
    .option("--trust <key>", "also accept tokens signed by this authority key (repeatable)", (key: string, keys: string[]) => [...keys, key], [] as string[])
    .option("--tls-cert <file>", "serve wss:// and https:// with this certificate (PEM; with --tls-key)")
    .option("--tls-key <file>", "the private key of --tls-cert (PEM)")
    .option("--ca <file>", "also accept wss:// servers whose certificate this authority signed (PEM)");
}

async function runNode(options: NodeFlags & { seedDemo?: boolean }, extra: Pick<SyncNodeOptions, "mode" | "create" | "relay" | "discovery" | "connectors">): Promise<void> {
  const logger = serverLogger();
  if (Boolean(options.tlsCert) !== Boolean(options.tlsKey)) throw new OrdoError("ORDO_BAD_FLAGS", "--tls-cert and --tls-key go together");
  const tls = options.tlsCert && options.tlsKey ? { cert: readFlagFile(options.tlsCert, "certificate"), key: readFlagFile(options.tlsKey, "key") } : undefined;
  const node = await SyncNode.start({
    ...extra,
    dataDir: options.data,
    listen: { port: options.port, host: options.host, tls },
    ca: options.ca ? readFlagFile(options.ca, "certificate authority") : undefined,
    tokenFile: options.tokenFile,
    trust: options.trust,
    logger,
  });
  if (options.seedDemo && (await node.engine.status()).documents === 0) {
    const demo = await seedDemoCourse(node.engine.docs);
    await node.engine.whenProjected();
    logger.info({ course: demo.course, documents: demo.documents }, "seeded the demo course");
  }
  const url = node.url!;
  const httpUrl = url.replace(/^ws/, "http");
  const urlFile = join(resolve(options.data), NODE_URL_FILE);
  writeFileSync(urlFile, `${httpUrl}\n`);
  const where = { url, http: httpUrl, dataDir: node.engine.dataDir, peerId: node.peerId, mode: node.mode, authority: node.identity.authority?.publicKey ?? null };
  process.stdout.write(options.json ? `${JSON.stringify({ listening: where })}\n` : `ordo: ${node.mode} on ${url} (data: ${where.dataDir})\n`);
  stopOnSignal(node, urlFile);
}

function readFlagFile(file: string, what: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (cause) {
    throw new OrdoError("ORDO_BAD_FLAGS", `cannot read the ${what} file ${file}: ${(cause as Error).message}`, { cause });
  }
}

function relayUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError("expected a ws:// or wss:// URL");
  }
  if (url.protocol !== "ws:" && url.protocol !== "wss:") throw new InvalidArgumentError("expected a ws:// or wss:// URL");
  return value;
}

function stopOnSignal(node: SyncNode, urlFile: string): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`ordo: ${signal}, stopping\n`);
    rmSync(urlFile, { force: true });
    node.close().then(
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
