import { join, resolve } from "node:path";
import { Command, Option } from "commander";
import { Engine } from "../engine.js";
import { createLogger, silentLogger, type Logger } from "../util/logger.js";

/** The options every command takes. */
export interface CommonOptions {
  data: string;
  json?: boolean;
}

/** `./.ordo` unless `ORDO_DATA` says otherwise: the environment is read here, at the edge, only. */
export function defaultDataDir(): string {
  return process.env.ORDO_DATA ?? "./.ordo";
}

/** A subcommand with `--data` and `--json`, as every command has. */
export function command(program: Command, name: string, description: string): Command {
  return program
    .command(name)
    .description(description)
    .addOption(new Option("--data <dir>", "the node's data directory (env: ORDO_DATA)").default(defaultDataDir()))
    .option("--json", "print machine-readable JSON");
}

export function projectionPath(options: CommonOptions): string {
  return join(resolve(options.data), "projection.sqlite");
}

/** Opens the engine on `--data`; the directory must exist unless `create` is set. */
export async function openEngine(options: CommonOptions, extra: { create?: boolean; logger?: Logger; migrate?: boolean } = {}): Promise<Engine> {
  return Engine.open({ dataDir: options.data, create: extra.create ?? false, logger: extra.logger ?? silentLogger, migrate: extra.migrate });
}

export function serverLogger(): Logger {
  return createLogger(process.env.ORDO_LOG_LEVEL ?? "info");
}

/** Runs `work` on an open engine and always closes it. */
export async function withEngine<T>(options: CommonOptions, work: (engine: Engine) => Promise<T>, extra: { migrate?: boolean } = {}): Promise<T> {
  const engine = await openEngine(options, extra);
  try {
    return await work(engine);
  } finally {
    await engine.close();
  }
}

/** Printing for the CLI: JSON for programs, aligned columns for people. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Cells longer than this are cut, so one long body does not wreck a table. */
const MAX_CELL = 60;

export function printTable(rows: ReadonlyArray<Record<string, unknown>>, columns?: readonly string[]): void {
  const cols = columns ?? (rows[0] ? Object.keys(rows[0]) : []);
  if (cols.length === 0) {
    process.stdout.write("(no rows)\n");
    return;
  }
  const cell = (value: unknown) => {
    const text = value === null || value === undefined ? "" : typeof value === "object" ? JSON.stringify(value) : String(value);
    const flat = text.replace(/\s+/g, " ");
    return flat.length > MAX_CELL ? `${flat.slice(0, MAX_CELL - 1)}…` : flat;
  };
  const cells = rows.map((row) => cols.map((c) => cell(row[c])));
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i]!.length)));
  const line = (values: string[]) => values.map((v, i) => v.padEnd(widths[i]!)).join("  ").trimEnd();
  process.stdout.write(`${line([...cols])}\n${line(widths.map((w) => "-".repeat(w)))}\n`);
  for (const r of cells) process.stdout.write(`${line(r)}\n`);
  process.stdout.write(`(${rows.length} row${rows.length === 1 ? "" : "s"})\n`);
}

/** Prints a command's result: the value as JSON with `--json`, else the sentence for people. */
export function printResult(options: CommonOptions, value: unknown, text: string): void {
  if (options.json) printJson(value);
  else process.stdout.write(`${text}\n`);
}

/** Prints rows: JSON with `--json`, else a table. */
export function printRows(options: CommonOptions, rows: ReadonlyArray<Record<string, unknown>>, columns?: readonly string[]): void {
  if (options.json) printJson(rows);
  else printTable(rows, columns);
}
