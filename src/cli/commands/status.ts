import type { Command } from "commander";
import { command, printResult, withEngine, type CommonOptions } from "../cli-kit.js";

export function registerStatus(program: Command): void {
  command(program, "status", "what this node holds: documents by kind, projection, quarantine, damage").action(async (options: CommonOptions) => {
    const status = await withEngine(options, (engine) => engine.status());
    const kinds = Object.entries(status.byKind).map(([kind, n]) => `${kind} ${n}`).join(", ");
    printResult(
      options,
      status,
      [
        `data:        ${status.dataDir}`,
        `documents:   ${status.documents} (${kinds || "none"})`,
        `deleted:     ${status.deleted}`,
        `quarantined: ${status.quarantined}`,
        `damaged:     ${status.damagedChunks} chunks set aside`,
        `projected:   ${status.projected}, ${status.projectionPending} pending`,
      ].join("\n"),
    );
  });
}
