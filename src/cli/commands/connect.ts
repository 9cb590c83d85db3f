import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { InvalidArgumentError, Option, type Command } from "commander";
import { canvasClient } from "../../connectors/canvas/canvas-client.js";
import { canvasInstance, urlOf } from "../../connectors/canvas/canvas-mapping.js";
import type { PullResult } from "../../connectors/canvas/canvas-pull.js";
import type { PushResult } from "../../connectors/canvas/canvas-push.js";
import { readConnectorSettings, redacted, writeConnectorSettings, type CanvasSettings, type ConnectorSettings, type DiscourseSettings } from "../../connectors/connector-config.js";
import { mappedCount } from "../../connectors/connector-status.js";
import { syncCanvas, syncDiscourse } from "../../connectors/connector-sync.js";
import { askRunningNode } from "../running-node.js";
import { syncProgress } from "../sync-progress.js";
import { discourseClient } from "../../connectors/discourse/discourse-client.js";
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

/** `ordo connect canvas|discourse` and `ordo sync canvas|discourse`: point the node at a course and its forum, keep them in step. */
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

  command(connect, "discourse", "connect a Discourse category as a course's forum: checks the key against the category, then saves the settings")
    .requiredOption("--url <url>", "the Discourse forum, e.g. https://forum.school.example", httpUrl)
    .requiredOption("--api-key-file <file>", "a file holding the Discourse API key")
    .requiredOption("--username <name>", "the user the API key acts as", (value: string) => value)
    .requiredOption("--category <id>", "the Discourse category id", courseId)
    .option("--course <doc-url>", "the course whose forum it is (default: the connected Canvas course, or the only course)")
    .option("--webhook-secret-file <file>", "a file holding the secret of a Discourse webhook pointed at this node's /webhooks/discourse")
    .action(async (options: ConnectDiscourseFlags) => {
      const dataDir = resolve(options.data);
      const existing = readConnectorSettings(dataDir);
      const course = options.course ?? (await defaultCourse(options, existing));
      // Connecting the same forum again keeps its webhook secret unless a new one is given.
      const webhookSecret = options.webhookSecretFile ? readSecret(options.webhookSecretFile) : existing.discourse?.url === options.url ? existing.discourse.webhookSecret : undefined;
      const settings: DiscourseSettings = {
        url: options.url,
        apiKey: readSecret(options.apiKeyFile),
        username: options.username,
        categoryId: options.category,
        course,
        ...(webhookSecret !== undefined ? { webhookSecret } : {}),
      };
      const client = discourseClient({ url: settings.url, apiKey: () => settings.apiKey, username: settings.username, retry: { attempts: 2, throttleWaits: 2 } });
      try {
        const category = await client.request<{ category?: { name?: string } }>("GET", `/c/${encodeURIComponent(settings.categoryId)}/show.json`);
        writeConnectorSettings(dataDir, { ...existing, discourse: settings });
        printResult(options, redacted({ discourse: settings }), `connected Discourse category ${settings.categoryId} (${category.body.category?.name ?? "unnamed"}) at ${settings.url} to ${course}`);
      } catch (error) {
        throw error instanceof RemoteError ? new OrdoError(error.code, `Discourse refused: ${error.message}`) : error;
      }
    });

  command(program, "sync", "send this node's changes to a connected system, then pull its course into documents")
    .argument("<system>", "canvas or discourse", (value: string) => {
      if (value !== "canvas" && value !== "discourse") throw new InvalidArgumentError('expected "canvas" or "discourse"');
      return value;
    })
    .option("--watch", "keep pulling, every --interval")
    .addOption(new Option("--interval <interval>", "time between pulls with --watch: 30s, 5m").argParser(duration).default(duration("60s"), "60s"))
    .action(async (system: string, options: SyncFlags) => {
      // Two processes syncing one store would race each other's outbox: the running node syncs by itself.
      const running = await askRunningNode(options.data);
      if (running) throw new OrdoError("ORDO_NODE_RUNNING", `a node is running on ${resolve(options.data)} (${running.peerId}) and syncs its connectors itself, every --connector-interval; stop it to sync by hand`);
      if (system === "discourse") return runDiscourseSync(options);
      const settings = readConnectorSettings(resolve(options.data)).canvas;
      if (!settings) throw new OrdoError("ORDO_NOT_CONNECTED", "no Canvas course connected (run `ordo connect canvas` first)");
      for (;;) {
        const result = await withEngine(options, async (engine) => {
          const db = connectorDb(engine.db);
          const progress = syncProgress("canvas", await mappedCount(db, "canvas"), process.stderr, !options.json);
          const synced = await syncCanvas({ store: engine.docs, db, settings, onProgress: progress.onProgress }).finally(progress.stop);
          await engine.whenProjected();
          return synced;
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

function summary(pulled: PullResult, pushed: PushResult | null): string {
  const lines = [`pulled: ${pulled.created} created, ${pulled.updated} updated, ${pulled.unchanged} unchanged, ${pulled.deleted} deleted`];
  if (pushed) lines.unshift(`pushed: ${pushed.sent} sent, ${pushed.conflicts} conflicts, ${pushed.retrying} to retry`);
  for (const failure of pushed?.failed ?? []) lines.push(`failed: ${failure.url}: ${failure.error}`);
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

/** An https:// URL; http:// only to this machine, since every request carries the credentials. */
function httpUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError("expected an https:// URL");
  }
  if (url.protocol === "https:") return url.origin;
  if (url.protocol === "http:" && ["localhost", "127.0.0.1", "[::1]"].includes(url.hostname)) return url.origin;
  if (url.protocol === "http:") throw new InvalidArgumentError("expected https:// (http:// would send the credentials in clear; it is accepted for localhost only)");
  throw new InvalidArgumentError("expected an https:// URL");
}

function courseId(value: string): string {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError("expected a numeric Canvas course id");
  return value;
}

interface ConnectDiscourseFlags extends CommonOptions {
  url: string;
  apiKeyFile: string;
  username: string;
  category: string;
  course?: string;
  webhookSecretFile?: string;
}

/** The course a forum belongs to when not named: the connected Canvas course, else the store's only course. */
async function defaultCourse(options: CommonOptions, settings: ConnectorSettings): Promise<string> {
  if (settings.canvas) return urlOf(canvasInstance(settings.canvas.url), "course", settings.canvas.courseId)!;
  const courses = await withEngine(options, (engine) => engine.docs.records({ kind: "course" }));
  if (courses.length === 1) return `automerge:${courses[0]!.id}`;
  throw new OrdoError("ORDO_WHICH_COURSE", `this node holds ${courses.length} courses: say which one with --course <doc-url>`);
}

async function runDiscourseSync(options: SyncFlags): Promise<void> {
  const settings = readConnectorSettings(resolve(options.data)).discourse;
  if (!settings) throw new OrdoError("ORDO_NOT_CONNECTED", "no Discourse category connected (run `ordo connect discourse` first)");
  for (;;) {
    const { pushed, pulled } = await withEngine(options, async (engine) => {
      const db = connectorDb(engine.db);
      const progress = syncProgress("discourse", await mappedCount(db, "discourse"), process.stderr, !options.json);
      const synced = await syncDiscourse({ store: engine.docs, db, settings, onProgress: progress.onProgress }).finally(progress.stop);
      await engine.whenProjected();
      return synced;
    });
    printResult(options, { pushed, pulled }, `pushed: ${pushed.created} created, ${pushed.linked} linked, ${pushed.edited} edited, ${pushed.conflicts} conflicts settled, ${pushed.recovered} recovered, ${pushed.awaitingApproval} awaiting approval, ${pushed.retrying} to retry\n${summary(pulled, null)}`);
    if (!options.watch) {
      if (pulled.failed.length > 0 || pushed.failed.length > 0) process.exitCode = 1;
      return;
    }
    await new Promise((done) => setTimeout(done, options.interval));
  }
}
