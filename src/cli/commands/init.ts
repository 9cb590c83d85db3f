import type { Command } from "commander";
import { command, openEngine, printResult, type CommonOptions } from "../cli-kit.js";

export function registerInit(program: Command): void {
  command(program, "init", "create a node's data directory (documents and projection)").action(async (options: CommonOptions) => {
    const engine = await openEngine(options, { create: true });
    const status = await engine.status();
    await engine.close();
    printResult(options, { dataDir: status.dataDir, documents: status.documents }, `initialized ${status.dataDir} (${status.documents} documents)`);
  });
}
