import type { Command } from "commander";
import { runReadOnlyQuery } from "../../projection/read-only-query.js";
import { command, printRows, projectionPath, type CommonOptions } from "../cli-kit.js";
import { requireDataDir } from "./require-data.js";

export function registerQuery(program: Command): void {
  command(program, "query", "run one read-only SQL statement against the projected tables")
    .argument("<sql>", "a SELECT (statements that write are refused)")
    .action((sql: string, options: CommonOptions) => {
      requireDataDir(options);
      const result = runReadOnlyQuery(projectionPath(options), sql);
      printRows(options, result.rows, result.columns);
    });
}
