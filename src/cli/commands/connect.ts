import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { InvalidArgumentError, Option, type Command } from "commander";
import { canvasClient } from "../../connectors/canvas/canvas-client.js";
import { canvasInstance } from "../../connectors/canvas/canvas-mapping.js";
import { pullCanvasCourse, type PullResult } from "../../connectors/canvas/canvas-pull.js";
import { pushCanvasChanges, type PushResult } from "../../connectors/canvas/canvas-push.js";
import { Outbox } from "../../connectors/outbox.js";
import { readConnectorSettings, redacted, writeConnectorSettings, type CanvasSettings } from "../../connectors/connector-config.js";
import { connectorDb } from "../../connectors/connector-tables.js";
import { RemoteError } from "../../connectors/http-client.js";
import { OrdoError } from "../../util/errors.js";
import { command, printResult, withEngine, type CommonOptions } from "../cli-kit.js";
import { duration } from "./token.js";

interface ConnectCanvasFlags extends CommonOptions {
  url: string;
  tokenFile: string;
  course: string;
}

interface SyncFlags extends CommonOptions {
  watch?: boolean;
  interval: number;
}

/** `ordo connect canvas`, `ordo sync canvas` and `ordo conflicts`: point the node at a Canvas course, keep it in step, see what clashed. */
export function registerConnect(program: Command): void {
  const connect = program.command("connect").description("point this node at a Canvas course (settings and credentials stay in this node, mode 0600)");
  command(connect, "canvas", "connect a Canvas course: checks the token against the course, then saves the settings")
    .requiredOption("--url <url>", "the Canvas instance, e.g. https://school.instructure.com", httpUrl)
    .requiredOption("--token-file <file>", "a file holding the Canvas access token")
    .requiredOption("--course <id>", "the Canvas course id", courseId)
    .action(async (options: ConnectCanvasFlags) => {
      const settings: CanvasSettings = { url: options.url, token: readSecret(options.tokenFile), courseId: options.course };
      const client = canvasClient({ url: settings.url, token: () => settings.token, retry: { attempts: 2, throttleWaits: 2 } });
      try {
        const course = await client.request<{ name?: string }>("GET", `/api/v1/courses/${encodeURIComponent(settings.courseId)}`);
        writeConnectorSettings(resolve(options.data), { ...readConnectorSettings(resolve(options.data)), canvas: settings });
        printResult(options, redacted({ canvas: settings }), `connected Canvas course ${settings.courseId} (${course.body.name ?? "unnamed"}) at ${settings.url}`);
      } catch (error) {
        throw error instanceof RemoteError ? new OrdoError(error.code, `Canvas refused: ${error.message}`) : error;
      }
    });

  command(program, "sync", "send this node's changes to a connected system, then pull its course into documents")
    .argument("<system>", "canvas", (value: string) => {
      if (value !== "canvas") throw new InvalidArgumentError('expected "canvas"');
      return value;
    })
    .option("--watch", "keep pulling, every --interval")
    .addOption(new Option("--interval <interval>", "time between pulls with --watch: 30s, 5m").argParser(duration).default(duration("60s"), "60s"))
    .action(async (_system: string, options: SyncFlags) => {
      const settings = readConnectorSettings(resolve(options.data)).canvas;
      if (!settings) throw new OrdoError("ORDO_NOT_CONNECTED", "no Canvas course connected (run `ordo connect canvas` first)");
      for (;;) {
        const result = await withEngine(options, async (engine) => {
          const client = canvasClient({ url: settings.url, token: () => settings.token });
          const db = connectorDb(engine.db);
          // Local work first: a pull after it then sees Canvas as it is with that work in it.
          const pushed = await pushCanvasChanges({ client, store: engine.docs, db, outbox: new Outbox(db), courseId: settings.courseId });
          const pulled = await pullCanvasCourse({ client, instance: canvasInstance(settings.url), store: engine.docs, db, courseId: settings.courseId });
          await engine.whenProjected();
          return { pushed, pulled };
        });
        printResult(options, result, summary(result.pulled, result.pushed));
        if (!options.watch) {
          if (result.pulled.failed.length > 0 || result.pushed.failed.length > 0) process.exitCode = 1;
          return;
        }
        await new Promise((done) => setTimeout(done, options.interval));
      }
    });
}

function summary(pulled: PullResult, pushed: PushResult): string {
  const lines = [
    `pushed: ${pushed.sent} sent, ${pushed.conflicts} conflicts, ${pushed.retrying} to retry`,
    `pulled: ${pulled.created} created, ${pulled.updated} updated, ${pulled.unchanged} unchanged, ${pulled.deleted} deleted`,
  ];
  for (const failure of pushed.failed) lines.push(`failed: ${failure.url}: ${failure.error}`);
  for (const failure of pulled.failed) lines.push(`failed: ${failure.what}: ${failure.error}`);
  return lines.join("\n");
}

function readSecret(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8").trim();
  } catch (cause) {
    throw new OrdoError("ORDO_NO_TOKEN", `cannot read ${file}: ${(cause as Error).message}`, { cause });
  }
  if (text.length === 0) throw new OrdoError("ORDO_NO_TOKEN", `${file} is empty`);
  return text;
}

function httpUrl(value: string): string {
  try {
    const url = new URL(value);
    if (url.protocol === "http:" || url.protocol === "https:") return url.origin;
  } catch {
    // Refused below.
  }
  throw new InvalidArgumentError("expected an http:// or https:// URL");
}

function courseId(value: string): string {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError("expected a numeric Canvas course id");
  return value;
}
