import type { Command } from "commander";
import { connectorDb } from "../../connectors/connector-tables.js";
import { command, printRows, withEngine, type CommonOptions } from "../cli-kit.js";

export function registerConflicts(program: Command): void {
  command(program, "conflicts", "every conflict found between this node and Canvas or Discourse, and how it was resolved").action(async (options: CommonOptions) => {
    const rows = await withEngine(options, (engine) => connectorDb(engine.db).selectFrom("remote_conflicts").selectAll().orderBy("detected_at").orderBy("id").execute());
    printRows(options, rows, ["detected_at", "system", "doc_url", "field", "strategy", "resolution"]);
  });
}
